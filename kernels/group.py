"""Grouping of routed messages by destination, and splicing of route tables."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import SERIAL
from .topic import sort_unique


@njit(**SERIAL)
def group_by_destination(offsets, destinations, n_names):
    """Transpose CSR routes: return (group_offsets[n_names+1], message_indices).

    A counting sort over destination ids; message indices stay ascending within each group
    because messages are visited in order. O(messages + deliveries + names).
    """
    n = offsets.shape[0] - 1
    counts = np.zeros(n_names + 1, np.int64)
    for k in range(destinations.shape[0]):
        counts[destinations[k] + 1] += 1
    for d in range(n_names):
        counts[d + 1] += counts[d]
    group_offsets = counts.copy()
    cursor = counts[:n_names].copy()
    out = np.empty(destinations.shape[0], np.int64)
    for i in range(n):
        for k in range(offsets[i], offsets[i + 1]):
            d = destinations[k]
            out[cursor[d]] = i
            cursor[d] += 1
    return group_offsets, out


@njit(**SERIAL)
def splice_routes(offsets, destinations, rows, sub_offsets, sub_destinations, sub_id_map):
    """Replace the (empty) routes of messages ``rows`` by sub-routes mapped through ``sub_id_map``.

    ``rows`` ascending; sub-route r belongs to message rows[r]. Each replaced message's ids are
    re-sorted after mapping so the result keeps ascending, unique ids per message.
    """
    n = offsets.shape[0] - 1
    counts = np.empty(n, np.int64)
    for i in range(n):
        counts[i] = offsets[i + 1] - offsets[i]
    for r in range(rows.shape[0]):
        counts[rows[r]] = sub_offsets[r + 1] - sub_offsets[r]
    new_offsets = np.empty(n + 1, np.int64)
    new_offsets[0] = 0
    for i in range(n):
        new_offsets[i + 1] = new_offsets[i] + counts[i]
    out = np.empty(new_offsets[n], np.int32)
    r = 0
    for i in range(n):
        dst = new_offsets[i]
        if r < rows.shape[0] and rows[r] == i:
            m = 0
            for k in range(sub_offsets[r], sub_offsets[r + 1]):
                out[dst + m] = sub_id_map[sub_destinations[k]]
                m += 1
            # mapped ids stay distinct (the id map is one-to-one), so this only sorts
            sort_unique(out, dst, dst + m)
            r += 1
        else:
            for k in range(offsets[i], offsets[i + 1]):
                out[dst] = destinations[k]
                dst += 1
    return new_offsets, out
