"""Launch settings shared by every CUDA kernel: threads per block, grid size, scan chunk.

Every host driver in the ``cuda_*`` modules sizes its launches through :func:`grid` (or
:func:`launch`), which read the settings below at call time, so a test can patch them (small
blocks make even tiny inputs run on grids of several blocks) without recompiling anything.

Kernels written for these launches use a grid-stride loop::

    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        ...

so any grid covers any n, and a grid capped at :data:`MAX_BLOCKS` still visits every item.
"""

from __future__ import annotations

from numba import cuda  # noqa: F401  (imported so that this module fails like its users)

#: Options of every ``cuda.jit`` kernel: cached on disk like the CPU kernels.
KERNEL = dict(cache=True)

#: Options of per-item device functions (compiled into, and cached with, their kernels).
DEVICE = dict(device=True)

#: Threads per block of every 1-D launch (a multiple of the 32-thread warp on real hardware).
THREADS_PER_BLOCK = 256

#: Most blocks one launch uses; past that the grid-stride loop gives each thread more items.
#: 8192 blocks of 256 threads keep every SM of a current GPU busy many times over.
MAX_BLOCKS = 8192

#: Items each thread adds up serially in the device prefix sum (kernels/cuda_scan.py) and in
#: the radix passes of kernels/cuda_group.py. Each scan level divides the problem by it.
SCAN_CHUNK = 32


def grid(n: int, threads: int | None = None) -> tuple[int, int]:
    """Return (blocks, threads per block) for a grid-stride launch over n items.

    At least one block (a kernel launched on n = 0 simply does nothing); at most
    :data:`MAX_BLOCKS`.
    """
    tpb = int(THREADS_PER_BLOCK if threads is None else threads)
    blocks = max(1, min(MAX_BLOCKS, -(-int(n) // tpb)))
    return blocks, tpb


def launch(kernel, n: int, threads: int | None = None):
    """``kernel`` configured for a grid-stride launch over n items: call it with its arguments."""
    blocks, tpb = grid(n, threads)
    return kernel[blocks, tpb]
