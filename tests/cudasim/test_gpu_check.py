"""benchmarks/gpu_check.sh: it runs end to end (tiny sizes, simulator) and refuses to time
without a GPU, so it is ready for a machine that has one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numba
import pytest

from fastroute._backend import gpu_status

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def run(args, simulator: bool, tmp_path):
    env = dict(os.environ, PYTHON=os.environ.get("PYTHON", __import__("sys").executable))
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    else:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run([str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.skipif(not numba.config.ENABLE_CUDASIM, reason="runs in the simulator test process")
def test_smoke_run_prints_the_table_and_identical_answers(tmp_path):
    """--smoke under the simulator: every workload runs on both paths and the answers agree."""
    out = run(["--smoke", "--skip-tests", "--repeat", "1", "--json", str(tmp_path / "r.json")], True, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "== Results" in out.stdout and "ceiling: device-to-device copy" in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    paths = {(r["workload"].split()[0], r["path"]) for r in report["rows"]}
    for workload in ("murmur2", "topic", "encode_frames"):
        assert {(workload, "cpu"), (workload, "gpu host-resident"), (workload, "gpu device-resident")} <= paths
    assert {("decode_frame", "cpu"), ("decode_frame", "gpu device-resident")} <= paths
    decoded = [r for r in report["rows"] if r["workload"].startswith("decode_frame") and r["path"] != "cpu"]
    assert [r["identical"] for r in decoded] == [True]
    murmur = [r for r in report["rows"] if r["workload"].startswith("murmur2") and r["path"] != "cpu"]
    assert all(r["identical"] is True for r in murmur)
    # GPU paths of other routers/codecs may not exist yet: then they are reported, not fatal
    assert all(r["identical"] is not False for r in report["rows"])
    assert set(report["bandwidth"]) == {"d2d", "h2d_pageable", "h2d_pinned", "d2h_pageable"}


@pytest.mark.skipif(numba.config.ENABLE_CUDASIM or gpu_status() is None, reason="needs a machine without a GPU")
def test_without_a_gpu_it_says_why_and_times_nothing(tmp_path):
    """No GPU: exit status 2 and the reason, no table."""
    out = run(["--skip-tests"], False, tmp_path)
    assert out.returncode == 2
    assert f"No usable GPU: {gpu_status()}" in out.stdout and "== Results" not in out.stdout
