"""The CUDA kernels compile to PTX for a real GPU (sm_90, an H100/H200) with NVVM, no GPU needed.

The simulator runs kernels as Python, so it cannot catch what only the CUDA compiler refuses
(an untyped global, a Python object, an unsupported builtin). This compiles every kernel of
kernels/cuda_{scan,hashing,group}.py with the argument types its driver passes, plus the
(kernel, signature) pairs any other ``kernels/cuda_*.py`` module lists in ``PTX_CHECKS``. It runs in the
main (non-simulator) test run and skips where a GPU is present (the kernels then run for real)
or where libNVVM is missing.
"""

from __future__ import annotations

import numba
import pytest

if numba.config.ENABLE_CUDASIM:
    pytest.skip("PTX compilation is checked in the non-simulator run", allow_module_level=True)

from numba import cuda  # noqa: E402
from numba import types as T  # noqa: E402

from fastroute._backend import gpu_status  # noqa: E402
from fastroute.kernels import cuda_group as R  # noqa: E402
from fastroute.kernels import cuda_hashing as G  # noqa: E402
from fastroute.kernels import cuda_scan as S  # noqa: E402

CC = (9, 0)


def arr(t):
    return t[::1]


I64, U64 = T.int64, T.uint64
KERNELS = [
    (S._fill, (arr(T.int64), I64)), (S._fill, (arr(T.boolean), T.boolean)), (S._iota, (arr(T.int64), I64)),
    (S._first_descent, (arr(T.int64), arr(T.int64))),
    (S._chunk_sums, (arr(T.int64), I64, arr(T.int64))), (S._chunk_sums, (arr(T.int32), I64, arr(T.int64))),
    (S._chunk_scan, (arr(T.int64), I64, arr(T.int64), arr(T.int64))),
    (G._partitions, (arr(T.int64), arr(T.uint8), arr(T.boolean), T.boolean, I64, I64, I64, U64, U64,
                     arr(T.int32))),
    (G._random_below, (U64, U64, U64, arr(T.int32))),
    (G._weighted_choice, (arr(T.float64), I64, T.float64, U64, U64, arr(T.int32))),
    (G._cycle, (arr(T.int32), I64, arr(T.int32))), (G._remap, (arr(T.int32), arr(T.int32))),
    (G._fanout, (I64, arr(T.int64), arr(T.int32))),
    (R._rows_and_counts, (arr(T.int64), arr(T.int32), arr(T.int64), arr(T.int64))),
    (R._digit_counts, (arr(T.int32), T.int32, I64, I64, arr(T.int64))),
    (R._digit_scatter, (arr(T.int32), arr(T.int64), T.int32, I64, I64, arr(T.int64), arr(T.int32),
                        arr(T.int64))),
    # the compaction of 0/1 flags (cuda_scan.flagged_indices): scans of uint8, then the scatter
    (S._chunk_sums, (arr(T.uint8), I64, arr(T.int64))),
    (S._chunk_scan, (arr(T.uint8), I64, arr(T.int64), arr(T.int64))),
    (S._compact, (arr(T.uint8), arr(T.int64), arr(T.int64))),
]



def _declared_checks():
    """(kernel, signature) pairs other kernels/cuda_*.py modules declare as ``PTX_CHECKS``."""
    import importlib
    import pkgutil

    import fastroute.kernels as pkg

    found = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("cuda_") and info.name not in ("cuda_scan", "cuda_hashing", "cuda_group"):
            module = importlib.import_module(f"fastroute.kernels.{info.name}")
            found.extend(getattr(module, "PTX_CHECKS", ()))
    return found


KERNELS += _declared_checks()


class _Device:
    compute_capability = CC


@pytest.fixture
def offline_target(monkeypatch):
    """Compile for sm_90 without a GPU: numba asks the current device for the compute
    capability when it compiles a device function a kernel calls; answer for it."""
    if gpu_status() is None:
        pytest.skip("a GPU is present: the kernels run on it in tests/cudasim instead")
    from numba.cuda import dispatcher
    from numba.cuda.cudadrv import nvvm

    if not nvvm.is_available():
        pytest.skip("libNVVM is not installed")
    if not hasattr(dispatcher, "get_current_device"):
        pytest.skip("this numba CUDA target looks up the device elsewhere")
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: _Device())


@pytest.mark.parametrize("kernel,sig", KERNELS, ids=[f"{k.py_func.__name__}-{i}" for i, (k, _) in enumerate(KERNELS)])
def test_kernel_compiles_for_sm90(offline_target, kernel, sig):
    """Each kernel types and lowers to PTX for a compute capability 9.0 device."""
    ptx, restype = cuda.compile_ptx(kernel.py_func, sig, cc=CC)
    assert restype == T.void
    assert ".entry" in ptx and ".target sm_90" in ptx


def test_crc32_table_lives_in_constant_memory(offline_target):
    """The CRC-32 slicing table is frozen into constant memory, not copied per call."""
    kernel, sig = KERNELS[7]
    ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=CC)
    assert "ld.const" in ptx
