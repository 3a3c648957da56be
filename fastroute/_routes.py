"""Routes: the result of routing a batch, in CSR form."""

from __future__ import annotations

import numpy as np

from ._errors import BatchError


class Routes:
    """Where each message of a batch goes.

    Message i goes to ``destinations[offsets[i]:offsets[i+1]]``: ids into ``names``, ascending
    and unique (a destination reached twice receives the message once). ``offsets`` is int64
    of n+1 entries, ``destinations`` int32.

    Views: :meth:`to_lists`, :meth:`groups` (message indices per destination, stable),
    :meth:`counts`, :meth:`unroutable`; on device Routes (see :meth:`to_device`) these copy
    the arrays to the host first, while :attr:`group_offsets` / :attr:`group_indices` are
    computed on the device.
    """

    __slots__ = ("offsets", "destinations", "names", "_transpose")

    def __init__(self, offsets, destinations, names, *, check: bool = True):
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.destinations = np.ascontiguousarray(destinations, dtype=np.int32)
        # a range (a partitioner's partition numbers) stays a range: it may be very long
        self.names = names if isinstance(names, range) else list(names)
        self._transpose = None
        if check:
            self._check()

    def _check(self) -> None:
        o, d = self.offsets, self.destinations
        if o.ndim != 1 or o.shape[0] < 1 or o[0] != 0 or o[-1] != d.shape[0]:
            raise BatchError(f"routes: offsets must rise from 0 to the destination count {d.shape[0]}")
        if o.shape[0] > 1 and np.any(o[1:] < o[:-1]):
            raise BatchError("routes: offsets must not decrease")
        if d.size and (d.min() < 0 or d.max() >= len(self.names)):
            raise BatchError(f"routes: destination ids must index the {len(self.names)} names")

    @classmethod
    def empty(cls, n: int, names) -> "Routes":
        """Routes of n messages that go nowhere."""
        return cls(np.zeros(n + 1, np.int64), np.zeros(0, np.int32), names, check=False)

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def __getitem__(self, i: int) -> list:
        """The destination names of message i."""
        if self.device == "gpu":
            return self.to_host()[i]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"message index {i} out of range for {n} routes")
        i %= n
        return [self.names[d] for d in self.destinations[self.offsets[i]:self.offsets[i + 1]].tolist()]

    def ids(self, i: int) -> np.ndarray:
        """The destination ids of message i (a view)."""
        return self.destinations[self.offsets[i]:self.offsets[i + 1]]

    def to_lists(self) -> list:
        """Per message, the list of its destination names."""
        if self.device == "gpu":
            return self.to_host().to_lists()
        names = self.names
        flat = [names[d] for d in self.destinations.tolist()]
        o = self.offsets.tolist()
        return [flat[o[i]:o[i + 1]] for i in range(len(self))]

    def fanout(self) -> np.ndarray:
        """How many destinations each message has (int64 array of n)."""
        if self.device == "gpu":
            return self.to_host().fanout()
        return np.diff(self.offsets)

    def _groups_csr(self):
        if self._transpose is None:
            if self.device == "gpu":
                from ._device import device_groups

                self._transpose = device_groups(self)
            else:
                from .kernels.group import group_by_destination

                self._transpose = group_by_destination(self.offsets, self.destinations, len(self.names))
        return self._transpose

    @property
    def group_offsets(self) -> np.ndarray:
        """CSR offsets (len(names)+1) into :attr:`group_indices`, one range per destination."""
        return self._groups_csr()[0]

    @property
    def group_indices(self) -> np.ndarray:
        """Message indices grouped by destination id, ascending within each destination."""
        return self._groups_csr()[1]

    def groups(self) -> dict:
        """Per destination name, the ascending message indices it receives (views, int64).

        Every name appears, with an empty array if nothing goes there. Cost: one counting
        sort, computed once and cached.
        """
        if self.device == "gpu":
            return self.to_host().groups()
        go, gi = self._groups_csr()
        bounds = go.tolist()
        return {name: gi[bounds[k]:bounds[k + 1]] for k, name in enumerate(self.names)}

    def counts(self) -> dict:
        """Per destination name, how many messages go there (every name appears)."""
        if self.device == "gpu":
            return self.to_host().counts()
        c = np.bincount(self.destinations, minlength=len(self.names))
        return dict(zip(self.names, c.tolist()))

    def unroutable(self) -> np.ndarray:
        """Indices of the messages that go nowhere: an ascending int64 numpy array.

        Always numpy: for device Routes they are found on the device and only the indices are
        copied to the host (``fastroute._device.device_unroutable`` keeps them on the device,
        as ``alternate=`` does on device batches).
        """
        if self.device == "gpu":
            from ._device import device_unroutable

            return device_unroutable(self).copy_to_host()
        return np.flatnonzero(self.offsets[1:] == self.offsets[:-1])

    @property
    def device(self) -> str:
        """Where the arrays live: "cpu" (numpy) or "gpu" (CUDA device arrays)."""
        from ._device import routes_device

        return routes_device(self)

    def to_device(self) -> "Routes":
        """A copy in GPU memory (itself if already there). Raises BackendUnavailable without a GPU."""
        from ._device import routes_to_device

        return routes_to_device(self)

    def to_host(self) -> "Routes":
        """A copy in host memory (itself if already there)."""
        from ._device import routes_to_host

        return routes_to_host(self)

    def equals(self, other: "Routes") -> bool:
        """True when both send every message to the same destination names."""
        if not isinstance(other, Routes) or len(self) != len(other):
            return False
        if self.device == "gpu" or other.device == "gpu":
            return self.to_host().equals(other.to_host())
        if not np.array_equal(self.offsets, other.offsets):
            return False
        if self.names == other.names:
            return np.array_equal(self.destinations, other.destinations)
        return [set(x) for x in self.to_lists()] == [set(x) for x in other.to_lists()]

    def __eq__(self, other) -> bool:
        return self.equals(other) if isinstance(other, Routes) else NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return (f"Routes(messages={len(self)}, deliveries={self.destinations.shape[0]}, "
                f"destinations={len(self.names)}, unroutable={self.unroutable().shape[0]})")
