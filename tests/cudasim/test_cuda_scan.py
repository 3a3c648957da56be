"""kernels/cuda_scan.py: the device prefix sum, fill, iota and first descent against references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference_gpu as ref
from _sim import SIM, dev, host
from fastroute.kernels import cuda_scan as S


@SIM
@given(values=st.lists(st.integers(0, 2 ** 40), max_size=120))
def test_exclusive_scan_matches_reference(launch_shape, values):
    """Offsets from counts equal the running totals, for any length (chunk edges, 0, 1)."""
    out = host(S.exclusive_scan(dev(np.array(values, np.int64))))
    assert out.tolist() == ref.exclusive_scan(values)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 33, 100])
def test_exclusive_scan_of_int32_counts_at_chunk_edges(launch_shape, n):
    """int32 counts sum into int64 offsets at every length around the chunk sizes."""
    values = (np.arange(n, dtype=np.int32) * 7919) % 13
    out = S.exclusive_scan(dev(values))
    assert out.dtype == np.int64
    assert host(out).tolist() == ref.exclusive_scan(values.tolist())
    if n:
        assert S.last(out) == int(values.sum())


def test_exclusive_scan_sums_past_int32(launch_shape):
    """Totals beyond 2^31 are kept (sums are int64 even for int32 counts)."""
    values = np.full(40, 2 ** 30, np.int32)
    assert S.last(S.exclusive_scan(dev(values))) == 40 * 2 ** 30


@SIM
@given(offsets=st.lists(st.integers(0, 50), min_size=0, max_size=80))
def test_first_descent_matches_reference(launch_shape, offsets):
    """The first decreasing step is found (the lowest index, whatever thread sees it first)."""
    arr = np.array(offsets, np.int64)
    assert S.first_descent(dev(arr)) == ref.first_descent(offsets)


def test_first_descent_of_rising_offsets_is_minus_one(launch_shape):
    """Non-decreasing offsets (equal steps included) have no descent."""
    assert S.first_descent(dev(np.array([0, 0, 3, 3, 9], np.int64))) == -1


@pytest.mark.parametrize("dtype,value", [(np.int64, -5), (np.int32, 7), (np.bool_, True), (np.uint8, 255),
                                         (np.float64, 0.5)])
def test_fill_sets_every_item(launch_shape, dtype, value):
    """fill writes the value, cast to the array's dtype, everywhere."""
    from numba import cuda

    out = cuda.device_array(37, dtype)
    S.fill(out, value)
    assert np.array_equal(host(out), np.full(37, value, dtype))


@pytest.mark.parametrize("n,step", [(0, 1), (1, 3), (50, 1), (51, 7)])
def test_iota(launch_shape, n, step):
    """iota gives 0, step, 2*step, ..."""
    assert host(S.iota(n, step)).tolist() == [i * step for i in range(n)]
