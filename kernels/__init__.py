"""numba kernels behind fastroute's routers and codecs.

Each module holds plain per-message functions plus the compiled batch drivers that call them.
Nothing here validates input: the public classes in :mod:`fastroute` do that before calling in.
Importing this package compiles nothing; kernels compile (or load from numba's on-disk cache)
on first call.
"""
