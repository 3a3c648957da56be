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

    def _route_gpu(self, batch) -> Routes:
        """The CUDA twin of :meth:`_route_cpu` (kernels/cuda_topic.py), giving the same Routes.

        A device batch gives device Routes; a host batch is uploaded (keys, plus headers when
        it has CC or BCC) and gets host Routes. The tables are uploaded once per device.
        """
        from ._device import gpu_routes

        h = batch.headers
        cc_bcc = h is not None and max(h.name_id("CC"), h.name_id("BCC")) >= 0
        return gpu_routes(batch, self._route_on_device, ("keys", "headers") if cc_bcc else ("keys",))

    def _route_on_device(self, batch) -> Routes:
        """Route a device batch; return device Routes."""
        from ._device import device_routes, host_batch, to_device_array, upload_cached
        from .kernels import cuda_topic as G

        tables = upload_cached(self, "direct", (self._slots, self._hashes, self._key_offsets, self._key_data,
                                                self._dest_off, self._dest))
        keys = batch.keys
        offsets, data, validity, ext_off = keys.offsets, keys.data, keys.validity, None
        h = batch.headers
        cc, bcc = (h.name_id("CC"), h.name_id("BCC")) if h is not None else (-1, -1)
        if max(cc, bcc) >= 0:
            offsets, data, validity, ext_off, bad = G.header_keys(h, keys, cc, bcc)
            if bad >= 0:
                KeyPlan(host_batch(batch), header_keys=True)  # raises the CPU path's BatchError
        item_off, item_dest = G.direct_items(tables, offsets, data, validity)
        if ext_off is None:
            return device_routes(item_off, item_dest, self._names)
        none64, none32 = to_device_array(np.zeros(0, np.int64)), to_device_array(np.zeros(0, np.int32))
        out_off, out = G.expand(len(batch), ext_off, item_off, item_dest, none64, none32, none32, none32, 0,
                                0, 0, len(self._names))
        return device_routes(out_off, out, self._names)

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

    def _route_gpu(self, batch) -> Routes:
        """The GPU twin of _route_cpu: device Routes for a device batch, host Routes otherwise."""
        from ._device import batch_device, device_routes, empty_routes
        from .kernels.cuda_hashing import fanout

        n = len(batch)
        on_device = batch_device(batch) == "gpu"
        if not self._names:
            return empty_routes(n, self._names, on_device)
        routes = device_routes(*fanout(n, len(self._names)), self._names)
        return routes if on_device else routes.to_host()
