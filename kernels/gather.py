"""Gather and scatter of variable-length binary columns (Arrow-style offsets + bytes)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL


@njit(**SERIAL)
def gathered_offsets(offsets, indices):
    """The offsets (n+1) of rows ``indices`` of a CSR column laid end to end."""
    n = indices.shape[0]
    out = np.empty(n + 1, np.int64)
    out[0] = 0
    total = 0
    for i in range(n):
        j = indices[i]
        total += offsets[j + 1] - offsets[j]
        out[i + 1] = total
    return out


@njit(**PARALLEL)
def gather_binary(offsets, data, indices):
    """Return (offsets, data) of the rows ``indices`` of a binary column, in that order.

    ``indices`` must already be bounds-checked. Two passes: lengths and a prefix sum, then
    one contiguous copy per row, rows split across threads.
    """
    n = indices.shape[0]
    out_offsets = gathered_offsets(offsets, indices)
    out = np.empty(out_offsets[n], np.uint8)
    for i in prange(n):
        j = indices[i]
        src = offsets[j]
        dst = out_offsets[i]
        ln = out_offsets[i + 1] - dst
        for k in range(ln):
            out[dst + k] = data[src + k]
    return out_offsets, out


@njit(**PARALLEL)
def gather_ranges(offsets, indices):
    """Return (new_offsets, source_positions) selecting the item ranges of rows ``indices``.

    For a column whose row i owns items ``offsets[i]:offsets[i+1]`` (header entries, say), this
    lists the source item positions of the gathered rows so every per-item array can be taken
    with one numpy fancy index.
    """
    n = indices.shape[0]
    out_offsets = gathered_offsets(offsets, indices)
    pos = np.empty(out_offsets[n], np.int64)
    for i in prange(n):
        j = indices[i]
        src = offsets[j]
        dst = out_offsets[i]
        for k in range(out_offsets[i + 1] - dst):
            pos[dst + k] = src + k
    return out_offsets, pos
