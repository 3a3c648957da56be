"""Kafka partitioners (Java client and librdkafka) over whole batches, and one-key helpers."""

from __future__ import annotations

import numpy as np

from ._router import Router
from ._routes import Routes
from ._spread import RandomStream

#: The algorithm names a Partitioner accepts.
ALGORITHMS = ("murmur2", "consistent", "fnv1a", "murmur2_random", "consistent_random", "fnv1a_random")

#: ``names`` holds one int per partition (Routes keeps a list), which bounds a Partitioner.
MAX_PARTITIONS = (1 << 31) - 1
#: Kafka partition ids are int32; the one-key helpers need no names and take any of them.
_MAX_PARTITION_ID = (1 << 31) - 1
_NO_NULLS = np.zeros(0, np.bool_)
_NO_BYTES = np.zeros(0, np.uint8)


def _codes(algorithm: str):
    """(hash code, null rule code) of kernels/hashing.py; imported late so that importing
    this module does not import numba."""
    from .kernels import hashing as H

    base, _, random = algorithm.partition("_")
    code = {"murmur2": H.MURMUR2, "consistent": H.CRC32, "fnv1a": H.FNV1A}[base]
    if not random:
        return code, H.NULL_HASHED
    return code, H.EMPTY_RANDOM if base == "consistent" else H.NULL_RANDOM


def _check_count(n, who: str = "Partitioner", top: int = MAX_PARTITIONS) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 1 <= n <= top:
        raise ValueError(f"{who}: n (the partition count) must be an int from 1 to {top}, got {n!r}")
    return int(n)


