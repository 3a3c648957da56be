"""DirectRouter (RabbitMQ direct and default exchanges) and FanoutRouter."""

from __future__ import annotations

import numpy as np

from ._keyed import KeyPlan
from ._router import Router
from ._routes import Routes
from ._topic_parse import as_bytes


def _binding_key(key, kind: str) -> bytes:
    from ._errors import PatternError

    b = as_bytes(key, kind)
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PatternError(key, kind, f"binding keys must be UTF-8 (bad byte at {exc.start})") from None
    if len(b) > 255:
        raise PatternError(key, kind, f"binding keys are at most 255 bytes (a shortstr), got {len(b)}")
    return b


class DirectRouter(Router):
    """Route each message to the destinations bound with a key byte-equal to its routing key.

    RabbitMQ's direct exchange: no wildcards; the CC and BCC headers (lists of str) add
    routing keys and the answer is the union; a null key matches nothing.

    Args:
        bindings: (key, destination) pairs; keys are str (UTF-8) or bytes of at most 255
            bytes, as a 0-9-1 binding carries.
        alternate: where messages that route nowhere go (a name or another Router).

    Raises PatternError for a binding key RabbitMQ would refuse. Lookup is O(key length)
    per distinct key.
    """

    def __init__(self, bindings, *, alternate=None):
        super().__init__(alternate)
        from .kernels.keys import build_string_table

        dest_index: dict = {}
        key_index: dict = {}
        dests: list = []
        n = 0
        for item in bindings:
            try:
                key, dest = item
            except (TypeError, ValueError):
                raise ValueError(f"a binding is a (key, destination) pair, got {item!r}") from None
            kb = _binding_key(key, "direct")
            d = dest_index.setdefault(dest, len(dest_index))
            k = key_index.setdefault(kb, len(key_index))
            if k == len(dests):
                dests.append(set())
            dests[k].add(d)
            n += 1
        self.n_bindings = n
        self._names = list(dest_index)
        keys = list(key_index)
        self._key_offsets = np.zeros(len(keys) + 1, np.int64)
        np.cumsum([len(k) for k in keys], out=self._key_offsets[1:])
        self._key_data = np.frombuffer(b"".join(keys), np.uint8)
        self._slots, self._hashes = build_string_table(self._key_offsets, self._key_data)
        self._dest_off = np.zeros(len(keys) + 1, np.int64)
        np.cumsum([len(s) for s in dests], out=self._dest_off[1:])
        self._dest = np.asarray([d for s in dests for d in sorted(s)], np.int32)

    @classmethod
    def default_exchange(cls, queues) -> "DirectRouter":
        """RabbitMQ's default exchange: each key routes to the queue of that name, if any.

        The default exchange has no alternate exchange.
        """
        return cls([(q, q) for q in queues])

    def _route_cpu(self, batch) -> Routes:
        from .kernels.direct import lookup_unique

        n = len(batch)
        if n == 0:
            return Routes.empty(0, self._names)
        plan = KeyPlan(batch, header_keys=True)
        col = plan.column
        start, count = lookup_unique(col.offsets, col.data, plan.reps, self._slots, self._hashes,
                                     self._key_offsets, self._key_data, self._dest_off)
        offsets, dest = plan.expand(start, count, self._dest)
        return Routes(offsets, dest, self._names, check=False)

    def __repr__(self) -> str:
        alt = f", alternate={self.alternate!r}" if self.alternate is not None else ""
        return f"DirectRouter(bindings={self.n_bindings}, destinations={len(self._names)}{alt})"


class FanoutRouter(Router):
    """Route every message to every destination (RabbitMQ's fanout exchange).

    Keys, null keys and headers are ignored. A destination listed twice receives a message
    once. With no destinations every message is unroutable (and goes to ``alternate``).
    """

    def __init__(self, destinations, *, alternate=None):
        super().__init__(alternate)
        if isinstance(destinations, (str, bytes)):
            raise TypeError("FanoutRouter takes a list of destination names, got a single name")
        self._names = list(dict.fromkeys(destinations))

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        m = len(self._names)
        offsets = np.arange(n + 1, dtype=np.int64) * m
        dest = np.tile(np.arange(m, dtype=np.int32), n)
        return Routes(offsets, dest, self._names, check=False)
