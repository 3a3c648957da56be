"""Extra routing keys from RabbitMQ's CC and BCC headers, read from a HeaderTable's columns."""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _codes as C
from ._config import INLINE, SERIAL


@njit(**INLINE)
def _u32(buf, pos):
    return (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24))


@njit(**INLINE)
def _item_end(buf, pos):
    """Position just past the nested item starting at pos."""
    tag = buf[pos]
    if tag <= C.TAG_TRUE:
        return pos + 1
    if tag == C.TAG_INT or tag == C.TAG_FLOAT:
        return pos + 9
    return pos + 5 + _u32(buf, pos + 1)


@njit(**INLINE)
def _first_entry(h_offsets, name_ids, i, name_id):
    for j in range(h_offsets[i], h_offsets[i + 1]):
        if name_ids[j] == name_id:
            return j
    return -1


@njit(**SERIAL)
def routing_header_keys(h_offsets, name_ids, types, blob_offsets, blob_data, cc_id, bcc_id):
    """The str elements of each message's CC and BCC list headers, as extra routing keys.

    The first header of each name counts (as RabbitMQ's table lookup does); elements that
    are not str are skipped. Returns (owner, key_offsets, key_data, bad): owner[e] is the
    message of extra key e (ascending); ``bad`` is the first message whose CC or BCC header
    is not a list, or -1.
    """
    n = h_offsets.shape[0] - 1
    count = 0
    nbytes = 0
    for i in range(n):
        for name_id in (cc_id, bcc_id):
            if name_id < 0:
                continue
            j = _first_entry(h_offsets, name_ids, i, name_id)
            if j < 0:
                continue
            if types[j] != C.LIST:
                return (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.uint8), np.int64(i))
            b0 = blob_offsets[j]
            end = blob_offsets[j + 1]
            if end - b0 < 9:
                return (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.uint8), np.int64(i))
            items = _u32(blob_data, b0 + 5)
            pos = b0 + 9
            for _ in range(items):
                # a malformed list (from a hostile frame, say) counts as "not a list"
                if pos >= end or (blob_data[pos] > C.TAG_FLOAT and pos + 5 > end):
                    return (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.uint8), np.int64(i))
                nxt = _item_end(blob_data, pos)
                if nxt > end:
                    return (np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.uint8), np.int64(i))
                if blob_data[pos] == C.TAG_STR:
                    count += 1
                    nbytes += nxt - pos - 5
                pos = nxt
    owner = np.empty(count, np.int64)
    key_offsets = np.empty(count + 1, np.int64)
    key_offsets[0] = 0
    key_data = np.empty(nbytes, np.uint8)
    e = 0
    w = 0
    for i in range(n):
        for name_id in (cc_id, bcc_id):
            if name_id < 0:
                continue
            j = _first_entry(h_offsets, name_ids, i, name_id)
            if j < 0:
                continue
            b0 = blob_offsets[j]
            items = _u32(blob_data, b0 + 5)
            pos = b0 + 9
            for _ in range(items):
                if blob_data[pos] == C.TAG_STR:
                    ln = _u32(blob_data, pos + 1)
                    for k in range(ln):
                        key_data[w + k] = blob_data[pos + 5 + k]
                    w += ln
                    owner[e] = i
                    key_offsets[e + 1] = w
                    e += 1
                pos = _item_end(blob_data, pos)
    return owner, key_offsets, key_data, np.int64(-1)
