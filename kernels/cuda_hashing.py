"""CUDA twins of kernels/hashing.py: Kafka partitioners, random draws, round-robin and fanout.

The per-key hashes are the very functions of :mod:`.hashing` (``murmur2``, ``crc32``,
``fnv1a``, ``mix64``) compiled a second time with ``cuda.jit(device=True)``, so the CPU and
GPU cannot disagree on a hash. :func:`make_partition_of` gives the per-key body of
``hashing.partitions`` (null rules, random picks, modulo) as a plain function, compiled here
for the device; the tests also compile it with ``njit`` and check it against the CPU driver.

CRC-32 reads its slicing-by-8 table (8 KiB) from constant memory, where a warp whose lanes
read different entries is served one entry at a time: correct, but slower than murmur2.

Drivers take device arrays and return device arrays; nothing here validates input (the
routers do) and nothing copies to the host.

numba's on-disk cache checks only the file a kernel is defined in: after editing
``hashing.py``, touch this file (or clear ``kernels/__pycache__``) so the GPU kernels are rebuilt
from the new per-key functions. The real-GPU tests would otherwise report the drift.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch as L
from . import hashing as H
from .cuda_launch import DEVICE, KERNEL

_U64 = np.uint64
_GOLDEN = H.GOLDEN
_MURMUR2 = H.MURMUR2
_CRC32 = H.CRC32
_NULL_HASHED = H.NULL_HASHED
_EMPTY_RANDOM = H.EMPTY_RANDOM

murmur2_gpu = cuda.jit(**DEVICE)(H.murmur2)
crc32_gpu = cuda.jit(**DEVICE)(H.crc32)
fnv1a_gpu = cuda.jit(**DEVICE)(H.fnv1a)
mix64_gpu = cuda.jit(**DEVICE)(H.mix64)


def make_partition_of(murmur2, crc32, fnv1a, mix64):
    """Return ``partition_of``: the per-key body of ``hashing.partitions`` (null rules, random
    picks, modulo) as a plain function calling the given compiled per-key hashes.

    Compiled here with ``cuda.jit(device=True)`` over the device builds of the hashes; the
    tests compile it with ``njit`` over the CPU builds and compare it with the CPU driver,
    so the one body is checked on both targets. ``partition_of(offsets, data, validity,
    has_nulls, i, n_partitions, algorithm, null_rule, seed, counter)`` returns key i's
    partition as int32.
    """

    def partition_of(offsets, data, validity, has_nulls, i, n_partitions, algorithm, null_rule, seed,
                     counter):
        start = offsets[i]
        end = offsets[i + 1]
        null = has_nulls and not validity[i]
        if null:
            start = end  # a null key's bytes, if any, are not part of it
        if (null and null_rule != _NULL_HASHED) or (null_rule == _EMPTY_RANDOM and start == end):
            r = mix64(_U64(seed) + (_U64(counter) + _U64(i)) * _GOLDEN)
            return np.int32(r % _U64(n_partitions))
        if algorithm == _MURMUR2:
            return np.int32((np.int64(murmur2(data, start, end)) & 0x7FFFFFFF) % np.int64(n_partitions))
        if algorithm == _CRC32:
            return np.int32(np.int64(crc32(data, start, end)) % np.int64(n_partitions))
        return np.int32(np.int64(fnv1a(data, start, end)) % np.int64(n_partitions))

    return partition_of


_partition_of_gpu = cuda.jit(**DEVICE)(make_partition_of(murmur2_gpu, crc32_gpu, fnv1a_gpu, mix64_gpu))


@cuda.jit(**KERNEL)
def _partitions(offsets, data, validity, has_nulls, n_partitions, algorithm, null_rule, seed, counter,
                out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = _partition_of_gpu(offsets, data, validity, has_nulls, i, n_partitions, algorithm, null_rule,
                                   seed, counter)


@cuda.jit(**KERNEL)
def _random_below(bound, seed, counter, out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = np.int32(mix64_gpu(seed + (counter + _U64(i)) * _GOLDEN) % bound)


@cuda.jit(**KERNEL)
def _weighted_choice(cumulative, last, scale, seed, counter, out):
    m = cumulative.shape[0]
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        r = mix64_gpu(seed + (counter + _U64(i)) * _GOLDEN)
        target = np.float64(r >> _U64(11)) * scale
        lo = 0
        hi = m
        while lo < hi:
            mid = (lo + hi) >> 1
            if cumulative[mid] <= target:
                lo = mid + 1
            else:
                hi = mid
        out[i] = np.int32(lo if lo < m else last)


@cuda.jit(**KERNEL)
def _cycle(cycle, start, out):
    length = cycle.shape[0]
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = cycle[(start + i) % length]


@cuda.jit(**KERNEL)
def _remap(table, ids):
    for i in range(cuda.grid(1), ids.shape[0], cuda.gridsize(1)):
        ids[i] = table[ids[i]]


@cuda.jit(**KERNEL)
def _fanout(m, offsets, out):
    for i in range(cuda.grid(1), offsets.shape[0], cuda.gridsize(1)):
        offsets[i] = np.int64(i) * m
    for k in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[k] = np.int32(k % m)


def partitions(offsets, data, validity, n_partitions, algorithm, null_rule, seed, counter):
    """The device twin of ``hashing.partitions``: int32 partition of every key.

    ``offsets`` (int64, n+1), ``data`` (uint8) and ``validity`` (bool, or None when no key
    is null) are device arrays; the other arguments are as for the CPU driver. Returns an
    int32 device array of n.
    """
    n = offsets.shape[0] - 1
    out = cuda.device_array(n, np.int32)
    has_nulls = validity is not None
    if not has_nulls:
        # a kernel argument must be an array; this view is never read (has_nulls is False)
        validity = data.view(np.bool_)
    L.launch(_partitions, n)(offsets, data, validity, has_nulls, np.int64(n_partitions), np.int64(algorithm),
                             np.int64(null_rule), _U64(seed), _U64(counter), out)
    return out


def random_below(n: int, bound: int, seed, counter):
    """The device twin of ``hashing.random_below``: n int32 draws in [0, bound)."""
    out = cuda.device_array(int(n), np.int32)
    L.launch(_random_below, n)(_U64(bound), _U64(seed), _U64(counter), out)
    return out


def weighted_choice(n: int, cumulative, last: int, seed, counter, total: float | None = None):
    """The device twin of ``hashing.weighted_choice``; ``cumulative`` is a float64 device array.

    ``total`` is its last entry when the caller has it on the host (saves a device read).
    """
    if total is None:
        m = cumulative.shape[0]
        total = float(cumulative[m - 1:m].copy_to_host()[0])
    out = cuda.device_array(int(n), np.int32)
    # the same product the CPU kernel forms (a power-of-two scaling, so exact either way)
    L.launch(_weighted_choice, n)(cumulative, np.int64(last), np.float64(total * 2.0 ** -53), _U64(seed),
                                  _U64(counter), out)
    return out


def cycle(n: int, cycle_ids, start: int):
    """n int32 ids: entry ``(start + i) % len(cycle_ids)`` of the device array ``cycle_ids``."""
    out = cuda.device_array(int(n), np.int32)
    L.launch(_cycle, n)(cycle_ids, np.int64(start), out)
    return out


def remap(ids, table) -> None:
    """Replace every id of the int32 device array ``ids`` by ``table[id]``, in place."""
    L.launch(_remap, ids.shape[0])(table, ids)


def fanout(n: int, m: int):
    """CSR routes of n messages each sent to all of ids 0..m-1 (m >= 1): (offsets, ids)."""
    offsets = cuda.device_array(int(n) + 1, np.int64)
    out = cuda.device_array(int(n) * int(m), np.int32)
    L.launch(_fanout, max(n + 1, n * m))(np.int64(m), offsets, out)
    return offsets, out
