"""Kafka's key hashes (murmur2, crc32, fnv1a), counter-based random draws, and their batch drivers.

Per-key functions (``murmur2``, ``crc32``, ``fnv1a``, ``mix64``) are plain Python written in the
subset that both ``numba.njit`` and ``numba.cuda.jit(device=True)`` compile: fixed-width integer
scalars, reads of a uint8 array between int64 bounds, module-level constant tables, no
allocation and no Python objects. The ``*_cpu`` names are their njit builds; the drivers below
call those inside ``prange`` loops.

Random picks are counter-based: draw k of a stream is ``mix64(seed + k * GOLDEN)`` (SplitMix64),
so a batch's draws depend only on the seed and each message's position in the stream, never on
the thread count, and a stream split into batches gives the same picks as one batch.

Nothing here validates input; :mod:`fastroute._partitioner` and :mod:`fastroute._spread` do.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL

_U32 = np.uint32
_U64 = np.uint64

# Algorithm codes for :func:`partitions`.
MURMUR2 = 0
CRC32 = 1
FNV1A = 2

# What :func:`partitions` does with a null key (and, under EMPTY_RANDOM, an empty one).
#: hash a null key as the empty key (Java murmur2, librdkafka consistent / murmur2 / fnv1a)
NULL_HASHED = 0
#: a null key gets a random partition; an empty key is hashed (murmur2_random, fnv1a_random)
NULL_RANDOM = 1
#: a null or empty key gets a random partition (librdkafka consistent_random)
EMPTY_RANDOM = 2

# ---------------------------------------------------------------------------------- murmur2

_MM_M = _U32(0x5BD1E995)
_MM_SEED = _U32(0x9747B28C)


def murmur2(data, start, end):
    """Kafka's murmur2 (Java ``Utils.murmur2``) of ``data[start:end]``, as uint32 bits.

    Read the result as int32 for Java's value; ``& 0x7FFFFFFF`` is ``toPositive``.
    """
    n = end - start
    h = _U32(_MM_SEED ^ _U32(n & 0xFFFFFFFF))
    # Unsigned indices: numba adds a negative-index fix-up to every signed index, and that
    # stops LLVM from merging the four byte loads below into one 32-bit load (4x slower).
    i = _U64(start)
    stop = _U64(start + (n & ~3))
    while i < stop:
        k = _U32(_U32(data[i]) | (_U32(data[i + _U64(1)]) << _U32(8))
                 | (_U32(data[i + _U64(2)]) << _U32(16)) | (_U32(data[i + _U64(3)]) << _U32(24)))
        k = _U32(k * _MM_M)
        k = _U32(k ^ (k >> _U32(24)))
        k = _U32(k * _MM_M)
        h = _U32(_U32(h * _MM_M) ^ k)
        i += _U64(4)
    t = n & 3
    if t == 3:
        h = _U32(h ^ (_U32(data[stop + _U64(2)]) << _U32(16)))
    if t >= 2:
        h = _U32(h ^ (_U32(data[stop + _U64(1)]) << _U32(8)))
    if t >= 1:
        h = _U32(h ^ _U32(data[stop]))
        h = _U32(h * _MM_M)
    h = _U32(h ^ (h >> _U32(13)))
    h = _U32(h * _MM_M)
    h = _U32(h ^ (h >> _U32(15)))
    return h


# ---------------------------------------------------------------------------------- crc32

def _crc32_tables() -> np.ndarray:
    """Slicing-by-8 tables for CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320), shape (8, 256)."""
    c = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        c = np.where(c & 1, np.uint32(0xEDB88320) ^ (c >> 1), c >> 1).astype(np.uint32)
    tables = np.empty((8, 256), np.uint32)
    tables[0] = c
    for k in range(1, 8):
        prev = tables[k - 1]
        tables[k] = (prev >> 8) ^ tables[0][prev & 0xFF]
    return tables


#: T[k][b]: the CRC contribution of byte b followed by k zero bytes.
_CRC_T = _crc32_tables()
_FF = _U32(0xFF)


def crc32(data, start, end):
    """CRC-32/ISO-HDLC (zlib, librdkafka ``rd_crc32``) of ``data[start:end]``, as uint32.

    Slicing-by-8: eight table lookups per 8 input bytes, then one per remaining byte.
    """
    crc = _U32(0xFFFFFFFF)
    i = _U64(start)  # unsigned for the same reason as in murmur2
    e = _U64(end)
    while i + _U64(8) <= e:
        lo = _U32(crc ^ (_U32(data[i]) | (_U32(data[i + _U64(1)]) << _U32(8))
                         | (_U32(data[i + _U64(2)]) << _U32(16)) | (_U32(data[i + _U64(3)]) << _U32(24))))
        crc = _U32(_CRC_T[7, lo & _FF] ^ _CRC_T[6, (lo >> _U32(8)) & _FF]
                   ^ _CRC_T[5, (lo >> _U32(16)) & _FF] ^ _CRC_T[4, lo >> _U32(24)]
                   ^ _CRC_T[3, data[i + _U64(4)]] ^ _CRC_T[2, data[i + _U64(5)]]
                   ^ _CRC_T[1, data[i + _U64(6)]] ^ _CRC_T[0, data[i + _U64(7)]])
        i += _U64(8)
    while i < e:
        crc = _U32(_CRC_T[0, (crc ^ _U32(data[i])) & _FF] ^ (crc >> _U32(8)))
        i += _U64(1)
    return _U32(crc ^ _U32(0xFFFFFFFF))


# ---------------------------------------------------------------------------------- fnv1a

_FNV_PRIME = _U32(0x01000193)
_FNV_BASIS = _U32(0x811C9DC5)
_SIGN = _U32(0x80000000)


def fnv1a(data, start, end):
    """librdkafka's fnv1a (``rd_fnv1a``) of ``data[start:end]``, as uint32.

    32-bit FNV-1a, then read as int32 and negated when negative (INT32_MIN stays 0x80000000),
    as librdkafka and Sarama's hash partitioner do.
    """
    h = _FNV_BASIS
    i = _U64(start)
    e = _U64(end)
    while i < e:
        h = _U32(_U32(h ^ _U32(data[i])) * _FNV_PRIME)
        i += _U64(1)
    if h >= _SIGN:
        h = _U32(_U32(0) - h)  # two's-complement negation, mod 2^32
    return h


# ---------------------------------------------------------------------------------- random

#: SplitMix64's increment (2^64 / golden ratio).
GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


def mix64(x):
    """SplitMix64's finalizer: a bijective 64-bit mix; ``mix64(seed + k * GOLDEN)`` is draw k."""
    z = _U64(x)
    z = _U64((z ^ (z >> _U64(30))) * _MIX1)
    z = _U64((z ^ (z >> _U64(27))) * _MIX2)
    return _U64(z ^ (z >> _U64(31)))


