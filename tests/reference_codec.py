"""Slow, readable reference implementations of the codecs, for checking the kernels.

Everything here follows ``docs/frame-format.md`` and SEMANTICS.md §12 one byte and one message
at a time with ``struct`` and plain loops, sharing no code with ``fastroute.codec``. The last
section holds the hypothesis strategies that draw random batches for the property tests.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st

import fastroute as fr

# --------------------------------------------------------------------------- CRC-32C

CRC32C_POLY = 0x82F63B78


def crc32c_bitwise(data: bytes, value: int = 0) -> int:
    """CRC-32C one bit at a time: reflected polynomial, init and final XOR 0xFFFFFFFF."""
    crc = value ^ 0xFFFFFFFF
    for byte in bytes(data):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC32C_POLY if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------- frames

FRAME_MAGIC = b"FRTF"
FRAME_COLUMNS = 18
FRAME_HEADER = 48 + 8 * FRAME_COLUMNS


def _pad(blob: bytes) -> bytes:
    return blob + b"\0" * (-len(blob) % 8)


def _i64s(values) -> bytes:
    return b"".join(struct.pack("<q", v) for v in values)


def _running(lengths, start=0) -> list:
    out = [start]
    for ln in lengths:
        out.append(out[-1] + ln)
    return out


def build_frame(columns: list, *, flags: int, n: int, m: int = 0, k: int = 0, version: int = 1,
                magic: bytes = FRAME_MAGIC, column_count: int = FRAME_COLUMNS, sizes=None,
                crc: int | None = None, length: int | None = None, checksum=crc32c_bitwise) -> bytes:
    """Assemble a frame from 18 column byte strings (b"" for absent ones).

    Every header field can be overridden to craft broken frames; by default the sizes, the
    length and the CRC (computed by ``checksum``) are the true ones.
    """
    assert len(columns) == FRAME_COLUMNS
    body = b"".join(_pad(c) for c in columns)
    sizes = [len(c) for c in columns] if sizes is None else sizes
    total = FRAME_HEADER + len(body)
    rest = struct.pack("<HHIQQQQ", version, flags, column_count, total if length is None else length,
                       n, m, k) + b"".join(struct.pack("<Q", s) for s in sizes) + body
    return magic + struct.pack("<I", checksum(rest) if crc is None else crc) + rest


def encode_frame_ref(batch, checksum=crc32c_bitwise) -> bytes:
    """The frame of a MessageBatch, built message by message from its Python values."""
    n = len(batch)
    msgs = list(batch)
    keys = [m.key for m in msgs]
    values = [m.value for m in msgs]
    flags = 0
    cols = [b""] * FRAME_COLUMNS

    def binary(items, slot, bit):
        nonlocal flags
        # a null item is stored empty, as MessageBatch.from_pylist stores it
        data = [x if x is not None else b"" for x in items]
        cols[slot] = _i64s(_running([len(x) for x in data]))
        if any(x is None for x in items):
            flags |= bit
            cols[slot + 1] = bytes(0 if x is None else 1 for x in items)
        cols[slot + 2] = b"".join(data)

    binary(keys, 0, 1)
    binary(values, 3, 2)
    m = k = 0
    h = batch.headers
    if h is not None:
        flags |= 4
        names = list(h.names)
        k = len(names)
        entries = []  # (name id, type, int, float, blob) in message order
        counts = []
        for i in range(n):
            lo, hi = int(h.offsets[i]), int(h.offsets[i + 1])
            counts.append(hi - lo)
            for j in range(lo, hi):
                blob = bytes(h.blob_data[int(h.blob_offsets[j]):int(h.blob_offsets[j + 1])])
                entries.append((int(h.name_ids[j]), int(h.types[j]), int(h.ints[j]), float(h.floats[j]),
                                blob))
        m = len(entries)
        encoded = [nm.encode("utf-8") for nm in names]
        cols[6] = _i64s(_running(counts))
        cols[7] = b"".join(struct.pack("<i", e[0]) for e in entries)
        cols[8] = bytes(e[1] for e in entries)
        cols[9] = _i64s(e[2] for e in entries)
        cols[10] = b"".join(struct.pack("<d", e[3]) for e in entries)
        cols[11] = _i64s(_running([len(e[4]) for e in entries]))
        cols[12] = b"".join(e[4] for e in entries)
        cols[13] = _i64s(_running([len(e) for e in encoded]))
        cols[14] = b"".join(encoded)
    for slot, bit, attr, fmt in ((15, 8, "partition", "<i"), (16, 16, "offset", "<q"),
                                 (17, 32, "timestamp", "<q")):
        arr = getattr(batch, attr)
        if arr is not None:
            flags |= bit
            cols[slot] = b"".join(struct.pack(fmt, int(v)) for v in arr)
    return build_frame(cols, flags=flags, n=n, m=m, k=k, checksum=checksum)


def decode_frame_ref(buf: bytes) -> list:
    """The messages of a well-formed frame as (key, value, headers pairs or None, partition,
    offset, timestamp) tuples, read field by field."""
    buf = bytes(buf)
    assert buf[:4] == FRAME_MAGIC
    version, flags, ncols, length, n, m, k = struct.unpack_from("<HHIQQQQ", buf, 8)
    assert version == 1 and ncols == FRAME_COLUMNS and length == len(buf)
    sizes = struct.unpack_from(f"<{FRAME_COLUMNS}Q", buf, 48)
    starts = []
    pos = FRAME_HEADER
    for s in sizes:
        starts.append(pos)
        pos += s + (-s % 8)

    def i64(col, j):
        return struct.unpack_from("<q", buf, starts[col] + 8 * j)[0]

    def item(off_col, valid_col, data_col, bit, i):
        if flags & bit and buf[starts[valid_col] + i] == 0:
            return None
        return buf[starts[data_col] + i64(off_col, i):starts[data_col] + i64(off_col, i + 1)]

    names = []
    if flags & 4:
        for q in range(k):
            names.append(buf[starts[14] + i64(13, q):starts[14] + i64(13, q + 1)].decode("utf-8"))
    out = []
    for i in range(n):
        headers = None
        if flags & 4:
            pairs = []
            for j in range(i64(6, i), i64(6, i + 1)):
                nid = struct.unpack_from("<i", buf, starts[7] + 4 * j)[0]
                code = buf[starts[8] + j]
                blob = buf[starts[12] + i64(11, j):starts[12] + i64(11, j + 1)]
                pairs.append((names[nid], code, i64(9, j), struct.unpack_from("<d", buf, starts[10] + 8 * j)[0],
                              blob))
            headers = pairs or None
        meta = []
        for col, bit, fmt, w in ((15, 8, "<i", 4), (16, 16, "<q", 8), (17, 32, "<q", 8)):
            meta.append(struct.unpack_from(fmt, buf, starts[col] + w * i)[0] if flags & bit else None)
        out.append((item(0, 1, 2, 1, i), item(3, 4, 5, 2, i), headers, *meta))
    return out


# --------------------------------------------------------------------------- Kafka RecordBatch v2

RB_HEADER = struct.Struct(">qiibIhiqqqhii")


def zigzag_varint(value: int) -> bytes:
    """Zigzag, then base-128 low group first (Kafka's varint and varlong)."""
    u = (value << 1) ^ (value >> 63) if value < 0 else value << 1
    u &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = u & 0x7F
        u >>= 7
        if u:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_zigzag_varint(buf: bytes, pos: int) -> tuple:
    """(value, next position) of the zigzag varint at pos (no length limit)."""
    u = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        u |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (u >> 1) ^ -(u & 1), pos


def _nullable(blob) -> bytes:
    return zigzag_varint(-1) if blob is None else zigzag_varint(len(blob)) + blob


def encode_record_batch_ref(records, *, base_offset=0, base_timestamp=None, partition_leader_epoch=-1,
                            attributes=0, producer_id=-1, producer_epoch=-1, base_sequence=-1) -> bytes:
    """A RecordBatch v2 from (key, value, [(name, value)], timestamp) records, offsetDelta = index."""
    stamps = [r[3] for r in records]
    base = stamps[0] if base_timestamp is None else base_timestamp
    body = bytearray()
    for i, (key, value, headers, ts) in enumerate(records):
        rec = bytearray(b"\x00")
        rec += zigzag_varint(ts - base)
        rec += zigzag_varint(i)
        rec += _nullable(key)
        rec += _nullable(value)
        rec += zigzag_varint(len(headers))
        for name, hv in headers:
            rec += _nullable(name.encode("utf-8"))
            rec += _nullable(hv)
        body += zigzag_varint(len(rec)) + rec
    head = RB_HEADER.pack(base_offset, 49 + len(body), partition_leader_epoch, 2, 0, attributes,
                          len(records) - 1, base, max(stamps), producer_id, producer_epoch,
                          base_sequence, len(records))
    crc = crc32c_bitwise(head[21:] + body)
    return head[:17] + struct.pack(">I", crc) + head[21:] + bytes(body)


def decode_record_batch_ref(buf: bytes) -> list:
    """(offset, timestamp, key, value, [(name, value)]) of each record of a well-formed batch."""
    buf = bytes(buf)
    (base_offset, _, _, magic, crc, attributes, _, base_ts, max_ts, _, _, _,
     count) = RB_HEADER.unpack_from(buf, 0)
    assert magic == 2 and crc == crc32c_bitwise(buf[21:])
    pos = 61
    out = []
    for _ in range(count):
        length, pos = read_zigzag_varint(buf, pos)
        end = pos + length
        pos += 1
        ts_delta, pos = read_zigzag_varint(buf, pos)
        off_delta, pos = read_zigzag_varint(buf, pos)
        fields = []
        for _field in range(2):
            ln, pos = read_zigzag_varint(buf, pos)
            fields.append(None if ln < 0 else buf[pos:pos + ln])
            pos += max(ln, 0)
        hc, pos = read_zigzag_varint(buf, pos)
        headers = []
        for _h in range(hc):
            kl, pos = read_zigzag_varint(buf, pos)
            name = buf[pos:pos + kl].decode("utf-8")
            pos += kl
            vl, pos = read_zigzag_varint(buf, pos)
            headers.append((name, None if vl < 0 else buf[pos:pos + vl]))
            pos += max(vl, 0)
        assert pos == end
        ts = max_ts if attributes & 8 else base_ts + ts_delta
        out.append((base_offset + off_delta, ts, fields[0], fields[1], headers))
    assert pos == len(buf)
    return out


# --------------------------------------------------------------------------- random batches

INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
NAMES = st.sampled_from(["a", "b", "content-type", "x-trace", "ключ", ""])

_scalar = st.one_of(st.none(), st.booleans(), INT64, st.floats(allow_nan=False), st.text(max_size=8),
                    st.binary(max_size=8))
_nested = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=6)


