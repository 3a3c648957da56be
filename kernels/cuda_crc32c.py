"""CRC-32C on a CUDA device: many ranges of one buffer, every range cut into chunks.

The CRC register is linear over GF(2), which is what lets thousands of threads share one
range. Write R(I, M) for the register after message M starting from register I, and
S(x, n) for the register x after n zero bytes (:func:`fastroute.kernels.crc32c.crc32c_combine`
with ``crc2 = 0``). Then

* R(I, M) = S(I, |M|) ^ R(0, M), and
* R(0, A + B) = S(R(0, A), |B|) ^ R(0, B),

so R(0, M) is the XOR over M's chunks c of S(R(0, c), bytes after c). Each thread computes
one chunk's raw register, shifts it past the rest of its range and XORs it into the range's
accumulator with an atomic (XOR is commutative, so the result does not depend on thread
order), and :func:`_finish` turns the accumulator into the CRC:
R(0xFFFFFFFF, M) ^ 0xFFFFFFFF.

The per-chunk body :func:`crc_raw` is plain Python in the subset both ``numba.njit`` and
``numba.cuda.jit(device=True)`` compile (:data:`crc_raw_cpu` is its CPU build, used by the
tests); it reads the buffer 8 bytes at a time through a uint64 view of the same memory,
with the slicing-by-8 tables of :mod:`fastroute.kernels.crc32c`, which each block first
copies into shared memory (table lookups from shared memory are what GPU CRC code is built
on). The shift reuses :func:`~fastroute.kernels.crc32c.crc32c_combine` itself.

Nothing here validates input; callers pass ranges inside the buffer.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, njit, uint32

from . import cuda_launch as L
from ._config import SERIAL
from .crc32c import _SLICE8, crc32c_combine
from .cuda_launch import KERNEL
from .cuda_scan import range_of

#: Bytes per thread (a multiple of 8). Small enough that a frame of a few kilobytes still
#: spreads over several threads, large enough that the O(log n) shift per chunk is noise.
CHUNK = 2048

_MASK = 0xFFFFFFFF


def crc_raw(tables, data, words, start, stop):
    """The CRC register after ``data[start:stop]``, starting from register 0 (no inversion).

    ``words`` is the same memory as ``data`` viewed as uint64 (little-endian); the aligned
    middle is read through it, 8 bytes per step, the unaligned head and tail byte by byte.
    ``tables`` are the (8, 256) slicing-by-8 tables.
    """
    c = np.uint32(0)
    pos = start
    head = (start + 7) & ~7
    if head > stop:
        head = stop
    while pos < head:
        c = np.uint32(tables[0, (c ^ np.uint32(data[pos])) & np.uint32(0xFF)] ^ (c >> np.uint32(8)))
        pos += 1
    while pos + 8 <= stop:
        w = words[pos >> 3] ^ np.uint64(c)
        c = np.uint32(tables[7, w & np.uint64(0xFF)] ^ tables[6, (w >> np.uint64(8)) & np.uint64(0xFF)]
                      ^ tables[5, (w >> np.uint64(16)) & np.uint64(0xFF)]
                      ^ tables[4, (w >> np.uint64(24)) & np.uint64(0xFF)]
                      ^ tables[3, (w >> np.uint64(32)) & np.uint64(0xFF)]
                      ^ tables[2, (w >> np.uint64(40)) & np.uint64(0xFF)]
                      ^ tables[1, (w >> np.uint64(48)) & np.uint64(0xFF)]
                      ^ tables[0, w >> np.uint64(56)])
        pos += 8
    while pos < stop:
        c = np.uint32(tables[0, (c ^ np.uint32(data[pos])) & np.uint32(0xFF)] ^ (c >> np.uint32(8)))
        pos += 1
    return c


#: CPU build of :func:`crc_raw` (the tests compare it with the CPU CRC).
crc_raw_cpu = njit(**SERIAL)(crc_raw)
_crc_raw_dev = cuda.jit(device=True)(crc_raw)


@cuda.jit(**KERNEL)
def _chunks(data, words, starts, stops, chunk_off, chunk, acc):
    """One thread per chunk: XOR its shifted raw register into acc[its range]."""
    tab = cuda.shared.array((8, 256), uint32)
    k = cuda.threadIdx.x
    while k < 2048:
        tab[k >> 8, k & 255] = _SLICE8[k >> 8, k & 255]
        k += cuda.blockDim.x
    cuda.syncthreads()
    for c in range(cuda.grid(1), chunk_off[chunk_off.shape[0] - 1], cuda.gridsize(1)):
        r = range_of(chunk_off, c)
        lo = starts[r] + (c - chunk_off[r]) * chunk
        hi = lo + chunk
        if hi > stops[r]:
            hi = stops[r]
        raw = _crc_raw_dev(tab, data, words, lo, hi)
        cuda.atomic.xor(acc, r, crc32c_combine(raw, np.uint32(0), stops[r] - hi))


@cuda.jit(**KERNEL)
def _finish(acc, starts, stops, out):
    """out[r] = the CRC-32C of range r from its accumulated raw register."""
    for r in range(cuda.grid(1), acc.shape[0], cuda.gridsize(1)):
        reg = crc32c_combine(np.uint32(_MASK), acc[r], stops[r] - starts[r])
        out[r] = np.uint32(reg ^ np.uint32(_MASK))


def chunk_offsets(starts: np.ndarray, stops: np.ndarray, chunk: int) -> np.ndarray:
    """Prefix sums of the chunk counts of each range (host arrays): int64[ranges + 1]."""
    counts = (np.asarray(stops, np.int64) - np.asarray(starts, np.int64) + chunk - 1) // chunk
    out = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def crc32c_ranges(data, words, starts, stops, *, chunk: int | None = None):
    """CRC-32C of every range ``data[starts[r]:stops[r]]``, computed on the device.

    Args:
        data: the buffer, a uint8 device array whose length is a multiple of 8.
        words: the same memory as a uint64 device array (``data.view(np.uint64)``).
        starts, stops: host int64 arrays of range bounds inside ``data``.
        chunk: bytes per thread, a positive multiple of 8 (default :data:`CHUNK`; tests
            pass small ones so that short ranges still cover several threads and blocks).

    Returns:
        A uint32 device array of the ranges' CRCs. Cost: O(bytes / chunk) threads, each
        reading ``chunk`` bytes and doing an O(log range length) shift.
    """
    chunk = CHUNK if chunk is None else chunk
    if chunk <= 0 or chunk % 8:
        raise ValueError(f"chunk must be a positive multiple of 8, got {chunk}")
    starts = np.ascontiguousarray(starts, np.int64)
    stops = np.ascontiguousarray(stops, np.int64)
    nr = starts.shape[0]
    out = cuda.device_array(max(nr, 1), np.uint32)
    if nr == 0:
        return out[:0]
    offs = chunk_offsets(starts, stops, chunk)
    d_starts = cuda.to_device(starts)
    d_stops = cuda.to_device(stops)
    acc = cuda.to_device(np.zeros(nr, np.uint32))
    total = int(offs[-1])
    if total:
        L.launch(_chunks, total)(data, words, d_starts, d_stops, cuda.to_device(offs), chunk, acc)
    L.launch(_finish, nr)(acc, d_starts, d_stops, out)
    return out


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90; built on first use so that importing this module types nothing.
    if name == "PTX_CHECKS":
        from numba import types as T

        return [(_chunks, (T.uint8[::1], T.uint64[::1], T.int64[::1], T.int64[::1], T.int64[::1], T.int64,
                           T.uint32[::1])),
                (_finish, (T.uint32[::1], T.int64[::1], T.int64[::1], T.uint32[::1]))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
