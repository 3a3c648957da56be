"""Load-spreading routers: round-robin and (weighted) random, with state carried across batches."""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable

import numpy as np

from ._router import Router
from ._routes import Routes

_MASK64 = (1 << 64) - 1


class RandomStream:
    """A seedable, counter-based stream of random draws shared by the random routers.

    Draw k of the stream is ``mix64(key + k * GOLDEN)`` (see ``kernels/hashing.py``); a batch
    of n messages reserves draws ``counter .. counter+n-1`` and advances the counter, so
    routing a stream in batches of any size gives the same picks as routing it at once, and
    the same seed gives the same sequence. Reserving is thread-safe.

    Args:
        seed: None (fresh entropy from the OS) or a non-negative int; the int is expanded
            through numpy's SeedSequence, so nearby seeds give unrelated streams.

    Raises:
        ValueError: a seed that is negative or not an int.
    """

    __slots__ = ("seed", "key", "_counter", "_lock")

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, (bool, np.bool_))
                                 or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        entropy = np.random.SeedSequence(self.seed)
        self.key = np.uint64(entropy.generate_state(1, np.uint64)[0])
        self._counter = 0
        self._lock = threading.Lock()

    def reserve(self, n: int) -> np.uint64:
        """Claim the next n draws; return the position of the first as uint64."""
        with self._lock:
            first = self._counter
            self._counter = (first + n) & _MASK64
        return np.uint64(first)

    @property
    def position(self) -> int:
        """How many draws have been claimed so far (mod 2^64)."""
        return self._counter


def _check_destinations(destinations, who: str):
    """Return (unique names in first-seen order, int32 id of each listed entry)."""
    if isinstance(destinations, (str, bytes, set, frozenset)) or not hasattr(destinations, "__iter__"):
        # a set has no stable order, and the order is the cycle (and the ids)
        raise TypeError(f"{who}: destinations must be an ordered sequence of names, "
                        f"got {type(destinations).__name__}")
    listed = list(destinations)
    index: dict = {}
    ids = np.empty(len(listed), np.int32)
    for k, name in enumerate(listed):
        if name is None or not isinstance(name, Hashable):
            raise TypeError(f"{who}: destination {k} must be a hashable name, got {name!r}")
        ids[k] = index.setdefault(name, len(index))
    return list(index), ids


def _arange_offsets(n: int) -> np.ndarray:
    return np.arange(n + 1, dtype=np.int64)


