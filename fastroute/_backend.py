"""Choice of the compute backend ("cpu" or "gpu") for a routing or codec call."""

from __future__ import annotations

import functools
import os

from ._errors import BackendUnavailable

BACKENDS = ("auto", "cpu", "gpu")

#: Smallest batch that ``backend="auto"`` sends to a GPU; smaller batches lose more to the
#: transfer than they gain. Override with the FASTROUTE_GPU_MIN_BATCH environment variable.
GPU_MIN_BATCH = int(os.environ.get("FASTROUTE_GPU_MIN_BATCH", "262144"))


@functools.lru_cache(maxsize=1)
def gpu_status() -> str | None:
    """None when a CUDA device is usable through CuPy, else the reason it is not."""
    try:
        import cupy
    except ImportError:
        return 'CuPy is not installed (pip install "fastroute[gpu]")'
    except Exception as exc:  # a broken CUDA install raises all sorts at import
        return f"CuPy failed to import: {exc}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"no usable CUDA driver: {exc}"
    if count < 1:
        return "no CUDA device found"
    return None


def resolve(backend: str, n: int) -> str:
    """Return "cpu" or "gpu" for a call on n items.

    Raises:
        ValueError: an unknown backend name (the message lists the valid ones).
        BackendUnavailable: "gpu" asked for where no CUDA device is usable; says why.
    """
    if backend == "cpu":
        return "cpu"
    if backend == "gpu":
        reason = gpu_status()
        if reason is not None:
            raise BackendUnavailable(f"backend 'gpu' is unavailable: {reason}")
        return "gpu"
    if backend == "auto":
        return "gpu" if n >= GPU_MIN_BATCH and gpu_status() is None else "cpu"
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
