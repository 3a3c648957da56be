"""RabbitMQ's consistent-hash exchange (x-consistent-hash) over whole batches."""

from __future__ import annotations

import threading

import numpy as np

from ._errors import BatchError
from ._router import Router
from ._routes import Routes

#: The largest binding weight RabbitMQ accepts (MAX_BINDING_WEIGHT, since v4.2.6 / v4.3.0).
MAX_WEIGHT = 10_000

#: jump() reads only the low 21 bits of its seed, so 2^21 jumps tabulate a ring completely.
SEED_BITS = 21
#: Messages routed by direct jumps before the router builds that table: once it has spent
#: about as much on jumps as the table costs, it builds the table and from then on only looks
#: seeds up (so it never spends much more than twice what the cheaper way would have).
TABULATE_AFTER = 1 << SEED_BITS


def _weight(value, k: int, dest) -> int:
    """A binding's weight: an int, or its decimal binding key as RabbitMQ reads it."""
    w = value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        w = int(value)
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, np.integer)) or not 1 <= w <= MAX_WEIGHT:
        raise ValueError(f"ConsistentHashRouter: binding {k} ({dest!r}) needs a weight from 1 to {MAX_WEIGHT} "
                         f"(an int or its decimal string), got {value!r}")
    return int(w)


class ConsistentHashRouter(Router):
    """Route each message to one destination by consistent hashing, as RabbitMQ's x-consistent-hash.

    The exchange lays its bindings on a ring of buckets: a binding of weight W takes the next
    W buckets, in binding order, and only the first binding of a destination counts. A message
    goes to ``ring[jump(value, buckets)]``, where jump is RabbitMQ's jump consistent hash
    (Lamping-Veach driven by Erlang's exs1024 generator) and the value is (RabbitMQ ≥ 3.13):

    * routing-key mode (``hash_header=None``): ``phash2`` of the routing key (a null key as
      the empty key). CC/BCC keys are not hashed, as in RabbitMQ.
    * ``hash_header=H``: header H's value, untyped: str/bytes → phash2 of the bytes; int →
      the int itself (only its low 21 bits matter); bool → phash2 of the atom; missing or
      None → phash2(``undefined``), one fixed bucket for all such messages; an array →
      phash2(``[]``) if empty, else of its head as ``{longstr, Bin}`` or ``{bool, B}``.

    A float, a table, or an array with another head cannot be hashed here (RabbitMQ would hash
    its typed Erlang term) and raises BatchError naming the message. Routing on AMQP
    properties (``hash-property``) is not offered: batches do not carry them.

    RabbitMQ does not keep the ring order stable across restarts (SEMANTICS §6.1), so give the
    bindings in the broker's ring order to reproduce its picks; with the same order the picks
    are bit-identical. Answers never depend on earlier batches (``stateful`` is False); an
    empty ring routes nothing (``alternate``).

    Args:
        bindings: (destination, weight) pairs in ring order; a weight is an int from 1 to
            :data:`MAX_WEIGHT` or its decimal string (the binding key).
        hash_header: None, or the name of the header to hash.
        alternate: see :class:`fastroute.Router`.

    Raises:
        TypeError: a binding that is not a (destination, weight) pair, or a bad header name.
        ValueError: a weight out of range, naming the binding.

    Cost per batch: one parallel pass to hash, one to jump: O(key bytes + n log buckets).
    After :data:`TABULATE_AFTER` messages the router tabulates the bucket of all 2^21 seeds
    that matter (4 or 8 MiB) and from then on jumps by table lookup. Thread-safe.

    GPU twin (``backend="gpu"``, kernels/cuda_phash2.py): the same phash2 and jump functions
    compiled for the device, so the picks (and the BatchError for an unhashable header) are
    bit-identical to the CPU's; a device batch gets device Routes without a host copy. The
    GPU path jumps directly, and reads the seed table instead once the CPU path has built it;
    its messages do not count towards :data:`TABULATE_AFTER`.
    """

    def __init__(self, bindings, hash_header=None, alternate=None):
        super().__init__(alternate)
        if isinstance(bindings, (str, bytes, set, frozenset, dict)) or not hasattr(bindings, "__iter__"):
            raise TypeError(f"ConsistentHashRouter: bindings must be an ordered sequence of "
                            f"(destination, weight) pairs, got {type(bindings).__name__}")
        if hash_header is not None and (not isinstance(hash_header, str) or not hash_header):
            raise TypeError(f"ConsistentHashRouter: hash_header must be None or a non-empty str, "
                            f"got {hash_header!r}")
        self.hash_header = hash_header
        index: dict = {}
        ids, weights = [], []
        self._bindings = []
        for k, pair in enumerate(bindings):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ConsistentHashRouter: binding {k} must be a (destination, weight) pair, "
                                f"got {pair!r}")
            dest, raw = pair
            try:
                hash(dest)
            except TypeError:
                raise TypeError(f"ConsistentHashRouter: binding {k} has an unhashable destination {dest!r}") from None
            w = _weight(raw, k, dest)
            self._bindings.append((dest, w))
            if dest in index:
                continue  # only a destination's first binding takes buckets
            index[dest] = len(index)
            ids.append(index[dest])
            weights.append(w)
        self._names = list(index)
        self._ring = np.repeat(np.asarray(ids, np.int32), np.asarray(weights, np.int64))
        self._table = None
        self._jumped = 0
        self._lock = threading.Lock()

    @property
    def bucket_count(self) -> int:
        """The number of buckets on the ring (the sum of the counted weights)."""
        return int(self._ring.shape[0])

    @property
    def tabulated(self) -> bool:
        """True once the router has built its seed → destination table (see TABULATE_AFTER)."""
        return self._table is not None

    def ring(self) -> list:
        """The destination of every bucket, in bucket order."""
        return [self._names[d] for d in self._ring.tolist()]

    def seeds(self, batch) -> np.ndarray:
        """The int64 value each message is jumped with (phash2 result or integer header)."""
        from ._router import as_batch

        return self._seeds(as_batch(batch))

    def _seeds(self, batch) -> np.ndarray:
        from .kernels import phash2 as K

        n = len(batch)
        if self.hash_header is None:
            keys = batch.keys
            seeds = K.key_seeds(keys.offsets, keys.data)
            if keys.validity is not None:
                seeds[~keys.validity] = K.PHASH2_EMPTY_BINARY
            return seeds
        headers = batch.headers
        name_id = -1 if headers is None else headers.name_id(self.hash_header)
        if name_id < 0:
            return np.full(n, K.PHASH2_UNDEFINED, np.int64)
        seeds, status = K.header_seeds(headers.offsets, headers.name_ids, headers.types, headers.ints,
                                       headers.blob_offsets, headers.blob_data, name_id)
        bad = np.flatnonzero(status)
        if bad.size:
            i = int(bad[0])
            raise self._unhashable(i, int(status[i]))
        return seeds

    def _unhashable(self, i: int, status: int) -> BatchError:
        """The error for message i, whose header value got ``status`` (a phash2.SEED_* code)."""
        from .kernels import phash2 as K

        why = {K.SEED_FLOAT: "a float", K.SEED_TABLE: "a table",
               K.SEED_ARRAY_HEAD: "an array whose first element is not a str or a bool"}[status]
        return BatchError(f"message {i}: header {self.hash_header!r} holds {why}, "
                          f"which ConsistentHashRouter cannot hash (expected str, bytes, int, bool, None "
                          f"or such an array)", i)

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        if self._ring.shape[0] == 0:
            return Routes.empty(n, self._names)
        from .kernels.phash2 import jump_ring

        seeds = self._seeds(batch)
        table = self._table
        if table is not None:
            dest = np.take(table, seeds & ((1 << SEED_BITS) - 1))
        else:
            dest = jump_ring(seeds, self._ring)
            with self._lock:
                self._jumped += n
                if self._table is None and self._jumped >= TABULATE_AFTER:
                    table = jump_ring(np.arange(1 << SEED_BITS, dtype=np.int64), self._ring)
                    small = np.int16 if len(self._names) <= np.iinfo(np.int16).max else np.int32
                    self._table = table.astype(small)
        return Routes(np.arange(n + 1, dtype=np.int64), dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The GPU twin of _route_cpu (kernels/cuda_phash2.py): the same seeds and buckets;
        device Routes for a device batch, host Routes otherwise.

        Only the keys (or, with ``hash_header``, the headers) of a host batch are uploaded and
        only the destinations come back. The ring is uploaded once per device; once the CPU
        path has built the seed table, that is uploaded (once) and read instead of jumping.
        """
        from ._device import batch_device, batch_to_device, empty_routes, single_routes

        n = len(batch)
        on_device = batch_device(batch) == "gpu"
        if self._ring.shape[0] == 0:
            return empty_routes(n, self._names, on_device)
        parts = ("keys",) if self.hash_header is None else ("headers",)
        seeds = self._seeds_on_device(batch_to_device(batch, parts))
        return single_routes(self._dest_on_device(seeds), self._names, on_device)

    def _seeds_on_device(self, batch):
        """The int64 device array of seeds of a device batch; BatchError as on the CPU."""
        from ._device import device_empty
        from .kernels import cuda_phash2 as G
        from .kernels import phash2 as K
        from .kernels.cuda_scan import fill

        if self.hash_header is None:
            keys = batch.keys
            return G.key_seeds(keys.offsets, keys.data, keys.validity)
        headers = batch.headers
        name_id = -1 if headers is None else headers.name_id(self.hash_header)
        if name_id < 0:
            seeds = device_empty(len(batch), np.int64)
            fill(seeds, K.PHASH2_UNDEFINED)
            return seeds
        seeds, status, bad = G.header_seeds(headers.offsets, headers.name_ids, headers.types, headers.ints,
                                            headers.blob_offsets, headers.blob_data, name_id)
        if bad >= 0:
            raise self._unhashable(bad, int(status[bad:bad + 1].copy_to_host()[0]))
        return seeds

    def _dest_on_device(self, seeds):
        """The int32 device array of destination ids of device ``seeds`` (the ring is not empty)."""
        from ._device import upload_cached
        from .kernels import cuda_phash2 as G

        table = self._table  # read once: the CPU path may build it meanwhile
        if table is not None:
            (d_table,) = upload_cached(self, "table", (table,))
            return G.lookup(seeds, d_table)
        (d_ring,) = upload_cached(self, "ring", (self._ring,))
        return G.jump_ring(seeds, d_ring)

    def __repr__(self) -> str:
        extra = "" if self.hash_header is None else f", hash_header={self.hash_header!r}"
        extra += "" if self.alternate is None else f", alternate={self.alternate!r}"
        return f"ConsistentHashRouter({self._bindings!r}{extra})"
