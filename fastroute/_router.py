"""The base class every router shares: input coercion, backend choice, alternate destination."""

from __future__ import annotations

import numpy as np

from . import _backend
from ._batch import MessageBatch
from ._errors import BackendUnavailable, BatchError
from ._routes import Routes


def as_batch(batch) -> MessageBatch:
    """Accept a MessageBatch or a sequence of keys (bytes / str / None)."""
    if isinstance(batch, MessageBatch):
        return batch
    if isinstance(batch, (str, bytes)):
        raise BatchError(f"route() takes a MessageBatch or a sequence of keys, got a single {type(batch).__name__}")
    try:
        items = list(batch)
    except TypeError:
        raise BatchError(f"route() takes a MessageBatch or a sequence of keys, got {type(batch).__name__}") from None
    return MessageBatch.from_keys(items)


class Router:
    """Base class: a routing table compiled once, applied to many batches.

    Subclasses set ``self._names`` (destination names, in id order) and implement
    ``_route_cpu(batch) -> Routes``; a GPU twin, where there is one, is ``_route_gpu``.

    ``alternate`` (RabbitMQ's alternate exchange): messages that would route nowhere go there
    instead. It is a destination name, or another Router whose routing of those messages
    (its own alternate included) is used.
    """

    #: True for routers whose answer depends on earlier batches (round-robin cursors, RNGs).
    stateful = False
    _route_gpu = None

    def __init__(self, alternate=None):
        if alternate is not None and not isinstance(alternate, (str, int, Router)):
            raise TypeError(f"alternate must be a destination name or a Router, got {type(alternate).__name__}")
        if alternate is self:
            raise ValueError("a router cannot be its own alternate")
        self.alternate = alternate
        self._names: list = []

    @property
    def names(self) -> list:
        """Destination names this router can return, in id order (alternate ones excluded)."""
        return self._names if isinstance(self._names, range) else list(self._names)

    def route(self, batch, backend: str = "auto") -> Routes:
        """Route every message of ``batch`` in one call.

        Args:
            batch: a MessageBatch, or a sequence of keys (bytes / str / None).
            backend: "auto" (GPU for large batches when one is usable), "cpu" or "gpu".

        Returns:
            Routes: per message, the ascending unique destination ids into ``routes.names``.
            A device batch routed on the GPU gives device Routes, ``alternate`` included: the
            splice runs on the device without host copies (see :meth:`_alternate_on_device`).

        Raises:
            BatchError: malformed input (names the message index).
            BackendUnavailable: backend="gpu" where no GPU is usable.
            ValueError: an unknown backend name.
        """
        batch = as_batch(batch)
        where, batch = _backend.place(backend, batch)
        if where == "gpu" and self._route_gpu is None:
            if backend == "gpu":
                raise BackendUnavailable(f"{type(self).__name__} has no GPU kernel; use backend='cpu'")
            where, batch = _backend.place("cpu", batch)
        routes = self._route_gpu(batch) if where == "gpu" else self._route_cpu(batch)
        if self.alternate is not None:
            routes = self._apply_alternate(batch, routes, backend)
        return routes

    def _route_cpu(self, batch: MessageBatch) -> Routes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_alternate(self, batch: MessageBatch, routes: Routes, backend: str) -> Routes:
        """Give the messages that ``routes`` sends nowhere to ``self.alternate``; return the result.

        Runs where ``batch`` lives: a device batch gives device Routes, spliced on the device
        (:meth:`_alternate_on_device`) unless the alternate router has no GPU path, in which
        case the splice runs on host copies and the answer moves back to the device.
        """
        from ._device import batch_device

        if batch_device(batch) == "gpu":
            spliced = self._alternate_on_device(batch, routes, backend)
            if spliced is not None:
                return spliced
            return self._alternate_on_host(batch.to_host(), routes.to_host(), backend).to_device()
        return self._alternate_on_host(batch, routes.to_host(), backend)

    def _alternate_on_host(self, batch: MessageBatch, routes: Routes, backend: str) -> Routes:
        """The alternate splice of host ``batch`` and ``routes`` (kernels/group.py)."""
        rows = routes.unroutable()
        alt = self.alternate
        if isinstance(alt, Router):
            if rows.size == 0:
                names = _merge_names(routes.names, alt.names)[0]
                return Routes(routes.offsets, routes.destinations, names, check=False)
            sub = alt.route(batch.take(rows), backend).to_host()
            names, id_map = _merge_names(routes.names, sub.names)
            sub_offsets, sub_dest = sub.offsets, sub.destinations
        else:
            names, id_map = _merge_names(routes.names, [alt])
            if rows.size == 0:
                return Routes(routes.offsets, routes.destinations, names, check=False)
            sub_offsets = np.arange(rows.size + 1, dtype=np.int64)
            sub_dest = np.zeros(rows.size, np.int32)
        from .kernels.group import splice_routes

        offsets, dest = splice_routes(routes.offsets, routes.destinations, rows.astype(np.int64),
                                      sub_offsets, sub_dest, id_map)
        return Routes(offsets, dest, names, check=False)

    def _alternate_on_device(self, batch: MessageBatch, routes: Routes, backend: str) -> Routes | None:
        """The alternate splice of a device ``batch``, all on the device (kernels/cuda_splice.py).

        The unroutable rows are found and the sub-batch gathered on the device; an alternate
        router routes that sub-batch with ``backend`` (so on the device too), and its answer is
        spliced in on the device. Nothing comes back to the host but scalar sizes (names are
        merged on the host, where they live; the id map goes up). Host ``routes`` (from a
        router that answered on the host) are uploaded first. Returns None when
        the alternate router has no GPU path: the caller then splices on the host.
        """
        from ._device import (batch_take, device_routes, device_unroutable, device_zeros,
                              routes_to_device, to_device_array)
        from .kernels.cuda_scan import iota
        from .kernels.cuda_splice import splice_routes

        alt = self.alternate
        if isinstance(alt, Router) and alt._route_gpu is None:
            return None
        routes = routes_to_device(routes)
        rows = device_unroutable(routes)
        k = rows.shape[0]
        if isinstance(alt, Router):
            if k == 0:
                names = _merge_names(routes.names, alt.names)[0]
                return device_routes(routes.offsets, routes.destinations, names)
            sub = routes_to_device(alt.route(batch_take(batch, rows), backend))
            names, id_map = _merge_names(routes.names, sub.names)
            sub_offsets, sub_dest = sub.offsets, sub.destinations
        else:
            names, id_map = _merge_names(routes.names, [alt])
            if k == 0:
                return device_routes(routes.offsets, routes.destinations, names)
            sub_offsets, sub_dest = iota(k + 1), device_zeros(k, np.int32)
        offsets, dest = splice_routes(routes.offsets, routes.destinations, rows, sub_offsets, sub_dest,
                                      to_device_array(id_map, np.int32))
        return device_routes(offsets, dest, names)

    def __repr__(self) -> str:
        alt = f", alternate={self.alternate!r}" if self.alternate is not None else ""
        return f"{type(self).__name__}(destinations={len(self._names)}{alt})"


def _merge_names(base: list, extra: list):
    """Return (base + the names of ``extra`` not in base, id map of extra into the result)."""
    index = {name: k for k, name in enumerate(base)}
    names = list(base)
    id_map = np.empty(len(extra), np.int32)
    for k, name in enumerate(extra):
        j = index.get(name)
        if j is None:
            j = index[name] = len(names)
            names.append(name)
        id_map[k] = j
    return names, id_map
