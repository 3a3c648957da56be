"""numba options shared by every CPU kernel, so one place decides caching and threading."""

from __future__ import annotations

#: Options for kernels that split work across cores with ``prange``.
PARALLEL = dict(parallel=True, nogil=True, cache=True)

#: Options for serial kernels (small inputs, or work that must run in message order).
SERIAL = dict(nogil=True, cache=True)

#: Options for per-message helpers inlined into the drivers above.
INLINE = dict(nogil=True, cache=True, inline="always")

#: Below this many items a parallel kernel's thread start-up costs more than it saves.
PARALLEL_MIN_ITEMS = 4096
