"""Shared set-up of the CUDA kernel tests: launch shapes, simulator warnings, the device gate.

These tests run the CUDA kernels under numba's simulator (``NUMBA_ENABLE_CUDASIM=1``, in their
own pytest process: ``make test`` does it) or on a real GPU, and compare them bit for bit
with the CPU kernels. ``tests/conftest.py`` leaves them out of a run that has neither.
"""

from __future__ import annotations

import pytest

from fastroute.kernels import cuda_launch

#: (threads per block, most blocks per grid, scan chunk). Tiny blocks give several blocks even
#: on tens of items; capped grids make the grid-stride loops wrap; small chunks make the
#: prefix sum recurse. The last is closer to the library's shape (one block of 32 threads).
LAUNCH_SHAPES = [(4, 2, 2), (8, 3, 4), (32, 64, 32)]

#: Files that need no device (they skip or gate themselves).
_WITHOUT_DEVICE = ("test_ptx", "test_gpu_real", "test_gpu_check")


@pytest.fixture(params=LAUNCH_SHAPES, ids=lambda s: "tpb{}-blocks{}-chunk{}".format(*s))
def launch_shape(request, monkeypatch):
    """Run the test with every kernel launched in the given shape."""
    threads, blocks, chunk = request.param
    monkeypatch.setattr(cuda_launch, "THREADS_PER_BLOCK", threads)
    monkeypatch.setattr(cuda_launch, "MAX_BLOCKS", blocks)
    monkeypatch.setattr(cuda_launch, "SCAN_CHUNK", chunk)
    return request.param


@pytest.fixture(autouse=True)
def _device_ready(request):
    """Skip, naming the reason, where CUDA kernels cannot run (neither simulator nor GPU)."""
    if request.node.path.name.startswith(_WITHOUT_DEVICE):
        return
    from fastroute._backend import gpu_status

    reason = gpu_status()
    if reason is not None:
        pytest.skip(f"CUDA kernels cannot run here ({reason}); run with NUMBA_ENABLE_CUDASIM=1")


def pytest_collection_modifyitems(config, items):
    # The simulator runs kernels as Python code on numpy scalars, which warn where the
    # hardware silently wraps (uint32 / uint64 products in the hashes); the wrap is intended.
    mark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
    for item in items:
        if item.path.parent.name == "cudasim":
            item.add_marker(mark)
