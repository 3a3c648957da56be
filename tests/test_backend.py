"""fastroute/_backend.py: why the GPU is (un)usable, the "auto" choice and its threshold, and the
fallback of routers to the CPU. Runs in the main suite: no simulator, no GPU needed."""

from __future__ import annotations

import subprocess
import sys

import numba
import pytest

import fastroute as fr
from fastroute import _backend
from fastroute._router import Router
from fastroute._routes import Routes


class FakeCuda:
    """A stand-in for numba.cuda answering the probes gpu_status makes."""

    def __init__(self, available=False, error=None, gpus=(), gpus_raise=None):
        self.available, self.error, self._gpus, self.gpus_raise = available, error, list(gpus), gpus_raise

    def is_available(self):
        return self.available

    def cuda_error(self):
        return self.error

    @property
    def gpus(self):
        if self.gpus_raise is not None:
            raise self.gpus_raise
        return self._gpus


@pytest.fixture
def probe(monkeypatch):
    """Make gpu_status see the given numba.cuda stand-in (or import failure) and re-probe."""
    def use(fake=None, import_error=None):
        result = (None, import_error) if import_error else (fake, None)
        monkeypatch.setattr(_backend, "_import_cuda", lambda: result)
        _backend.gpu_status.cache_clear()
    yield use
    _backend.gpu_status.cache_clear()


@pytest.fixture
def status(monkeypatch):
    """Force gpu_status to a given answer (None = usable)."""
    def use(reason):
        monkeypatch.setattr(_backend, "gpu_status", lambda: reason)
    return use


# --------------------------------------------------------------------------- reasons

def test_missing_numba_cuda_target(monkeypatch):
    """Without numba's CUDA target the reason says so and how to install it."""
    monkeypatch.delattr(numba, "cuda", raising=False)
    monkeypatch.setitem(sys.modules, "numba.cuda", None)
    cuda, reason = _backend._import_cuda()
    assert cuda is None and reason.startswith("numba's CUDA target is missing")
    assert 'pip install "fastroute[gpu]"' in reason


def test_reason_no_driver(probe):
    """A driver that fails to load is reported as "no usable CUDA driver", first sentence only."""
    probe(FakeCuda(error="CUDA driver library cannot be found.\nIf you are sure ... set NUMBA_CUDA_DRIVER."))
    assert _backend.gpu_status() == "no usable CUDA driver: CUDA driver library cannot be found"


def test_reason_no_device(probe):
    """A working driver that sees no device is "no CUDA device found"."""
    probe(FakeCuda(gpus=[]))
    assert _backend.gpu_status().startswith("no CUDA device found")


def test_reason_no_compiler(probe):
    """A device but no NVVM: the CUDA target is missing its compiler."""
    probe(FakeCuda(gpus=["GPU 0"]))
    assert _backend.gpu_status().startswith("numba's CUDA target is missing its compiler (NVVM)")


def test_reason_driver_raising(probe):
    """A driver that raises while listing devices is a driver problem, and gpu_status never raises."""
    probe(FakeCuda(gpus_raise=RuntimeError("CUDA_ERROR_NOT_INITIALIZED")))
    assert _backend.gpu_status() == "no usable CUDA driver: CUDA_ERROR_NOT_INITIALIZED"


def test_reason_import_failure(probe):
    """The import failure reason is passed through."""
    probe(import_error="numba's CUDA target is missing (boom)")
    assert _backend.gpu_status() == "numba's CUDA target is missing (boom)"


def test_usable(probe):
    """is_available() True means usable: no reason."""
    probe(FakeCuda(available=True))
    assert _backend.gpu_status() is None


def test_status_is_probed_once(probe):
    """The probe is cached until cache_clear()."""
    probe(FakeCuda(gpus=[]))
    first = _backend.gpu_status()
    probe(FakeCuda(available=True))
    assert first is not None and _backend.gpu_status() is None


def test_this_machine_has_a_reason_or_a_gpu():
    """gpu_status names one of the documented causes, or None."""
    reason = _backend.gpu_status()
    causes = ("numba's CUDA target is missing", "no usable CUDA driver", "no CUDA device found")
    assert reason is None or reason.startswith(causes)


def test_cupy_missing(monkeypatch):
    """require_cupy names CuPy as what is missing."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    _backend.cupy_status.cache_clear()
    try:
        assert _backend.cupy_status().startswith("CuPy is missing")
        with pytest.raises(fr.BackendUnavailable, match="CuPy is missing"):
            _backend.require_cupy()
    finally:
        _backend.cupy_status.cache_clear()


# --------------------------------------------------------------------------- resolve

def test_gpu_without_a_device_raises_with_the_reason(status):
    """backend="gpu" where the GPU is unusable raises BackendUnavailable carrying the reason."""
    status("no CUDA device found")
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        _backend.resolve("gpu", 10)
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        fr.Partitioner(3).route([b"a"], backend="gpu")


def test_cpu_is_always_cpu(status):
    """backend="cpu" never asks about the GPU."""
    status("unused")
    assert _backend.resolve("cpu", 10 ** 9) == "cpu"
    assert _backend.resolve("cpu", 5, on_device=True) == "cpu"


def test_auto_falls_back_to_the_cpu(status, monkeypatch):
    """Without a usable GPU, "auto" is the CPU at any size, device data included."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "10")
    status("no CUDA device found")
    assert _backend.resolve("auto", 5) == "cpu"
    assert _backend.resolve("auto", 10 ** 9) == "cpu"
    assert _backend.resolve("auto", 1, on_device=True) == "cpu"


