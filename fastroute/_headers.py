"""Columnar storage of typed message headers (name → value tables, one per message)."""

from __future__ import annotations

import struct

import numpy as np

from ._errors import BatchError
from .kernels import _codes as C

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")

#: Header value types a batch accepts, by the names used in error messages.
ACCEPTED = "str, bytes, int, float, bool, None, list or dict"


def _encode_item(value, out: bytearray, where: str) -> None:
    """Append the nested encoding of ``value`` (see ``kernels/_codes.py``) to ``out``."""
    t = type(value)
    if value is None:
        out.append(C.TAG_NONE)
    elif t is bool or isinstance(value, np.bool_):
        out.append(C.TAG_TRUE if value else C.TAG_FALSE)
    elif isinstance(value, (int, np.integer)):
        v = int(value)
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise BatchError(f"{where}: integer {v} does not fit in 64 bits")
        out.append(C.TAG_INT)
        out += _I64.pack(v)
    elif isinstance(value, (float, np.floating)):
        out.append(C.TAG_FLOAT)
        out += _F64.pack(float(value))
    elif t is str:
        b = _utf8(value, where)
        out.append(C.TAG_STR)
        out += _U32.pack(len(b))
        out += b
    elif isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        out.append(C.TAG_BYTES)
        out += _U32.pack(len(b))
        out += b
    elif isinstance(value, (list, tuple)):
        body = bytearray(_U32.pack(len(value)))
        for k, item in enumerate(value):
            _encode_item(item, body, f"{where}[{k}]")
        out.append(C.TAG_LIST)
        out += _U32.pack(len(body))
        out += body
    elif isinstance(value, dict):
        body = bytearray(_U32.pack(len(value)))
        for name, item in value.items():
            nb = _name_bytes(name, where)
            body += _U32.pack(len(nb))
            body += nb
            _encode_item(item, body, f"{where}[{name!r}]")
        out.append(C.TAG_DICT)
        out += _U32.pack(len(body))
        out += body
    else:
        raise BatchError(f"{where}: expected {ACCEPTED}, got {type(value).__name__}")


def _decode_item(buf: bytes, pos: int):
    """Decode one nested item at ``pos``; return (value, next position)."""
    tag = buf[pos]
    pos += 1
    if tag == C.TAG_NONE:
        return None, pos
    if tag == C.TAG_FALSE:
        return False, pos
    if tag == C.TAG_TRUE:
        return True, pos
    if tag == C.TAG_INT:
        return _I64.unpack_from(buf, pos)[0], pos + 8
    if tag == C.TAG_FLOAT:
        return _F64.unpack_from(buf, pos)[0], pos + 8
    (ln,) = _U32.unpack_from(buf, pos)
    pos += 4
    end = pos + ln
    if tag == C.TAG_STR:
        return buf[pos:end].decode("utf-8"), end
    if tag == C.TAG_BYTES:
        return bytes(buf[pos:end]), end
    (count,) = _U32.unpack_from(buf, pos)
    pos += 4
    if tag == C.TAG_LIST:
        items = []
        for _ in range(count):
            item, pos = _decode_item(buf, pos)
            items.append(item)
        return items, end
    if tag == C.TAG_DICT:
        table = {}
        for _ in range(count):
            (nl,) = _U32.unpack_from(buf, pos)
            pos += 4
            name = buf[pos:pos + nl].decode("utf-8")
            pos += nl
            table[name], pos = _decode_item(buf, pos)
        return table, end
    raise ValueError(f"unknown nested header tag {tag}")


def encode_nested(value) -> bytes:
    """Return the nested encoding of one header value (used for list and dict headers)."""
    out = bytearray()
    _encode_item(value, out, "header value")
    return bytes(out)


def decode_nested(buf) -> object:
    """Inverse of :func:`encode_nested`."""
    return _decode_item(bytes(buf), 0)[0]


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BatchError(f"{where}: string is not encodable as UTF-8 ({exc.reason})") from None


def _name_bytes(name, where: str) -> bytes:
    if type(name) is str:
        return _utf8(name, where)
    if isinstance(name, (bytes, bytearray)):
        return bytes(name)
    raise BatchError(f"{where}: header name must be str or bytes, got {type(name).__name__}")


