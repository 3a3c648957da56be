"""Choice of the compute backend ("cpu" or "gpu") for a routing or codec call.

The GPU path runs numba CUDA kernels, so it needs numba's CUDA target (the ``numba-cuda``
package, or the target built into older numba releases), a CUDA driver and a device. CuPy is
not needed to route or encode: device arrays are numba's, and CuPy arrays are accepted
through ``__cuda_array_interface__``. Only a call that must hand back a CuPy array needs it
(:func:`require_cupy`).

``backend="auto"`` sends a host batch to the GPU when one is usable and the batch has at least
:func:`gpu_min_batch` messages; a device-resident batch stays on the GPU whatever its size.
"""

from __future__ import annotations

import functools
import os

from ._errors import BackendUnavailable

BACKENDS = ("auto", "cpu", "gpu")

#: Default smallest host batch that ``backend="auto"`` sends to a GPU: below it the transfer
#: costs more than the GPU saves. A placeholder until measured on a GPU machine
#: (benchmarks/gpu_check.sh prints the crossover); override with FASTROUTE_GPU_MIN_BATCH.
GPU_MIN_BATCH = 262144

_ENV_MIN_BATCH = "FASTROUTE_GPU_MIN_BATCH"
_INSTALL_HINT = 'pip install "fastroute[gpu]"'


def gpu_min_batch() -> int:
    """The ``backend="auto"`` GPU threshold: FASTROUTE_GPU_MIN_BATCH if set, else GPU_MIN_BATCH.

    Read at every call, so setting the variable takes effect at once. Raises ValueError
    naming the variable when it is not a non-negative integer.
    """
    raw = os.environ.get(_ENV_MIN_BATCH)
    if raw is None or raw.strip() == "":
        return GPU_MIN_BATCH
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{_ENV_MIN_BATCH} must be a non-negative integer, got {raw!r}")
    return value


def _import_cuda():
    """numba.cuda, or the reason it cannot be imported."""
    try:
        from numba import cuda
    except Exception as exc:  # ImportError, or a broken install raising anything
        return None, f"numba's CUDA target is missing ({exc}); {_INSTALL_HINT}"
    return cuda, None


def _device_reason(cuda) -> str | None:
    """None when numba.cuda can launch kernels, else the reason: no driver, no device, or
    no compiler (NVVM)."""
    if cuda.is_available():
        return None
    err = cuda.cuda_error()
    if err:
        text = " ".join(str(err).split())
        return f"no usable CUDA driver: {text.split('. ')[0].rstrip('.')}"
    try:
        count = len(cuda.gpus)
    except Exception as exc:
        return f"no usable CUDA driver: {exc}"
    if count < 1:
        return "no CUDA device found (the driver sees none)"
    return (f"numba's CUDA target is missing its compiler (NVVM): install the CUDA toolkit or "
            f"{_INSTALL_HINT}")


@functools.lru_cache(maxsize=1)
def gpu_status() -> str | None:
    """None when CUDA kernels can run here, else why not.

    The reason starts with what is missing: "numba's CUDA target is missing", "no usable
    CUDA driver" or "no CUDA device found". Probed once and cached (``gpu_status.cache_clear()``
    to probe again). Never raises.
    """
    cuda, reason = _import_cuda()
    if reason is not None:
        return reason
    try:
        return _device_reason(cuda)
    except Exception as exc:  # a half-installed driver raises from odd places
        return f"no usable CUDA driver: {exc}"


@functools.lru_cache(maxsize=1)
def cupy_status() -> str | None:
    """None when CuPy imports, else why not ("CuPy is missing ..." or its import error)."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return f"CuPy is missing ({_INSTALL_HINT})"
    except Exception as exc:  # CuPy built for another CUDA raises at import
        return f"CuPy failed to import: {exc}"
    return None


def require_gpu():
    """Return ``numba.cuda``, or raise BackendUnavailable naming why the GPU is unusable."""
    reason = gpu_status()
    if reason is not None:
        raise BackendUnavailable(f"backend 'gpu' is unavailable: {reason}")
    from numba import cuda

    return cuda


def require_cupy():
    """Return the ``cupy`` module, or raise BackendUnavailable (CuPy missing, or no GPU)."""
    reason = cupy_status()
    if reason is not None:
        raise BackendUnavailable(f"a CuPy array was asked for but {reason}")
    require_gpu()
    import cupy

    return cupy


def resolve(backend: str, n: int, on_device: bool = False) -> str:
    """Return "cpu" or "gpu" for a call on n items.

    ``on_device``: the data is already in GPU memory; then "auto" keeps it there whatever
    n (when the GPU is usable), and "cpu" means the caller moves it to the host first.

    Raises:
        ValueError: an unknown backend name (the message lists the valid ones).
        BackendUnavailable: "gpu" asked for where no CUDA device is usable; says why.
    """
    if backend == "cpu":
        return "cpu"
    if backend == "gpu":
        require_gpu()
        return "gpu"
    if backend == "auto":
        if on_device or n >= gpu_min_batch():
            return "gpu" if gpu_status() is None else "cpu"
        return "cpu"
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")


def place(backend: str, batch):
    """Return (where, batch): the backend for ``batch`` and the batch in that memory.

    A device batch sent to the CPU is copied to the host; a host batch is returned as is
    (GPU paths upload what they need themselves).
    """
    from ._device import batch_device, batch_to_host

    on_device = batch_device(batch) == "gpu"
    where = resolve(backend, len(batch), on_device)
    if where == "cpu" and on_device:
        batch = batch_to_host(batch)
    return where, batch
