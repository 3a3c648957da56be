"""Exact-key lookup for direct exchanges."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import PARALLEL
from .keys import hash_bytes, lookup_string


@njit(**PARALLEL)
def lookup_unique(offsets, data, reps, slots, hashes, key_offsets, key_data, dest_off):
    """For each distinct key reps[k], the (start, count) of its destinations in the router's
    destination CSR (count 0 when no binding key equals it)."""
    u = reps.shape[0]
    start = np.zeros(u, np.int64)
    count = np.zeros(u, np.int64)
    for k in prange(u):
        i = reps[k]
        a = offsets[i]
        b = offsets[i + 1]
        j = lookup_string(slots, hashes, key_offsets, key_data, data, a, b, hash_bytes(data, a, b))
        if j >= 0:
            start[k] = dest_off[j]
            count[k] = dest_off[j + 1] - dest_off[j]
    return start, count
