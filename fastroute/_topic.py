"""TopicRouter: RabbitMQ topic exchanges, MQTT topic filters and NATS subjects."""

from __future__ import annotations

import math

import numba
import numpy as np

from ._keyed import KeyPlan
from ._router import Router
from ._routes import Routes
from ._topic_parse import DIALECTS, parse, shape
from ._topic_table import build_table, table_nbytes
from .kernels import topic as K
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
        dialect = self.dialect
        dest_index: dict = {}
        word_index: dict = {}
        pattern_index: dict = {}
        shapes, flags, plain = [], [], []
        group_index: dict = {}      # MQTT: (share, filter); NATS: queue name -> group id
        group_members: list = []    # MQTT: per group, member dest ids in subscription order
        group_of_pattern: list = [] # MQTT: per pattern, its shared groups
        queue_bindings: dict = {}   # NATS: (pid, dest, group) -> None (a set in order)
        n_bindings = 0
        for item in bindings:
            n_bindings += 1
            queue = None
            if isinstance(item, (tuple, list)) and len(item) == 3:
                pattern, dest, queue = item
                if queue is not None and dialect != "nats":
                    raise ValueError(f"queue groups are a NATS feature; binding {item!r} names one "
                                     f"under dialect {dialect!r}")
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                pattern, dest = item
            else:
                raise ValueError(f"a binding is a (pattern, destination) pair"
                                 f"{' or a (subject, destination, queue_group) triple' if dialect == 'nats' else ''}, "
                                 f"got {item!r}")
            parsed = parse(pattern, dialect, max_hash)
            d = dest_index.get(dest)
            if d is None:
                d = dest_index[dest] = len(dest_index)
            key = (parsed.tokens, parsed.no_dollar)
            pid = pattern_index.get(key)
            if pid is None:
                pid = pattern_index[key] = len(shapes)
                ids = []
                for t in parsed.tokens:
                    if isinstance(t, bytes):
                        w = word_index.get(t)
                        if w is None:
                            w = word_index[t] = len(word_index)
                        ids.append(w)
                    else:
                        ids.append(t)
                sh = shape(tuple(ids))
                shapes.append(sh)
                # middles of '*' alone are implied by the minimum length; only literals need a check
                flags.append((K.HAS_MIDDLES if any(w >= 0 for m in sh.middles for w in m) else 0)
                             | (K.NO_DOLLAR if parsed.no_dollar else 0)
                             | (K.OPEN_ENDED if sh.has_hash else 0))
                plain.append({})
                group_of_pattern.append([])
            if parsed.share is not None:
                gkey = (parsed.share, parsed.tokens)
                g = group_index.get(gkey)
                if g is None:
                    g = group_index[gkey] = len(group_members)
                    group_members.append({})
                    group_of_pattern[pid].append(g)
                group_members[g][d] = None
            elif queue is not None:
                g = group_index.get(queue)
                if g is None:
                    g = group_index[queue] = len(group_index)
                queue_bindings[(pid, d, g)] = None
            else:
                plain[pid][d] = None

        self._names = list(dest_index)
        self.n_bindings = n_bindings
        # group bindings: MQTT members per group, NATS one entry per queue subscription
        gb_group, gb_dest = [], []
        targets = [list(p) for p in plain]
        if dialect == "mqtt":
            first_gb = []
            for g, members in enumerate(group_members):
                first_gb.append(len(gb_group))
                for d in members:
                    gb_group.append(g)
                    gb_dest.append(d)
            for pid, groups in enumerate(group_of_pattern):
                for g in groups:
                    k0 = first_gb[g]
                    targets[pid] += [-(k + 1) for k in range(k0, k0 + len(group_members[g]))]
            self._policy = ROUND_ROBIN
        else:
            for (pid, d, g) in queue_bindings:
                targets[pid].append(-(len(gb_group) + 1))
                gb_group.append(g)
                gb_dest.append(d)
            self._policy = RANDOM
        self._gb_group = np.asarray(gb_group, np.int32)
        self._gb_dest = np.asarray(gb_dest, np.int32)
        self._cursors = np.zeros(max(len(group_index), 1), np.int64)
        self._has_groups = len(gb_group) > 0
        self._table = build_table(shapes, np.asarray(flags, np.uint8), list(word_index), targets,
                                  len(self._names), _DIALECT_CODE[dialect])
        self.stateful = self._has_groups
        self._per_key = 8
        self._gper_key = 4 if self._has_groups else 0

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
        """Per distinct key: (u_off, u_dest, u_goff, u_gb)."""
        t = self._table
        col = plan.column
        max_words = plan.max_key_bytes() + 1
        n_dest = max(len(self._names), 1)
        per_key = min(self._per_key, n_dest)
        gper_key = self._gper_key
        nchunks = max(1, min(plan.reps.shape[0], numba.get_num_threads() * 8))
        while True:
            out, start, count, gout, gstart, gcount, over = K.match_unique(
                t, col.offsets, col.data, plan.reps, max_words, per_key, gper_key, nchunks)
            if not over.any():
                break
            per_key = min(per_key * 4, n_dest) if per_key < n_dest else per_key
            gper_key = max(gper_key * 4, 4)
        u = plan.reps.shape[0]
        if u:
            # size the next batch's buffers from this one's average, with room for skew
            self._per_key = max(8, min(n_dest, math.ceil(2 * count.sum() / u) + 4))
            if self._has_groups:
                self._gper_key = max(4, math.ceil(2 * gcount.sum() / u) + 4)
        u_off, u_dest = K.compact(out, start, count)
        if self._has_groups:
            u_goff, u_gb = K.compact(gout, gstart, gcount)
            return u_off, u_dest, u_goff, u_gb
        return u_off, u_dest, None, None

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        if n == 0:
            return Routes.empty(0, self._names)
        plan = KeyPlan(batch, header_keys=self.dialect == "amqp")
        u_off, u_dest, u_goff, u_gb = self._match(plan)
        groups = None
        if self._has_groups:
            groups = (u_goff, u_gb, self._gb_group, self._gb_dest, self._policy, self._cursors,
                      self._seed, self._counter)
            self._counter += n
        offsets, dest = plan.expand(u_off, u_dest, groups)
        return Routes(offsets, dest, self._names, check=False)

