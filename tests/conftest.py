"""Shared test configuration: hypothesis profiles and the live-broker gate."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def brokers_required() -> bool:
    """True when FASTROUTE_REQUIRE_BROKERS is set: an absent broker then fails the test."""
    return os.environ.get("FASTROUTE_REQUIRE_BROKERS", "") not in ("", "0")


def reachable(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_broker(name: str, port: int) -> None:
    """Skip (or, with FASTROUTE_REQUIRE_BROKERS set, fail) when a broker is not listening."""
    if reachable(port):
        return
    msg = f"{name} is not reachable on 127.0.0.1:{port}"
    if brokers_required():
        pytest.fail(f"{msg} and FASTROUTE_REQUIRE_BROKERS is set")
    pytest.skip(f"{msg} (set FASTROUTE_REQUIRE_BROKERS=1 to make this a failure)")


# tests/cudasim runs CUDA kernels: under numba's simulator (NUMBA_ENABLE_CUDASIM=1, its own
# pytest process; see the Makefile) or on a real GPU. Elsewhere only its files that need
# neither (PTX compilation checks, and the gpu-marked tests, which skip with their reason)
# are collected.
_CUDASIM_DIR = Path(__file__).parent / "cudasim"
_WITHOUT_DEVICE = ("test_ptx", "test_gpu_real", "test_gpu_check")


def _kernels_can_run() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0"):
        return True
    from fastroute._backend import gpu_status

    return gpu_status() is None


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.suffix != ".py" or _CUDASIM_DIR not in path.parents or not path.name.startswith("test_"):
        return None
    if path.name.startswith(_WITHOUT_DEVICE) or _kernels_can_run():
        return None
    return True
