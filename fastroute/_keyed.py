"""Shared steps of the routers that route by key: CC/BCC keys, distinct keys, expansion."""

from __future__ import annotations

import numpy as np

from ._batch import BinaryColumn, MessageBatch
from ._errors import BatchError


class KeyPlan:
    """The keys to match for a batch and how they map back to messages.

    ``column`` holds the batch's keys followed by any CC/BCC keys (``owner[e]`` is the
    message of extra key e, or None when there are none); ``inverse`` maps every item of
    ``column`` to a distinct-key id (-1 for a null key) and ``reps`` lists one item index
    per distinct key.
    """

    __slots__ = ("n", "column", "owner", "inverse", "reps")

    def __init__(self, batch: MessageBatch, header_keys: bool):
        from .kernels.keys import hash_column, unique_column

        self.n = len(batch)
        self.column, self.owner = _with_header_keys(batch) if header_keys else (batch.keys, None)
        col = self.column
        valid = col.validity if col.validity is not None else np.ones(len(col), np.bool_)
        hashes = hash_column(col.offsets, col.data)
        self.inverse, self.reps = unique_column(col.offsets, col.data, valid, hashes)

    def max_key_bytes(self) -> int:
        """The longest distinct key, in bytes."""
        if self.reps.shape[0] == 0:
            return 0
        o = self.column.offsets
        return int((o[self.reps + 1] - o[self.reps]).max())

    def expand(self, start, count, buf, groups=None):
        """Per-message (offsets, destinations) from per-distinct-key answers.

        Distinct key u's destinations are buf[start[u]:start[u]+count[u]]. ``groups`` =
        (u_goff, u_gb, gb_group, gb_dest, policy, cursors, seed, counter) when the router has
        groups that pick one member per message (see kernels/expand.py).
        """
        from .kernels.expand import expand_multi, expand_single, keys_per_message
        from .kernels.topic import compact

        if self.owner is None and groups is None:
            return expand_single(self.inverse, start, count, buf)
        n = self.n
        if self.owner is None:
            owner = np.zeros(0, np.int64)
            extra = np.zeros(0, np.int64)
        else:
            owner = self.owner
            extra = self.inverse[n:]
        msg_off, msg_keys = keys_per_message(n, self.inverse[:n], owner, extra)
        u_off, u_dest = compact(buf, start, count)
        if groups is None:
            empty = np.zeros(len(self.reps) + 1, np.int64)
            groups = (empty, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32),
                      0, np.zeros(1, np.int64), 0, 0)
        return expand_multi(msg_off, msg_keys, u_off, u_dest, *groups)


def _with_header_keys(batch: MessageBatch):
    """The batch's keys plus the str elements of its CC and BCC headers (RabbitMQ §5)."""
    h = batch.headers
    if h is None or h.entry_count == 0:
        return batch.keys, None
    cc, bcc = h.name_id("CC"), h.name_id("BCC")
    if cc < 0 and bcc < 0:
        return batch.keys, None
    from .kernels.routing_keys import routing_header_keys

    owner, koff, kdata, bad = routing_header_keys(h.offsets, h.name_ids, h.types, h.blob_offsets,
                                                  h.blob_data, cc, bcc)
    if bad >= 0:
        pairs = [(k, v) for k, v in h.row_pairs(int(bad)) if k in ("CC", "BCC")]
        raise BatchError(f"message {int(bad)}: the CC and BCC headers must be arrays (lists) of "
                         f"strings, got {pairs!r}", int(bad))
    if owner.shape[0] == 0:
        return batch.keys, None
    keys = batch.keys
    base = int(keys.offsets[-1])
    offsets = np.concatenate((keys.offsets, koff[1:] + base))
    data = np.concatenate((keys.data[:base], kdata))
    validity = None
    if keys.validity is not None:
        validity = np.concatenate((keys.validity, np.ones(owner.shape[0], np.bool_)))
    return BinaryColumn(offsets, data, validity), owner
