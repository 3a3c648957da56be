#!/usr/bin/env bash
# GPU acceptance check: runs the GPU tests, then times the GPU against the CPU path on this
# machine (murmur2 100M keys, topic routing 10M keys x 10,000 bindings, encode_frames 10M
# messages; host- and device-resident) and prints one table with the copy bandwidths beside it.
# Needs a CUDA GPU, numba's CUDA target and this project importable; downloads nothing.
#
#   benchmarks/gpu_check.sh [--skip-tests | --all-tests] [--repeat N] [--json out.json] [--smoke]
#
# Uses $PYTHON if set, else .venv/bin/python, else python3. Finishes in under 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# Make a source checkout importable even when the package is not installed.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [[ " $* " != *" --smoke "* ]]; then
    unset NUMBA_ENABLE_CUDASIM  # real hardware only; the simulator cannot be timed
fi
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py "$@"