def test_auto_with_a_gpu_uses_the_threshold(status, monkeypatch):
    """With a usable GPU, "auto" takes it from the threshold up, and always for device data."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "1000")
    status(None)
    assert _backend.resolve("auto", 999) == "cpu"
    assert _backend.resolve("auto", 1000) == "gpu"
    assert _backend.resolve("auto", 3, on_device=True) == "gpu"


def test_unknown_backend_lists_the_valid_names():
    """A misspelt backend is a ValueError naming the three valid ones and what was given."""
    with pytest.raises(ValueError, match="'auto', 'cpu', 'gpu', got 'cuda'"):
        _backend.resolve("cuda", 1)


def test_threshold_default_and_override(monkeypatch):
    """FASTROUTE_GPU_MIN_BATCH overrides the default at call time; blank means the default."""
    monkeypatch.delenv("FASTROUTE_GPU_MIN_BATCH", raising=False)
    assert _backend.gpu_min_batch() == _backend.GPU_MIN_BATCH
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "123")
    assert _backend.gpu_min_batch() == 123
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", " ")
    assert _backend.gpu_min_batch() == _backend.GPU_MIN_BATCH


@pytest.mark.parametrize("bad", ["-1", "lots", "1e6"])
def test_bad_threshold_names_the_variable(monkeypatch, bad):
    """A threshold that is not a non-negative integer fails naming the variable and value."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", bad)
    with pytest.raises(ValueError, match=f"FASTROUTE_GPU_MIN_BATCH must be a non-negative integer, got '{bad}'"):
        _backend.gpu_min_batch()


# --------------------------------------------------------------------------- routers

def test_router_auto_falls_back_without_calling_the_gpu(status, monkeypatch):
    """A large batch under "auto" without a GPU is routed by the CPU kernel, same answer."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "4")
    status("no CUDA device found")
    router = fr.Partitioner(7)
    monkeypatch.setattr(fr.Partitioner, "_route_gpu", lambda self, b: pytest.fail("GPU path called"))
    keys = [b"k%d" % i for i in range(50)]
    assert router.route(keys) == fr.Partitioner(7).route(keys, backend="cpu")


class CpuOnly(Router):
    """A router with no GPU twin."""

    def __init__(self):
        super().__init__()
        self._names = ["q"]

    def _route_cpu(self, batch):
        return Routes.empty(len(batch), self._names)


def test_router_without_gpu_kernel(status, monkeypatch):
    """With a GPU, "gpu" on a CPU-only router says it has no GPU kernel; "auto" uses the CPU."""
    status(None)
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "1")
    with pytest.raises(fr.BackendUnavailable, match="CpuOnly has no GPU kernel"):
        CpuOnly().route([b"a"], backend="gpu")
    assert len(CpuOnly().route([b"a", b"b"], backend="auto")) == 2


def test_routers_with_a_gpu_twin():
    """Every public router has a GPU path (backend="gpu" is offered on every router)."""
    public = {getattr(fr, name) for name in fr.__all__}
    routers = {cls for cls in public if isinstance(cls, type) and issubclass(cls, Router) and cls is not Router}
    assert routers == {fr.TopicRouter, fr.DirectRouter, fr.FanoutRouter, fr.HeadersRouter, fr.Partitioner,
                       fr.RoundRobinRouter, fr.RandomRouter, fr.ConsistentHashRouter}
    for cls in routers:
        assert cls._route_gpu is not None, cls.__name__


@pytest.mark.skipif(_backend.gpu_status() is None, reason="a GPU is usable here")
def test_device_copies_need_a_gpu():
    """Without a usable GPU, to_device raises BackendUnavailable with the reason."""
    reason = _backend.gpu_status()
    batch = fr.MessageBatch.from_keys([b"a"])
    with pytest.raises(fr.BackendUnavailable, match=reason.split(":")[0]):
        batch.to_device()
    assert batch.device == "cpu"


def test_import_and_small_batches_never_load_cuda():
    """Importing fastroute and routing small batches ("auto") never imports numba.cuda."""
    code = ("import sys, fastroute as fr; fr.Partitioner(3).route([b'a', None]); "
            "fr.FanoutRouter(['a']).route([b'x']); print('numba.cuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_checkout_on_pythonpath_imports_without_installing(tmp_path):
    """A source checkout put on sys.path, not installed (a GPU machine that cannot build the
    ring extension runs gpu_check.sh so), finds kernels/ and plugins/ as fastroute's."""
    import sysconfig
    from pathlib import Path

    root = Path(fr.__file__).resolve().parent.parent
    # -S: no site processing, so no .pth file (an editable install's finder) runs
    code = (f"import sys; sys.path[:0] = [{str(root)!r}, {sysconfig.get_paths()['purelib']!r}]; "
            "import fastroute, fastroute.kernels.hashing as h, fastroute.plugins; "
            "print(h.__file__); print(fastroute.Partitioner(4).route([b'k']).destinations.tolist())")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == str(root / "kernels" / "hashing.py")
    assert lines[1] == str(fr.Partitioner(4).route([b"k"]).destinations.tolist()).replace(" ", "")


def test_info_reports_gpu_fields():
    """fastroute info lists CUDA availability and the numba CUDA target and CuPy versions."""
    from fastroute._cli import info

    data = info()
    assert data["cuda"] == "available" or data["cuda"].startswith("unavailable: ")
    assert "numba_cuda" in data and "cupy" in data
    if data["cuda"] == "available":
        assert "gpu" in data and "cuda_driver" in data
