"""MessageBatch: n messages stored as columns (keys, values, headers, metadata)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._errors import BatchError
from ._headers import HeaderTable

_NoneType = type(None)


class BinaryColumn:
    """n binary items, each bytes or null: Arrow-style int64 offsets, one byte buffer, validity.

    Item i is ``data[offsets[i]:offsets[i+1]]``; ``validity`` is None when no item is null,
    else a bool array where False marks a null item (a null item differs from an empty one).
    The arrays are used as given (no copy) when they already have the right dtype.

    Raises BatchError when the offsets are not a rising int64 sequence inside ``data``.
    """

    __slots__ = ("offsets", "data", "validity")

    def __init__(self, offsets, data, validity=None):
        offsets = np.asarray(offsets)
        data = np.asarray(data)
        if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.dtype.kind not in "iu":
            raise BatchError(f"offsets must be a 1-D integer array of n+1 entries, got "
                             f"dtype {offsets.dtype} shape {offsets.shape}")
        if data.ndim != 1 or data.dtype not in (np.uint8, np.int8, np.dtype("S1")):
            raise BatchError(f"data must be a 1-D uint8 array, got dtype {data.dtype} shape {data.shape}")
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.data = np.ascontiguousarray(data).view(np.uint8)
        n = self.offsets.shape[0] - 1
        if self.offsets[0] < 0 or self.offsets[-1] > self.data.shape[0]:
            raise BatchError(f"offsets must lie within data (0..{self.data.shape[0]}), got "
                             f"{int(self.offsets[0])}..{int(self.offsets[-1])}")
        if n and np.any(self.offsets[1:] < self.offsets[:-1]):
            bad = int(np.argmax(self.offsets[1:] < self.offsets[:-1]))
            raise BatchError(f"offsets must not decrease; item {bad} has offsets "
                             f"{int(self.offsets[bad])}..{int(self.offsets[bad + 1])}", bad)
        if validity is not None:
            validity = np.ascontiguousarray(validity, dtype=np.bool_)
            if validity.shape != (n,):
                raise BatchError(f"validity must have one flag per item ({n}), got shape {validity.shape}")
            if validity.all():
                validity = None
        self.validity = validity

    @classmethod
    def _from_trusted(cls, offsets, data, validity=None) -> "BinaryColumn":
        """Wrap arrays a kernel has just produced and checked (int64 offsets rising from 0
        within uint8 ``data``; ``validity`` None or bool), skipping the numpy checks."""
        column = cls.__new__(cls)
        column.offsets, column.data, column.validity = offsets, data, validity
        return column

    @classmethod
    def from_pylist(cls, items, what: str = "item") -> "BinaryColumn":
        """Build from a sequence of bytes / str (stored as UTF-8) / None (null).

        Raises BatchError naming the index and type of the first item of another type.
        Cost: a few C-speed passes over the list, one copy of the bytes.
        """
        if not isinstance(items, (list, tuple)):
            items = list(items)
        n = len(items)
        kinds = set(map(type, items))
        validity = None
        if kinds <= {bytes}:
            parts = items
        elif kinds <= {bytes, str, _NoneType}:
            try:
                parts = [k if type(k) is bytes else (b"" if k is None else k.encode("utf-8"))
                         for k in items]
            except UnicodeEncodeError:
                bad = next(i for i, k in enumerate(items)
                           if type(k) is str and not _encodable(k))
                raise BatchError(f"{what} {bad}: string is not encodable as UTF-8", bad) from None
            if _NoneType in kinds:
                validity = np.fromiter((k is not None for k in items), np.bool_, n)
        else:
            parts = []
            valid = np.ones(n, np.bool_)
            for i, k in enumerate(items):
                t = type(k)
                if t is bytes:
                    parts.append(k)
                elif t is str:
                    if not _encodable(k):
                        raise BatchError(f"{what} {i}: string is not encodable as UTF-8", i)
                    parts.append(k.encode("utf-8"))
                elif k is None:
                    parts.append(b"")
                    valid[i] = False
                elif isinstance(k, (bytearray, memoryview)):
                    parts.append(bytes(k))
                else:
                    raise BatchError(f"{what} {i}: expected bytes, str or None, got {t.__name__}", i)
            validity = valid
        data = np.frombuffer(b"".join(parts), np.uint8)
        offsets = np.zeros(n + 1, np.int64)
        if n:
            np.cumsum(np.fromiter(map(len, parts), np.int64, n), out=offsets[1:])
        return cls(offsets, data, validity)

    @classmethod
    def nulls(cls, n: int) -> "BinaryColumn":
        """A column of n null items."""
        return cls(np.zeros(n + 1, np.int64), np.zeros(0, np.uint8), np.zeros(n, np.bool_))

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def __getitem__(self, i: int) -> bytes | None:
        if self.validity is not None and not self.validity[i]:
            return None
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes()

    def to_pylist(self) -> list:
        """The items as a list of bytes (None for null items)."""
        blob = self.data.tobytes()
        base = int(self.offsets[0])
        starts = (self.offsets[:-1] - base).tolist()
        ends = (self.offsets[1:] - base).tolist()
        blob = blob[base:]
        out = [blob[a:b] for a, b in zip(starts, ends)]
        if self.validity is not None:
            for i in np.flatnonzero(~self.validity).tolist():
                out[i] = None
        return out

    def lengths(self) -> np.ndarray:
        """Byte length of each item (0 for null items)."""
        return np.diff(self.offsets)

    def is_null(self) -> np.ndarray:
        """A bool array, True where the item is null."""
        if self.validity is None:
            return np.zeros(len(self), np.bool_)
        return ~self.validity

    @property
    def null_count(self) -> int:
        """How many items are null."""
        return 0 if self.validity is None else int(len(self) - np.count_nonzero(self.validity))

    @property
    def nbytes(self) -> int:
        """Bytes of item data (the used part of ``data``)."""
        return int(self.offsets[-1] - self.offsets[0])

    def take(self, indices: np.ndarray) -> "BinaryColumn":
        """The items at ``indices`` (already bounds-checked), in that order, in a new buffer."""
        from .kernels.gather import gather_binary

        offsets, data = gather_binary(self.offsets, self.data, indices)
        validity = None if self.validity is None else self.validity[indices]
        return BinaryColumn(offsets, data, validity)

    def equals(self, other: "BinaryColumn") -> bool:
        """True when both columns hold the same items (nulls included)."""
        if not isinstance(other, BinaryColumn) or len(self) != len(other):
            return False
        if not np.array_equal(self.is_null(), other.is_null()):
            return False
        if not np.array_equal(np.diff(self.offsets), np.diff(other.offsets)):
            return False
        return np.array_equal(self.data[self.offsets[0]:self.offsets[-1]],
                              other.data[other.offsets[0]:other.offsets[-1]])

    def __repr__(self) -> str:
        return f"BinaryColumn(n={len(self)}, bytes={self.nbytes}, nulls={self.null_count})"


def _encodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class Message(NamedTuple):
    """One message of a batch, as Python values."""

    key: bytes | None
    value: bytes | None
    headers: dict | None
    partition: int | None
    offset: int | None
    timestamp: int | None


_META = (("partition", np.int32), ("offset", np.int64), ("timestamp", np.int64))


class MessageBatch:
    """n messages as columns: keys, values, optional headers and metadata.

    ``keys`` and ``values`` are :class:`BinaryColumn` (a null key differs from an empty one);
    ``headers`` is a :class:`HeaderTable` or None; ``partition`` (int32), ``offset`` and
    ``timestamp`` (int64, milliseconds) are optional per-message arrays.

    Raises BatchError when the columns do not all have the same length.
    """

    __slots__ = ("keys", "values", "headers", "partition", "offset", "timestamp", "_unique")

    def __init__(self, keys: BinaryColumn | None = None, values: BinaryColumn | None = None,
                 headers: HeaderTable | None = None, partition=None, offset=None, timestamp=None):
        if keys is None and values is None:
            raise BatchError("a batch needs keys or values (or both)")
        n = len(keys) if keys is not None else len(values)
        self.keys = keys if keys is not None else BinaryColumn.nulls(n)
        self.values = values if values is not None else BinaryColumn.nulls(n)
        if len(self.values) != n:
            raise BatchError(f"keys and values must have the same length, got {n} keys and "
                             f"{len(self.values)} values")
        if headers is not None and len(headers) != n:
            raise BatchError(f"headers must have one entry per message ({n}), got {len(headers)}")
        self.headers = headers
        for (name, dtype), arr in zip(_META, (partition, offset, timestamp)):
            if arr is not None:
                arr = np.ascontiguousarray(arr, dtype=dtype)
                if arr.shape != (n,):
                    raise BatchError(f"{name} must have one entry per message ({n}), got shape {arr.shape}")
            setattr(self, name, arr)
        self._unique = None

    @classmethod
    def from_pylist(cls, keys=None, values=None, headers=None, *, partition=None, offset=None,
                    timestamp=None) -> "MessageBatch":
        """Build a batch from Python lists.

        Args:
            keys, values: sequences of bytes, str (stored as UTF-8) or None (null); either may
                be omitted (all null) but not both.
            headers: None, or one entry per message: None, a dict, or a list of (name, value)
                pairs; values may be str, bytes, int, float, bool, None, list or dict.
            partition, offset, timestamp: optional sequences of ints, one per message.

        Raises:
            BatchError: naming the index and type of the first unsupported item, or when the
                lengths disagree.
        """
        kc = BinaryColumn.from_pylist(keys, "key") if keys is not None else None
        vc = BinaryColumn.from_pylist(values, "value") if values is not None else None
        if kc is None and vc is None:
            raise BatchError("a batch needs keys or values (or both)")
        n = len(kc) if kc is not None else len(vc)
        ht = HeaderTable.from_pylist(headers, n) if headers is not None else None
        return cls(kc, vc, ht, partition, offset, timestamp)

    @classmethod
    def from_buffers(cls, key_offsets=None, key_data=None, value_offsets=None, value_data=None, *,
                     key_validity=None, value_validity=None, headers=None, partition=None,
                     offset=None, timestamp=None) -> "MessageBatch":
        """Build a batch from numpy offsets and bytes without copying them.

        ``*_offsets`` are n+1 rising integers into ``*_data`` (uint8); ``*_validity`` marks
        present items with True. Omit a column's pair to make it all null.
        """
        kc = None if key_offsets is None else BinaryColumn(key_offsets, key_data, key_validity)
        vc = None if value_offsets is None else BinaryColumn(value_offsets, value_data, value_validity)
        return cls(kc, vc, headers, partition, offset, timestamp)

    @classmethod
    def from_keys(cls, keys) -> "MessageBatch":
        """A batch of the given keys and null values (what ``route(list_of_keys)`` builds)."""
        return cls(BinaryColumn.from_pylist(keys, "key"))

    @classmethod
    def from_arrow(cls, data, values=None) -> "MessageBatch":
        """Build a batch from Arrow data, sharing its buffers.

        ``data`` is a pyarrow Table or RecordBatch with a ``key`` and/or ``value`` column (and
        optionally ``partition``, ``offset``, ``timestamp``), or a binary Array of keys with
        ``values`` as a second Array. ``large_binary`` columns are used without any copy;
        ``binary``/``string`` columns share their data and widen their offsets.
        """
        from ._arrow import batch_from_arrow

        return batch_from_arrow(cls, data, values)

    def to_arrow(self):
        """A pyarrow Table (``key``, ``value`` as large_binary, plus metadata columns) sharing
        this batch's buffers. Headers are not carried. Requires pyarrow."""
        from ._arrow import batch_to_arrow

        return batch_to_arrow(self)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Message:
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"batch index must be an integer, got {type(i).__name__}; use take() for many")
        if not -n <= i < n:
            raise IndexError(f"message index {i} out of range for a batch of {n}")
        i = int(i) % n
        return Message(self.keys[i], self.values[i],
                       None if self.headers is None else self.headers.row(i),
                       None if self.partition is None else int(self.partition[i]),
                       None if self.offset is None else int(self.offset[i]),
                       None if self.timestamp is None else int(self.timestamp[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def take(self, indices) -> "MessageBatch":
        """A new batch of the messages at ``indices``, in that order (repeats allowed).

        A device batch gives a device batch, gathered on the device (``indices`` may be a
        host or a device array; a device array is used as it is, unchecked).

        Raises IndexError for an index outside the batch.
        """
        from ._device import batch_device, batch_take, is_device_array, to_device_array

        on_device = batch_device(self) == "gpu"
        if on_device and is_device_array(indices):
            return batch_take(self, to_device_array(indices, np.int64, "take indices"))
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            idx = np.flatnonzero(idx)
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"take: indices must lie in [-{n}, {n}), got {int(idx.min())}..{int(idx.max())}")
        if idx.size and idx.min() < 0:
            idx = np.where(idx < 0, idx + n, idx)
        if on_device:
            return batch_take(self, to_device_array(idx, np.int64))
        return MessageBatch(self.keys.take(idx), self.values.take(idx),
                            None if self.headers is None else self.headers.take(idx),
                            *(None if getattr(self, m) is None else getattr(self, m)[idx] for m, _ in _META))

    @property
    def device(self) -> str:
        """Where the batch's arrays live: "cpu" (numpy) or "gpu" (CUDA device arrays)."""
        from ._device import batch_device

        return batch_device(self)

    def to_device(self) -> "MessageBatch":
        """A copy of the batch in GPU memory (the batch itself if already there).

        Columns keep their layout with numba CUDA device arrays in place of numpy ones
        (``cupy.asarray`` views them without a copy); names stay on the host. Routing a device
        batch returns device Routes. Raises BackendUnavailable (saying why) without a GPU.
        """
        from ._device import batch_to_device

        return batch_to_device(self)

    def to_host(self) -> "MessageBatch":
        """A copy of the batch in host memory (the batch itself if already there)."""
        from ._device import batch_to_host

        return batch_to_host(self)

    def equals(self, other: "MessageBatch") -> bool:
        """True when both batches hold the same messages, headers and metadata (a device batch
        is compared through a host copy)."""
        if not isinstance(other, MessageBatch) or len(self) != len(other):
            return False
        if self.device == "gpu" or other.device == "gpu":
            return self.to_host().equals(other.to_host())
        if not (self.keys.equals(other.keys) and self.values.equals(other.values)):
            return False
        mine = self.headers if self.headers is not None and self.headers.entry_count else None
        theirs = other.headers if other.headers is not None and other.headers.entry_count else None
        if (mine is None) != (theirs is None) or (mine is not None and not mine.equals(theirs)):
            return False
        for m, _ in _META:
            a, b = getattr(self, m), getattr(other, m)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                return False
        return True

    def __repr__(self) -> str:
        extra = [m for m, _ in _META if getattr(self, m) is not None]
        return (f"MessageBatch(n={len(self)}, key_bytes={self.keys.nbytes}, null_keys={self.keys.null_count}, "
                f"value_bytes={self.values.nbytes}, headers={self.headers is not None}"
                + (f", metadata={extra}" if extra else "") + ")")
