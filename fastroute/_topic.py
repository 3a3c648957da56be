"""TopicRouter: RabbitMQ topic exchanges, MQTT topic filters and NATS subjects."""

from __future__ import annotations

import math
import threading

import numpy as np

from ._keyed import KeyPlan
from ._router import Router
from ._routes import Routes
from ._errors import PatternError
from ._topic_parse import DIALECTS, as_bytes, parse
from ._topic_table import build_table, table_nbytes
from .kernels import topic as K
from .kernels._threads import thread_count
from .kernels.expand import RANDOM, ROUND_ROBIN

_DIALECT_CODE = {"amqp": K.AMQP, "mqtt": K.MQTT, "nats": K.NATS}


class TopicRouter(Router):
    """Route by topic patterns, exactly as RabbitMQ's topic exchange, MQTT or NATS would.

    Args:
        bindings: (pattern, destination) pairs; for NATS also (subject, destination,
            queue_group) triples (queue_group None for a plain subscription). Patterns are
            str (UTF-8) or bytes; destinations any hashable name. A destination bound several
            times receives a message once.
        dialect:
            ``"amqp"`` — words split at '.', the empty key has zero words, empty words are
            words, ``*`` is one word and ``#`` zero or more (only as whole words); the CC and
            BCC headers (lists of str) add routing keys and the answer is the union.
            ``"mqtt"`` — levels split at '/', ``+`` one level, ``#`` the parent level and
            any below it; filters starting with a wildcard never match '$' topics;
            ``$share/{name}/{filter}`` is a shared subscription: each message goes to one
            member of each (name, filter) group, round-robin in message order, the cursor
            carried across batches (shared filters never match '$' topics, as in
            mosquitto). A topic mosquitto would refuse (empty, with '+'/'#', or not valid
            restricted UTF-8) routes nowhere.
            ``"nats"`` — tokens split at '.', ``*`` one token, ``>`` one or more trailing
            tokens; a subject with an empty token reaches nobody; members of a queue group
            (by group name, across all matching subjects) compete: each message reaches one,
            picked by a seeded generator.
        alternate: where messages that route nowhere go (a name or another Router).
        seed: seed of the NATS queue-group picks (None: from the OS).
        max_hash_wildcards: AMQP only; refuse bindings with more '#' words (RabbitMQ 4.3.5
            and later refuse more than 2; earlier versions accept any number).

    Raises:
        PatternError: a pattern the broker would refuse (naming pattern, dialect and rule).
        ValueError: an unknown dialect, or a queue group outside NATS.

    A null key routes nowhere. Compilation is O(total pattern words); memory O(patterns).
    Each thread that routes keeps its largest match buffer (about 4 bytes × destinations per
    key × distinct keys of its largest batch) for the next batch, sparing fresh pages.
    """

    def __init__(self, bindings, dialect: str = "amqp", *, alternate=None, seed=None,
                 max_hash_wildcards: int | None = None):
        super().__init__(alternate)
        if dialect not in _DIALECT_CODE:
            raise ValueError(f"dialect must be one of {', '.join(map(repr, DIALECTS))}, got {dialect!r}")
        self.dialect = dialect
        self._seed = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] >> np.uint64(1))
        self._counter = 0
        self._compile(bindings, max_hash_wildcards)

    # ----------------------------------------------------------------- compile
    def _compile(self, bindings, max_hash):
        from .kernels.topic_parse import tokenize_patterns, unique_patterns

        dialect = self.dialect
        patterns, dests, queues = _split_bindings(bindings, dialect)
        dest_index: dict = {}
        dest_ids = np.fromiter((dest_index.setdefault(d, len(dest_index)) for d in dests), np.int64,
                               len(dests))
        self._names = list(dest_index)
        self.n_bindings = len(patterns)
        enc = [as_bytes(p, dialect) for p in patterns]
        shares: dict = {}  # binding index -> share name (MQTT shared subscriptions)
        refused = []       # shared subscriptions the parser refused
        if dialect == "mqtt":
            for i, p in enumerate(enc):
                if p.startswith(b"$share/"):
                    try:
                        parsed = parse(p, dialect)
                    except PatternError:
                        refused.append(i)
                        enc[i] = b"x"   # stands in until the first refused pattern is reported
                        continue
                    shares[i] = parsed.share
                    enc[i] = p[len(b"$share/") + len(parsed.share) + 1:]
        offsets = np.zeros(len(enc) + 1, np.int64)
        np.cumsum(np.fromiter(map(len, enc), np.int64, len(enc)), out=offsets[1:])
        data = np.frombuffer(b"".join(enc), np.uint8)
        status, tok_off, toks, word_offsets, word_data = tokenize_patterns(
            offsets, data, _DIALECT_CODE[dialect], -1 if max_hash is None else int(max_hash))
        if status.any() or refused:
            bad = min(([int(np.flatnonzero(status)[0])] if status.any() else []) + refused)
            parse(patterns[bad], dialect, max_hash)  # raises the PatternError with its rule
            raise PatternError(patterns[bad], dialect, f"refused (code {int(status[bad])})")
        no_dollar = np.zeros(len(enc), np.int64)
        if dialect == "mqtt" and len(enc):
            nonempty = offsets[1:] > offsets[:-1]
            first = np.where(nonempty, data[np.minimum(offsets[:-1], max(data.shape[0] - 1, 0))], 0)
            no_dollar = ((first == ord("+")) | (first == ord("#"))).astype(np.int64)
            for i in shares:
                no_dollar[i] = 1
        pid, first_row = unique_patterns(tok_off, toks, no_dollar)

        # targets: plain (pattern, destination) pairs once each, then group members
        grouped = np.zeros(len(enc), np.bool_)
        for i in shares:
            grouped[i] = True
        for i, q in enumerate(queues):
            if q is not None:
                grouped[i] = True
        n_dest = max(len(self._names), 1)
        pairs = np.unique(pid[~grouped] * n_dest + dest_ids[~grouped])
        t_pid = [pairs // n_dest]
        t_val = [(pairs % n_dest).astype(np.int64)]
        gb_group, gb_dest = [], []
        group_index: dict = {}
        if shares:
            # MQTT: a group is (share name, filter); members in subscription order
            members: dict = {}
            for i in sorted(shares):
                key = (shares[i], int(pid[i]))
                members.setdefault(key, {})[int(dest_ids[i])] = None
            g_pid, g_val = [], []
            for (share, p), ms in members.items():
                g = group_index.setdefault((share, p), len(group_index))
                for d in ms:
                    g_pid.append(p)
                    g_val.append(-(len(gb_group) + 1))
                    gb_group.append(g)
                    gb_dest.append(d)
            t_pid.append(np.asarray(g_pid, np.int64))
            t_val.append(np.asarray(g_val, np.int64))
        elif grouped.any():
            # NATS: one candidate per distinct (subject, destination, queue) binding
            seen: dict = {}
            for i in np.flatnonzero(grouped).tolist():
                seen[(int(pid[i]), int(dest_ids[i]), group_index.setdefault(queues[i], len(group_index)))] = None
            g_pid, g_val = [], []
            for (p, d, g) in seen:
                g_pid.append(p)
                g_val.append(-(len(gb_group) + 1))
                gb_group.append(g)
                gb_dest.append(d)
            t_pid.append(np.asarray(g_pid, np.int64))
            t_val.append(np.asarray(g_val, np.int64))
        all_pid = np.concatenate(t_pid)
        order = np.argsort(all_pid, kind="stable")
        n_pat = first_row.shape[0]
        pat_tgt_off = np.zeros(n_pat + 1, np.int32)
        np.cumsum(np.bincount(all_pid, minlength=n_pat), out=pat_tgt_off[1:])
        tgt = np.concatenate(t_val)[order].astype(np.int32)

        self._policy = ROUND_ROBIN if dialect == "mqtt" else RANDOM
        self._gb_group = np.asarray(gb_group, np.int32)
        self._gb_dest = np.asarray(gb_dest, np.int32)
        self._cursors = np.zeros(max(len(group_index), 1), np.int64)
        self._has_groups = len(gb_group) > 0
        self._table = build_table(tok_off, toks, first_row, no_dollar[first_row].astype(np.bool_),
                                  pat_tgt_off, tgt, word_offsets, word_data, len(self._names),
                                  _DIALECT_CODE[dialect])
        self.stateful = self._has_groups
        self._per_key = 8
        self._gper_key = 4 if self._has_groups else 0
        self._scratch = threading.local()

    @property
    def table_nbytes(self) -> int:
        """Memory held by the compiled routing table, in bytes."""
        return table_nbytes(self._table) + self._gb_group.nbytes + self._gb_dest.nbytes

    def __repr__(self) -> str:
        alt = f", alternate={self.alternate!r}" if self.alternate is not None else ""
        return (f"TopicRouter(dialect={self.dialect!r}, bindings={self.n_bindings}, "
                f"destinations={len(self._names)}{alt})")

    # ----------------------------------------------------------------- route
    def _match(self, plan: KeyPlan):
        """Per distinct key: ((start, count, buf) of its destinations, its group targets as a
        CSR (u_goff, u_gb) or None)."""
        t = self._table
        col = plan.column
        max_words = plan.max_key_bytes() + 1
        n_dest = max(len(self._names), 1)
        per_key = min(self._per_key, n_dest)
        gper_key = self._gper_key
        nchunks = max(1, min(plan.reps.shape[0] // 256, thread_count() * 4))
        spare = getattr(self._scratch, "out", None)
        while True:
            out, start, count, gout, gstart, gcount, over = K.match_unique(
                t, col.offsets, col.data, plan.reps, max_words, per_key, gper_key, nchunks, spare)
            if not over.any():
                break
            per_key = min(per_key * 4, n_dest) if per_key < n_dest else per_key
            gper_key = max(gper_key * 4, 4)
        # keep this thread's output buffer for the next batch (the answers are copied out of
        # it before route() returns)
        self._scratch.out = out if spare is None or out.base is not spare else spare
        u = plan.reps.shape[0]
        if u:
            # size the next batch's buffers from this one's average, with room for skew
            self._per_key = max(8, min(n_dest, math.ceil(2 * count.sum() / u) + 4))
            if self._has_groups:
                self._gper_key = max(4, math.ceil(2 * gcount.sum() / u) + 4)
        if self._has_groups:
            u_goff, u_gb = K.compact(gout, gstart, gcount)
            return (start, count, out), (u_goff, u_gb)
        return (start, count, out), None

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        if n == 0:
            return Routes.empty(0, self._names)
        plan = KeyPlan(batch, header_keys=self.dialect == "amqp")
        answers, group_targets = self._match(plan)
        groups = None
        if self._has_groups:
            groups = (*group_targets, self._gb_group, self._gb_dest, self._policy, self._cursors,
                      self._seed, self._counter)
            self._counter += n
        offsets, dest = plan.expand(*answers, groups)
        return Routes(offsets, dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The CUDA twin of :meth:`_route_cpu` (kernels/cuda_topic.py), giving the same Routes.

        A device batch gives device Routes; a host batch is uploaded (keys, plus headers when
        it has CC or BCC) and gets host Routes. The table is uploaded once per device. Runs on
        the CPU instead, with the same answer: a table deeper than the device matcher's
        fixed limits, or a batch with a key past them (see kernels/cuda_topic.py).
        """
        from ._device import batch_device, gpu_routes, host_batch, routes_to_device
        from .kernels import cuda_topic as G

        if not G.fits(self._table):
            routes = self._route_cpu(host_batch(batch))
            return routes_to_device(routes) if batch_device(batch) == "gpu" else routes
        cc_bcc = self.dialect == "amqp" and max(_routing_header_ids(batch)) >= 0
        return gpu_routes(batch, self._route_on_device, ("keys", "headers") if cc_bcc else ("keys",))

    def _route_on_device(self, batch) -> Routes:
        """Route a device batch; return device Routes."""
        from ._device import device_routes, host_batch, routes_to_device, to_device_array, upload_cached
        from .kernels import cuda_topic as G
        from .kernels.expand import expand_multi

        n = len(batch)
        dt = G.upload_table(self._table, lambda arrays: upload_cached(self, "topic", arrays))
        keys = batch.keys
        offsets, data, validity, ext_off = keys.offsets, keys.data, keys.validity, None
        cc, bcc = _routing_header_ids(batch) if self.dialect == "amqp" else (-1, -1)
        if max(cc, bcc) >= 0:
            offsets, data, validity, ext_off, bad = G.header_keys(batch.headers, keys, cc, bcc)
            if bad >= 0:
                KeyPlan(host_batch(batch), header_keys=True)  # raises the CPU path's BatchError
        items = G.topic_items(dt, offsets, data, validity, self._has_groups)
        if items is None:
            return routes_to_device(self._route_cpu(host_batch(batch)))
        item_off, item_dest, item_goff, item_gb = items
        if ext_off is None and not self._has_groups:
            return device_routes(item_off, item_dest, self._names)
        if self._has_groups and self._policy == ROUND_ROBIN:
            # round-robin cursors advance message by message: the host does the picks
            host = [a.copy_to_host() for a in items]
            ident = np.arange(n + 1, dtype=np.int64)
            out_off, out = expand_multi(ident, ident[:n], *host, self._gb_group, self._gb_dest,
                                        self._policy, self._cursors, self._seed, self._counter)
            self._counter += n
            return device_routes(to_device_array(out_off), to_device_array(out), self._names)
        gb_group, gb_dest = upload_cached(self, "groups", (self._gb_group, self._gb_dest))
        out_off, out = G.expand(n, ext_off if ext_off is not None else to_device_array(np.zeros(0, np.int64)),
                                item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, RANDOM,
                                self._seed, self._counter, len(self._names))
        if self._has_groups:
            self._counter += n
        return device_routes(out_off, out, self._names)


def _routing_header_ids(batch) -> tuple:
    """Ids of the CC and BCC header names in the batch's header table (-1: absent)."""
    h = batch.headers
    if h is None:
        return -1, -1
    return h.name_id("CC"), h.name_id("BCC")


def _split_bindings(bindings, dialect: str):
    """(patterns, destinations, queue groups) from (pattern, destination[, queue]) items."""
    patterns, dests, queues = [], [], []
    for item in bindings:
        queue = None
        if isinstance(item, (tuple, list)) and len(item) == 2:
            pattern, dest = item
        elif isinstance(item, (tuple, list)) and len(item) == 3:
            pattern, dest, queue = item
            if queue is not None and dialect != "nats":
                raise ValueError(f"queue groups are a NATS feature; binding {item!r} names one "
                                 f"under dialect {dialect!r}")
        else:
            triple = " or a (subject, destination, queue_group) triple" if dialect == "nats" else ""
            raise ValueError(f"a binding is a (pattern, destination) pair{triple}, got {item!r}")
        patterns.append(pattern)
        dests.append(dest)
        queues.append(queue)
    return patterns, dests, queues