class RoundRobinRouter(Router):
    """Send message after message to each destination in turn, across batches.

    Message i of a batch goes to entry ``(cursor + i) % len(destinations)``; the cursor then
    moves on by the batch length, so batches continue where the previous one stopped. A
    destination listed twice appears twice in the cycle (it receives twice the share), as a
    destination bound twice weighs double in RabbitMQ's x-random. An empty list routes
    nothing (every message goes to ``alternate``, if set).

    Args:
        destinations: the cycle, a sequence of hashable names (ids follow first appearance).
        alternate: see :class:`fastroute.Router`.

    Raises:
        TypeError: destinations that are not a sequence of hashable names.

    Cost per batch: one vectorised tile of the cycle, O(n). Thread-safe: concurrent calls
    take disjoint runs of the cycle.
    """

    stateful = True

    def __init__(self, destinations, alternate=None):
        super().__init__(alternate)
        self._names, self._cycle = _check_destinations(destinations, "RoundRobinRouter")
        self._listed = [self._names[k] for k in self._cycle.tolist()]
        self._cursor = 0
        self._lock = threading.Lock()

    @property
    def cursor(self) -> int:
        """The cycle entry the next message goes to."""
        return self._cursor

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        length = self._cycle.shape[0]
        if length == 0:
            return Routes.empty(n, self._names)
        with self._lock:
            start = self._cursor
            self._cursor = (start + n) % length
        rolled = np.roll(self._cycle, -start)
        dest = np.tile(rolled, -(-n // length))[:n]
        return Routes(_arange_offsets(n), dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The GPU twin of _route_cpu: the same cycle positions, drawn on the device; device
        Routes for a device batch, host Routes otherwise."""
        from ._device import batch_device, empty_routes, single_routes, upload_cached
        from .kernels.cuda_hashing import cycle

        n = len(batch)
        on_device = batch_device(batch) == "gpu"
        length = self._cycle.shape[0]
        if length == 0:
            # host Routes when an alternate takes over: Router.route splices it in on the host
            return empty_routes(n, self._names, on_device and self.alternate is None)
        with self._lock:
            start = self._cursor
            self._cursor = (start + n) % length
        (cycle_ids,) = upload_cached(self, "cycle", (self._cycle,))
        return single_routes(cycle(n, cycle_ids, start), self._names, on_device)

    def __repr__(self) -> str:
        alt = f", alternate={self.alternate!r}" if self.alternate is not None else ""
        return f"RoundRobinRouter({self._listed!r}, cursor={self._cursor}{alt})"


def _check_weights(weights, count: int) -> np.ndarray:
    """Return the weights as float64, or raise ValueError naming what was received."""
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
        raise ValueError(f"RandomRouter: weights must be a sequence of numbers, got {weights!r}")
    listed = list(weights)
    if len(listed) != count:
        raise ValueError(f"RandomRouter: weights must have one entry per destination ({count}), "
                         f"got {len(listed)}: {listed!r}")
    out = np.empty(count, np.float64)
    for k, w in enumerate(listed):
        if isinstance(w, (bool, np.bool_)) or not isinstance(w, (int, float, np.integer, np.floating)):
            raise ValueError(f"RandomRouter: weights[{k}] must be a number, got {w!r}")
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"RandomRouter: weights[{k}] must be finite and non-negative, got {w!r}")
        out[k] = w
    return out


class RandomRouter(Router):
    """Send each message to one destination drawn at random (RabbitMQ's x-random, weighted).

    Without weights every listed entry is equally likely, so a destination listed twice is
    twice as likely, as in x-random. With weights, entry k is drawn with probability
    ``weights[k] / sum(weights)`` (a destination's listed weights add up; a zero weight is
    never drawn). With one listed destination every message goes there and with none no
    message is routed (x-random's "fewer than 2 bindings: all of them").

    Draws come from a counter-based generator (see :class:`RandomStream`): the same seed gives
    the same picks, and the stream carries across batches, so routing batches one after the
    other equals routing their concatenation. The picks are not RabbitMQ's (its generator is
    not observable); the eligible set and the distribution are.

    Args:
        destinations: a sequence of hashable names (ids follow first appearance).
        seed: None (fresh entropy) or a non-negative int.
        weights: None, or one finite non-negative number per listed destination, with a
            positive, finite sum.
        alternate: see :class:`fastroute.Router`.

    Raises:
        TypeError: destinations that are not a sequence of hashable names.
        ValueError: bad weights (naming the entry and value received) or a bad seed.

    Cost per batch: one parallel pass, O(n) (O(n log d) with weights, d destinations).
    """

    stateful = True

    def __init__(self, destinations, seed=None, weights=None, alternate=None):
        super().__init__(alternate)
        self._names, entries = _check_destinations(destinations, "RandomRouter")
        self._listed = [self._names[k] for k in entries.tolist()]
        self._stream = RandomStream(seed)
        self._weights = None if weights is None else _check_weights(weights, entries.shape[0])
        # Unweighted: draw an entry, then map it to its id (identity when no name repeats).
        self._entries = None if len(self._names) == entries.shape[0] else entries
        self._count = entries.shape[0]
        if self._weights is not None:
            per_name = np.bincount(entries, weights=self._weights, minlength=len(self._names))
            with np.errstate(over="ignore"):
                self._cumulative = np.cumsum(per_name)
            if entries.shape[0] and not 0 < self._cumulative[-1] < math.inf:
                raise ValueError(f"RandomRouter: weights must have a positive, finite sum, "
                                 f"got {self._weights.tolist()!r}")
            self._last = int(np.flatnonzero(per_name > 0)[-1])

    @property
    def seed(self):
        """The seed given (None when the stream was seeded from fresh entropy)."""
        return self._stream.seed

    @property
    def draws(self) -> int:
        """How many messages have been routed so far (the stream position)."""
        return self._stream.position

    def _route_cpu(self, batch) -> Routes:
        from .kernels.hashing import random_below, weighted_choice

        n = len(batch)
        if self._count == 0:
            return Routes.empty(n, self._names)
        first = self._stream.reserve(n)
        if self._weights is not None:
            dest = weighted_choice(n, self._cumulative, self._last, self._stream.key, first)
        else:
            dest = random_below(n, self._count, self._stream.key, first)
            if self._entries is not None:
                dest = self._entries[dest]
        return Routes(_arange_offsets(n), dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The GPU twin of _route_cpu: the same stream positions, so the same picks; device
        Routes for a device batch, host Routes otherwise."""
        from ._device import batch_device, empty_routes, single_routes, upload_cached
        from .kernels.cuda_hashing import random_below, remap, weighted_choice

        n = len(batch)
        on_device = batch_device(batch) == "gpu"
        if self._count == 0:
            # host Routes when an alternate takes over: Router.route splices it in on the host
            return empty_routes(n, self._names, on_device and self.alternate is None)
        first = self._stream.reserve(n)
        if self._weights is not None:
            (cumulative,) = upload_cached(self, "cumulative", (self._cumulative,))
            dest = weighted_choice(n, cumulative, self._last, self._stream.key, first,
                                   float(self._cumulative[-1]))
        else:
            dest = random_below(n, self._count, self._stream.key, first)
            if self._entries is not None:
                (entries,) = upload_cached(self, "entries", (self._entries,))
                remap(dest, entries)
        return single_routes(dest, self._names, on_device)

    def __repr__(self) -> str:
        extra = "" if self._weights is None else f", weights={self._weights.tolist()!r}"
        extra += "" if self.seed is None else f", seed={self.seed}"
        extra += "" if self.alternate is None else f", alternate={self.alternate!r}"
        return f"RandomRouter({self._listed!r}{extra})"