class HeaderTable:
    """Per-message header tables stored as columns, so kernels can compare them.

    Message i owns header entries ``offsets[i]:offsets[i+1]``, in the order given (a repeated
    name is kept; routers that want one value per name take the last, as RabbitMQ does).
    Entry j has a name (``name_ids[j]`` into ``names``, UTF-8 text), a type code
    (``types[j]``, see :mod:`fastroute.kernels._codes`), and its value: ``ints[j]`` for
    bool and int, ``floats[j]`` for float, and ``blob_data[blob_offsets[j]:blob_offsets[j+1]]``
    for str and bytes (the raw bytes) and for list and dict (their nested encoding).
    """

    __slots__ = ("offsets", "names", "name_ids", "types", "ints", "floats",
                 "blob_offsets", "blob_data", "_name_index")

    @classmethod
    def _from_trusted(cls, offsets, names, name_ids, types, ints, floats, blob_offsets, blob_data):
        """A table over arrays the caller has already checked (or built itself), host or
        device, taken as they are: no conversion, no validation."""
        table = cls.__new__(cls)
        table.offsets, table.names, table.name_ids, table.types = offsets, names, name_ids, types
        table.ints, table.floats, table.blob_offsets, table.blob_data = ints, floats, blob_offsets, blob_data
        table._name_index = None
        return table

    def __init__(self, offsets, names, name_ids, types, ints, floats, blob_offsets, blob_data):
        self.offsets = np.ascontiguousarray(offsets, np.int64)
        self.names = [n if type(n) is str else bytes(n).decode("utf-8") for n in names]
        self.name_ids = np.ascontiguousarray(name_ids, np.int32)
        self.types = np.ascontiguousarray(types, np.uint8)
        self.ints = np.ascontiguousarray(ints, np.int64)
        self.floats = np.ascontiguousarray(floats, np.float64)
        self.blob_offsets = np.ascontiguousarray(blob_offsets, np.int64)
        self.blob_data = np.ascontiguousarray(blob_data, np.uint8)
        self._name_index = None
        m = self.name_ids.shape[0]
        if self.offsets.ndim != 1 or self.offsets.shape[0] < 1:
            raise BatchError("headers: offsets must be a 1-D array of n+1 entries")
        if self.offsets[0] != 0 or self.offsets[-1] != m or np.any(np.diff(self.offsets) < 0):
            raise BatchError(f"headers: offsets must rise from 0 to the entry count {m}")
        for arr, what in ((self.types, "types"), (self.ints, "ints"), (self.floats, "floats")):
            if arr.shape != (m,):
                raise BatchError(f"headers: {what} must have one item per entry ({m}), got {arr.shape}")
        if self.blob_offsets.shape != (m + 1,) or (m and (
                self.blob_offsets[0] != 0 or np.any(np.diff(self.blob_offsets) < 0)
                or self.blob_offsets[-1] > self.blob_data.shape[0])):
            raise BatchError("headers: blob_offsets must rise from 0 within blob_data, one per entry plus one")
        if m and (self.name_ids.min() < 0 or self.name_ids.max() >= len(self.names)):
            raise BatchError(f"headers: name_ids must index the {len(self.names)} names")
        if m and self.types.max() > C.DICT:
            raise BatchError(f"headers: unknown type code {int(self.types.max())}")

    @classmethod
    def from_pylist(cls, tables, n: int) -> "HeaderTable":
        """Build from one entry per message: None, a dict, or a list of (name, value) pairs.

        Raises BatchError naming the message index for a value of an unsupported type, a
        non-text name, or an integer outside 64 bits. Cost: one Python pass over the entries.
        """
        if len(tables) != n:
            raise BatchError(f"headers: expected {n} entries (one per message), got {len(tables)}")
        name_index: dict = {}
        name_ids, types, ints, floats, blob_lens = [], [], [], [], []
        blobs = []
        counts = np.zeros(n, np.int64)
        for i, table in enumerate(tables):
            if table is None:
                continue
            if isinstance(table, dict):
                items = table.items()
            elif isinstance(table, (list, tuple)):
                items = table
            else:
                raise BatchError(f"headers[{i}]: expected a dict, a list of (name, value) pairs or None, "
                                 f"got {type(table).__name__}", i)
            c = 0
            for item in items:
                try:
                    name, value = item
                except (TypeError, ValueError):
                    raise BatchError(f"headers[{i}]: expected (name, value) pairs, got {item!r}", i) from None
                where = f"headers[{i}][{name!r}]"
                try:
                    nb = str(name) if isinstance(name, str) else _name_bytes(name, where).decode("utf-8")
                except UnicodeDecodeError:
                    raise BatchError(f"{where}: header name is not UTF-8", i) from None
                except BatchError as exc:
                    raise BatchError(str(exc), i) from None
                nid = name_index.get(nb)
                if nid is None:
                    nid = name_index[nb] = len(name_index)
                name_ids.append(nid)
                t = type(value)
                iv, fv, blob = 0, 0.0, b""
                if value is None:
                    code = C.NONE
                elif t is bool or isinstance(value, np.bool_):
                    code, iv = C.BOOL, int(bool(value))
                elif t is int or isinstance(value, (int, np.integer)):
                    code, iv = C.INT, int(value)
                    if not _INT64_MIN <= iv <= _INT64_MAX:
                        raise BatchError(f"{where}: integer {iv} does not fit in 64 bits", i)
                elif t is float or isinstance(value, (float, np.floating)):
                    code, fv = C.FLOAT, float(value)
                elif t is str:
                    try:
                        code, blob = C.STR, value.encode("utf-8")
                    except UnicodeEncodeError:
                        raise BatchError(f"{where}: string is not encodable as UTF-8", i) from None
                elif isinstance(value, (bytes, bytearray, memoryview)):
                    code, blob = C.BYTES, bytes(value)
                elif isinstance(value, (list, tuple, dict)):
                    code = C.DICT if isinstance(value, dict) else C.LIST
                    out = bytearray()
                    try:
                        _encode_item(value, out, where)
                    except BatchError as exc:
                        raise BatchError(str(exc), i) from None
                    blob = bytes(out)
                else:
                    raise BatchError(f"{where}: expected {ACCEPTED}, got {type(value).__name__}", i)
                types.append(code)
                ints.append(iv)
                floats.append(fv)
                blob_lens.append(len(blob))
                blobs.append(blob)
                c += 1
            counts[i] = c
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        blob_offsets = np.zeros(len(blob_lens) + 1, np.int64)
        np.cumsum(np.asarray(blob_lens, np.int64), out=blob_offsets[1:])
        return cls(offsets, list(name_index), np.asarray(name_ids, np.int32),
                   np.asarray(types, np.uint8), np.asarray(ints, np.int64),
                   np.asarray(floats, np.float64), blob_offsets,
                   np.frombuffer(b"".join(blobs), np.uint8))

    @classmethod
    def empty(cls, n: int) -> "HeaderTable":
        """A table of n messages without headers."""
        z = np.zeros(0, np.int64)
        return cls(np.zeros(n + 1, np.int64), [], np.zeros(0, np.int32), np.zeros(0, np.uint8),
                   z, np.zeros(0, np.float64), np.zeros(1, np.int64), np.zeros(0, np.uint8))

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def entry_count(self) -> int:
        """Total number of header entries over all messages."""
        return int(self.name_ids.shape[0])

    def name_id(self, name: str) -> int:
        """The id of ``name`` in this table, or -1 if no message has it."""
        if self._name_index is None:
            self._name_index = {nm: k for k, nm in enumerate(self.names)}
        return self._name_index.get(name, -1)

    def value(self, j: int):
        """The Python value of entry j."""
        code = int(self.types[j])
        if code == C.NONE:
            return None
        if code == C.BOOL:
            return bool(self.ints[j])
        if code == C.INT:
            return int(self.ints[j])
        if code == C.FLOAT:
            return float(self.floats[j])
        blob = self.blob_data[self.blob_offsets[j]:self.blob_offsets[j + 1]].tobytes()
        if code == C.STR:
            return blob.decode("utf-8")
        if code == C.BYTES:
            return blob
        return _decode_item(blob, 0)[0]

    def row(self, i: int) -> dict | None:
        """Message i's headers as a dict (a repeated name keeps its last value), or None."""
        pairs = self.row_pairs(i)
        return None if not pairs else dict(pairs)

    def row_pairs(self, i: int) -> list:
        """Message i's headers as (name, value) pairs, in order, duplicates kept."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return [(self.names[self.name_ids[j]], self.value(j)) for j in range(lo, hi)]

    def take(self, indices: np.ndarray) -> "HeaderTable":
        """The tables of messages ``indices`` (already bounds-checked), in that order."""
        from .kernels.gather import gather_binary, gather_ranges

        offsets, pos = gather_ranges(self.offsets, indices)
        blob_offsets, blob_data = gather_binary(self.blob_offsets, self.blob_data, pos)
        return HeaderTable(offsets, self.names, self.name_ids[pos], self.types[pos], self.ints[pos],
                           self.floats[pos], blob_offsets, blob_data)

    def equals(self, other: "HeaderTable") -> bool:
        """True when both hold the same entries (names compared as text, not by id)."""
        if not isinstance(other, HeaderTable) or len(self) != len(other):
            return False
        if not np.array_equal(self.offsets, other.offsets) or not np.array_equal(self.types, other.types):
            return False
        mine = np.asarray(self.names, dtype=object)[self.name_ids] if self.names else np.zeros(0, object)
        theirs = np.asarray(other.names, dtype=object)[other.name_ids] if other.names else np.zeros(0, object)
        if not np.array_equal(mine, theirs):
            return False
        if not (np.array_equal(self.ints, other.ints)
                and np.array_equal(self.floats.view(np.int64), other.floats.view(np.int64))):
            return False
        return (np.array_equal(self.blob_offsets, other.blob_offsets)
                and np.array_equal(self.blob_data[:self.blob_offsets[-1]],
                                   other.blob_data[:other.blob_offsets[-1]]))

    def __repr__(self) -> str:
        return f"HeaderTable(messages={len(self)}, entries={self.entry_count}, names={len(self.names)})"

