"""Hashing of byte strings and de-duplication of the keys of a batch.

Real batches repeat keys (a few thousand sensors, a few hundred order types), so routers match
each distinct key once and share the answer. The hash here is internal (never persisted): a
64-bit FNV-1a over the bytes followed by a murmur3 finalizer so that similar keys spread.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL, SERIAL

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@njit(**INLINE)
def mix64(h):
    """murmur3's fmix64: a bijective avalanche of a 64-bit value."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@njit(**INLINE)
def hash_bytes(data, start, end):
    """64-bit hash of data[start:end]."""
    h = _FNV_OFFSET
    for k in range(start, end):
        h ^= np.uint64(data[k])
        h *= _FNV_PRIME
    return mix64(h ^ np.uint64(end - start))


@njit(**INLINE)
def bytes_equal(data_a, a0, a1, data_b, b0, b1):
    """True when data_a[a0:a1] == data_b[b0:b1]."""
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data_a[a0 + k] != data_b[b0 + k]:
            return False
    return True


@njit(**PARALLEL)
def hash_column(offsets, data):
    """The hash of every item of a binary column."""
    n = offsets.shape[0] - 1
    out = np.empty(n, np.uint64)
    for i in prange(n):
        out[i] = hash_bytes(data, offsets[i], offsets[i + 1])
    return out


@njit(**SERIAL)
def _table_size(n):
    size = 16
    while size < 2 * n:
        size *= 2
    return size


@njit(**SERIAL)
def unique_column(offsets, data, valid, hashes):
    """De-duplicate the items of a binary column.

    Args:
        offsets, data: the column.
        valid: bool per item (False = null); nulls are left out and get inverse -1.
        hashes: :func:`hash_column` of the column.

    Returns:
        (inverse int64[n], first int64[u]): item i equals item first[inverse[i]]; ``first``
        lists the first occurrence of each distinct item, in order of appearance.
    """
    n = offsets.shape[0] - 1
    size = _table_size(n)
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, np.int64)
    inverse = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    u = 0
    for i in range(n):
        if not valid[i]:
            inverse[i] = -1
            continue
        h = hashes[i]
        s = h & mask
        a0 = offsets[i]
        a1 = offsets[i + 1]
        while True:
            j = slots[s]
            if j < 0:
                slots[s] = u
                first[u] = i
                inverse[i] = u
                u += 1
                break
            f = first[j]
            if hashes[f] == h and bytes_equal(data, a0, a1, data, offsets[f], offsets[f + 1]):
                inverse[i] = j
                break
            s = (s + np.uint64(1)) & mask
    return inverse, first[:u].copy()


@njit(**SERIAL)
def build_string_table(offsets, data):
    """An open-addressing table of distinct strings: returns (slots, hashes).

    ``slots[s]`` is a string id or -1; look strings up with :func:`lookup_string`.
    The strings must be distinct.
    """
    n = offsets.shape[0] - 1
    size = _table_size(n)
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, np.int32)
    hashes = np.empty(n, np.uint64)
    for i in range(n):
        h = hash_bytes(data, offsets[i], offsets[i + 1])
        hashes[i] = h
        s = h & mask
        while slots[s] >= 0:
            s = (s + np.uint64(1)) & mask
        slots[s] = i
    return slots, hashes


@njit(**INLINE)
def lookup_string(slots, hashes, offsets, data, key_data, k0, k1, h):
    """The id of key_data[k0:k1] (whose hash is h) in a :func:`build_string_table`, or -1."""
    mask = np.uint64(slots.shape[0] - 1)
    s = h & mask
    found = -1
    for _ in range(slots.shape[0]):
        j = slots[s]
        if j < 0:
            break
        if hashes[j] == h and bytes_equal(data, offsets[j], offsets[j + 1], key_data, k0, k1):
            found = j
            break
        s = (s + np.uint64(1)) & mask
    return found