class Partitioner(Router):
    """Pick each message's Kafka partition from its key, as a Kafka client would.

    Algorithms (SEMANTICS.md §8–9); h is the key's hash, ``%`` unsigned:

    ============================ ======================================================
    ``"murmur2"``                Java client: ``(murmur2(key) & 0x7fffffff) % n``
    ``"consistent"``             librdkafka: ``crc32(key) % n`` (CRC-32 as zlib)
    ``"fnv1a"``                  librdkafka / Sarama: ``fnv1a(key) % n``
    ``"murmur2_random"``         murmur2, but a null key gets a random partition
    ``"consistent_random"``      consistent, but a null **or empty** key gets a random one
    ``"fnv1a_random"``           fnv1a, but a null key gets a random partition
    ============================ ======================================================

    Under the three non-random algorithms a null key hashes like the empty key, as librdkafka
    does (the Java client would instead use its sticky partitioner, which only promises a
    distribution). Random picks come from a seeded counter-based stream that carries across
    batches (see :class:`fastroute._spread.RandomStream`): the same seed gives the same
    picks, and routing batches one after the other equals routing their concatenation. The
    *_random algorithms are therefore ``stateful``; the others are not.

    ``names`` are the partition numbers ``0 .. n-1``; every message has exactly one
    destination, so ``routes.destinations`` is the partition array (also returned by
    :meth:`partitions`) and ``routes.offsets`` is ``arange(len(batch) + 1)``.

    Args:
        n: the partition count, an int from 1 to :data:`MAX_PARTITIONS` (2^31 - 1, Kafka's
            int32 ids; ``names`` is a range). Every partition counts, available or not.
        algorithm: one of :data:`ALGORITHMS`.
        seed: None (fresh entropy) or a non-negative int, for the random picks.
        alternate: accepted for the Router interface; no message is ever unroutable.

    Raises:
        ValueError: a bad ``n``, an unknown algorithm (the message lists the valid names), or
            a bad seed.

    Cost: one parallel pass over the key bytes, O(total key bytes + n). The kernel compiles
    on first use, then loads from numba's on-disk cache.
    """

    def __init__(self, n, algorithm: str = "murmur2", seed=None, alternate=None):
        super().__init__(alternate)
        self._n = _check_count(n)
        if algorithm not in ALGORITHMS:
            raise ValueError(f"Partitioner: algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, "
                             f"got {algorithm!r}")
        self.algorithm = algorithm
        self.stateful = algorithm.endswith("_random")
        self._stream = RandomStream(seed)
        self._names = range(self._n)
        self._codes = None

    @property
    def n(self) -> int:
        """The partition count."""
        return self._n

    @property
    def seed(self):
        """The seed given (None when random picks were seeded from fresh entropy)."""
        return self._stream.seed

    def partitions(self, batch, backend: str = "auto") -> np.ndarray:
        """Return the partition of every message of ``batch`` as an int32 array.

        Same arguments and errors as :meth:`route`; this is ``route(batch).destinations``.
        """
        return self.route(batch, backend).destinations

    def _route_cpu(self, batch) -> Routes:
        from .kernels.hashing import partitions

        if self._codes is None:
            self._codes = _codes(self.algorithm)
        keys = batch.keys
        count = len(keys)
        first = self._stream.reserve(count) if self.stateful else np.uint64(0)
        validity = _NO_NULLS if keys.validity is None else keys.validity
        dest = partitions(keys.offsets, keys.data, validity, self._n, self._codes[0], self._codes[1],
                          self._stream.key, first)
        return Routes(np.arange(count + 1, dtype=np.int64), dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The GPU twin of _route_cpu (kernels/cuda_hashing.py): the same partitions and the
        same random picks; device Routes for a device batch, host Routes otherwise."""
        from ._device import batch_device, column_to_device, single_routes
        from .kernels.cuda_hashing import partitions

        if self._codes is None:
            self._codes = _codes(self.algorithm)
        on_device = batch_device(batch) == "gpu"
        keys = column_to_device(batch.keys)
        count = len(keys)
        first = self._stream.reserve(count) if self.stateful else np.uint64(0)
        dest = partitions(keys.offsets, keys.data, keys.validity, self._n, self._codes[0], self._codes[1],
                          self._stream.key, first)
        return single_routes(dest, self._names, on_device)

    def __repr__(self) -> str:
        extra = "" if self.seed is None else f", seed={self.seed}"
        extra += "" if self.alternate is None else f", alternate={self.alternate!r}"
        return f"Partitioner({self._n}, algorithm={self.algorithm!r}{extra})"


# ------------------------------------------------------------------------- one-key helpers

def _key_bytes(key, who: str) -> np.ndarray | None:
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode("utf-8")
    elif not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"{who}: key must be bytes, str or None, got {type(key).__name__}")
    return np.frombuffer(key, np.uint8)


def _hash(fn_name: str, key, who: str) -> int:
    from .kernels import hashing

    data = _key_bytes(key, who)
    if data is None:
        data = _NO_BYTES
    return int(getattr(hashing, fn_name)(data, 0, data.shape[0]))


def murmur2(key) -> int:
    """Kafka's murmur2 of one key as Java's ``Utils.murmur2`` returns it (a signed int32).

    ``key`` is bytes or str (UTF-8, as Kafka's StringSerializer writes it); None hashes as
    the empty key. Raises TypeError for anything else. For many keys, use a Partitioner.
    """
    h = _hash("murmur2_cpu", key, "murmur2")
    return h - (1 << 32) if h & 0x80000000 else h


def crc32(key) -> int:
    """CRC-32/ISO-HDLC of one key (as ``zlib.crc32``), unsigned; None counts as empty."""
    return _hash("crc32_cpu", key, "crc32")


def fnv1a(key) -> int:
    """librdkafka's fnv1a of one key (unsigned, its sign-folded form); None counts as empty."""
    return _hash("fnv1a_cpu", key, "fnv1a")


def murmur2_partition(key, n: int) -> int:
    """The Java client's partition of one key: ``(murmur2(key) & 0x7fffffff) % n``.

    ``n`` is an int from 1 to 2^31-1. A None key is hashed as the empty key (librdkafka's
    ``murmur2``). Raises ValueError for a bad ``n`` and TypeError for a key that is not
    bytes, str or None.
    """
    return (murmur2(key) & 0x7FFFFFFF) % _check_count(n, "murmur2_partition", _MAX_PARTITION_ID)


def consistent_partition(key, n: int) -> int:
    """librdkafka's ``consistent`` partition of one key: ``crc32(key) % n`` (None → 0)."""
    return crc32(key) % _check_count(n, "consistent_partition", _MAX_PARTITION_ID)


def fnv1a_partition(key, n: int) -> int:
    """librdkafka's ``fnv1a`` partition of one key: ``fnv1a(key) % n`` (None as empty)."""
    return fnv1a(key) % _check_count(n, "fnv1a_partition", _MAX_PARTITION_ID)
