"""Whole-array device primitives: exclusive prefix sum, fill, iota, first descent, compaction.

The prefix sum is what turns per-item counts into CSR offsets in every two-pass (count,
scan, fill) kernel. It needs no CuPy: a chunked reduce-then-scan in three launches per
level. Each thread adds up :data:`~.cuda_launch.SCAN_CHUNK` consecutive items (pass 1); the
chunk totals are scanned the same way, recursively, until one chunk remains; each thread
then rewrites its chunk as running sums from its chunk's base (pass 2). O(n) work, about
``log(n) / log(SCAN_CHUNK)`` levels, no shared memory and no block synchronisation, so the
same code runs unchanged in numba's CUDA simulator.

All arrays are device arrays; the drivers launch on the current device and synchronise only
where they return a host scalar.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch as L
from .cuda_launch import KERNEL


@cuda.jit(device=True)
def range_of(offsets, i):
    """The range r with offsets[r] <= i < offsets[r + 1] of rising offsets (binary search;
    empty ranges are skipped)."""
    lo = 0
    hi = offsets.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offsets[mid] <= i:
            lo = mid
        else:
            hi = mid
    return lo


@cuda.jit(**KERNEL)
def _fill(out, value):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = value


@cuda.jit(**KERNEL)
def _iota(out, step):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = i * step


@cuda.jit(**KERNEL)
def _first_descent(offsets, result):
    n = offsets.shape[0] - 1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        if offsets[i + 1] < offsets[i]:
            cuda.atomic.min(result, 0, i)


@cuda.jit(**KERNEL)
def _chunk_sums(values, chunk, sums):
    n = values.shape[0]
    for c in range(cuda.grid(1), sums.shape[0], cuda.gridsize(1)):
        start = c * chunk
        end = start + chunk
        if end > n:
            end = n
        s = np.int64(0)
        for k in range(start, end):
            s += values[k]
        sums[c] = s


@cuda.jit(**KERNEL)
def _chunk_scan(values, chunk, bases, out):
    n = values.shape[0]
    for c in range(cuda.grid(1), bases.shape[0], cuda.gridsize(1)):
        start = c * chunk
        end = start + chunk
        if end > n:
            end = n
        s = bases[c]
        for k in range(start, end):
            out[k] = s
            s += values[k]
        if end == n:
            out[n] = s


def fill(out, value) -> None:
    """Set every item of the device array ``out`` to ``value`` (cast to its dtype)."""
    L.launch(_fill, out.shape[0])(out, np.dtype(out.dtype).type(value))


def iota(n: int, step: int = 1, dtype=np.int64):
    """A device array ``[0, step, 2*step, ...]`` of n items."""
    out = cuda.device_array(int(n), dtype=np.dtype(dtype))
    L.launch(_iota, n)(out, np.dtype(dtype).type(step))
    return out


def first_descent(offsets) -> int:
    """The first i with ``offsets[i+1] < offsets[i]`` (int64 device array), or -1."""
    n = offsets.shape[0] - 1
    if n <= 0:
        return -1
    result = cuda.to_device(np.array([n], np.int64))
    L.launch(_first_descent, n)(offsets, result)
    bad = int(result.copy_to_host()[0])
    return -1 if bad == n else bad


def exclusive_scan(values):
    """CSR offsets of per-item counts: an int64 device array ``out`` of n+1 items with
    ``out[i] = values[0] + ... + values[i-1]`` (so ``out[n]`` is the total).

    ``values``: a 1-D device array of integers (any width; sums are int64).
    """
    n = values.shape[0]
    out = cuda.device_array(n + 1, np.int64)
    chunk = max(2, int(L.SCAN_CHUNK))
    nchunks = -(-n // chunk)
    if nchunks <= 1:
        bases = cuda.to_device(np.zeros(1, np.int64))
        if n == 0:
            _fill[1, 1](out, np.int64(0))
            return out
    else:
        sums = cuda.device_array(nchunks, np.int64)
        L.launch(_chunk_sums, nchunks)(values, np.int64(chunk), sums)
        bases = exclusive_scan(sums)
    L.launch(_chunk_scan, nchunks)(values, np.int64(chunk), bases, out)
    return out


def last(arr) -> int:
    """The last item of a device array, as a Python int (one tiny device-to-host copy)."""
    n = arr.shape[0]
    return int(arr[n - 1:n].copy_to_host()[0])


@cuda.jit(**KERNEL)
def _compact(flags, slots, out):
    for i in range(cuda.grid(1), flags.shape[0], cuda.gridsize(1)):
        if flags[i] != 0:
            out[slots[i]] = i


def flagged_indices(flags):
    """The ascending indices i with ``flags[i] == 1``: an int64 device array (numpy's flatnonzero).

    ``flags``: a 1-D device array of 0 / 1 integers (uint8 is the cheapest); any other value
    would count more than once in the scan. Count, exclusive scan, compact: O(n), and one
    scalar (the count, needed to size the answer) crosses the bus.
    """
    slots = exclusive_scan(flags)
    out = cuda.device_array(last(slots), np.int64)
    L.launch(_compact, flags.shape[0])(flags, slots, out)
    return out