murmur2_cpu = njit(**INLINE)(murmur2)
crc32_cpu = njit(**INLINE)(crc32)
fnv1a_cpu = njit(**INLINE)(fnv1a)
mix64_cpu = njit(**INLINE)(mix64)


# ---------------------------------------------------------------------------------- drivers

@njit(**PARALLEL)
def partitions(offsets, data, validity, n_partitions, algorithm, null_rule, seed, counter):
    """Return the int32 partition of every key of a binary column.

    Args:
        offsets, data: the column (int64 n+1 offsets, uint8 bytes).
        validity: bool per key, False = null; an empty array when no key is null.
        n_partitions: 1 .. 2^31-1.
        algorithm: MURMUR2 (``(h & 0x7fffffff) % n``), CRC32 or FNV1A (``h % n``, unsigned).
        null_rule: NULL_HASHED, NULL_RANDOM or EMPTY_RANDOM (see the module constants).
        seed, counter: uint64 stream key and the stream position of key 0; a key that takes
            a random partition uses draw ``counter + i``.

    One pass, keys split across threads; O(total key bytes + n).
    """
    n = offsets.shape[0] - 1
    out = np.empty(n, np.int32)
    has_nulls = validity.shape[0] != 0
    np64 = np.int64(n_partitions)
    s = _U64(seed)
    c = _U64(counter)
    for i in prange(n):
        start = offsets[i]
        end = offsets[i + 1]
        null = has_nulls and not validity[i]
        if null:
            start = end  # a null key's bytes, if any, are not part of it
        if (null and null_rule != NULL_HASHED) or (null_rule == EMPTY_RANDOM and start == end):
            r = mix64_cpu(s + (c + _U64(i)) * GOLDEN)
            out[i] = np.int32(r % _U64(np64))
        elif algorithm == MURMUR2:
            out[i] = np.int32((np.int64(murmur2_cpu(data, start, end)) & 0x7FFFFFFF) % np64)
        elif algorithm == CRC32:
            out[i] = np.int32(np.int64(crc32_cpu(data, start, end)) % np64)
        else:
            out[i] = np.int32(np.int64(fnv1a_cpu(data, start, end)) % np64)
    return out


@njit(**PARALLEL)
def random_below(n, bound, seed, counter):
    """Return n int32 draws uniform in [0, bound): draw ``counter + i`` of the stream ``seed``.

    ``bound`` ≥ 1. The modulo bias is below bound / 2^64.
    """
    out = np.empty(n, np.int32)
    b = _U64(bound)
    s = _U64(seed)
    c = _U64(counter)
    for i in prange(n):
        out[i] = np.int32(mix64_cpu(s + (c + _U64(i)) * GOLDEN) % b)
    return out


@njit(**PARALLEL)
def weighted_choice(n, cumulative, last, seed, counter):
    """Return n int32 indices drawn with probability proportional to their weights.

    ``cumulative`` is the running sum of non-negative weights (float64, last entry > 0);
    ``last`` is the index of the last positive weight, the answer when rounding lands a draw
    on the total. Index k is drawn when ``cumulative[k-1] <= u * total < cumulative[k]``, so a
    zero weight is never drawn. Binary search: O(n log len(cumulative)).
    """
    out = np.empty(n, np.int32)
    m = cumulative.shape[0]
    total = cumulative[m - 1]
    scale = total * 2.0 ** -53
    s = _U64(seed)
    c = _U64(counter)
    for i in prange(n):
        r = mix64_cpu(s + (c + _U64(i)) * GOLDEN)
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
    return out