def items(max_size: int = 40):
    """Keys or values: bytes (empty included) or None."""
    return st.one_of(st.none(), st.binary(max_size=max_size))


def header_tables(kafka: bool = False):
    """One message's headers: None or (name, value) pairs, repeats allowed. ``kafka``: only
    values Kafka carries (bytes, str, None)."""
    value = st.one_of(st.none(), st.binary(max_size=12), st.text(max_size=6)) if kafka else _nested
    return st.one_of(st.none(), st.lists(st.tuples(NAMES, value), max_size=4))


@st.composite
def batches(draw, min_size: int = 0, max_size: int = 30, headers: bool | None = None, kafka: bool = False,
            metadata: bool = True):
    """A MessageBatch with random keys, values, headers and metadata columns."""
    n = draw(st.integers(min_size, max_size))
    keys = draw(st.lists(items(), min_size=n, max_size=n))
    values = draw(st.lists(items(200), min_size=n, max_size=n))
    with_headers = draw(st.booleans()) if headers is None else headers
    tables = draw(st.lists(header_tables(kafka), min_size=n, max_size=n)) if with_headers else None
    meta = {}
    if metadata:
        for name, ints in (("partition", INT32), ("offset", INT64), ("timestamp", INT64)):
            if draw(st.booleans()):
                meta[name] = draw(st.lists(ints, min_size=n, max_size=n))
    return fr.MessageBatch.from_pylist(keys=keys, values=values, headers=tables, **meta)
