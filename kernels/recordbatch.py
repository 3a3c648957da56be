"""Kafka RecordBatch v2 (magic 2) record kernels: zigzag varints, record encoding and parsing.

Layout (SEMANTICS.md §12): after the 61-byte big-endian batch header come ``recordsCount``
records, each ``length`` (varint: the bytes that follow), ``attributes`` (int8),
``timestampDelta`` (varlong), ``offsetDelta`` (varint), key and value (varint length, -1 for
null, then the bytes), ``headersCount`` (varint), and per header a key (varint length ≥ 0, UTF-8)
and a value (varint length, -1 for null). Varints are zigzag-encoded base-128, low group first.

The varint helpers are plain functions so a CUDA twin can compile the same bodies. Encoding
is two passes over the messages (sizes, then a prefix sum and the writes); decoding is a
serial skip over the record length prefixes, then a parallel parse of every record. Parsing
never reads outside ``[start, stop)`` of the buffer, whatever the bytes say; faults come back
as a code and a byte offset for :mod:`fastroute.codec` to word.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _codes as C
from ._config import PARALLEL, SERIAL
from .frame_bytes import copy_message, load_u8_at, store_u8_at

HEADER_BYTES = 61
#: The smallest record: length, attributes, timestamp delta, offset delta, key length,
#: value length and header count, one byte each.
MIN_RECORD_BYTES = 7

# Parse faults (codes shared with fastroute.codec, which turns them into messages).
OK = 0
E_VARINT_LONG = 1        # a varint runs past its 5 (varlong: 10) bytes or past 32 (64) bits
E_VARINT_CUT = 2         # the record ends inside a varint
E_LENGTH_NEGATIVE = 3    # a record length below 0
E_RECORD_OVERRUN = 4     # a record's length runs past the end of the batch
E_TRAILING = 5           # bytes left after the last record
E_KEY_OVERRUN = 6        # key bytes run past the record
E_VALUE_OVERRUN = 7      # value bytes run past the record
E_HEADER_COUNT = 8       # a negative header count, or more headers than bytes left
E_HEADER_KEY_NEGATIVE = 9
E_HEADER_KEY_OVERRUN = 10
E_HEADER_VALUE_OVERRUN = 11
E_RECORD_LEFTOVER = 12   # the fields end before the record's length says
E_RECORD_SHORT = 13      # the fields need more bytes than the record's length gives


# ----------------------------------------------------------------------------- varints

@njit(**SERIAL)
def zigzag32(v):
    """Zigzag of a 32-bit signed value, as a non-negative int64."""
    v = np.int64(v)
    return ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF


@njit(**SERIAL)
def zigzag64(v):
    """Zigzag of a 64-bit signed value, as a uint64."""
    v = np.int64(v)
    return np.uint64(v << 1) ^ np.uint64(v >> 63)


@njit(**SERIAL)
def varint_size(u):
    """Bytes of the base-128 encoding of the unsigned value ``u``."""
    u = np.uint64(u)
    n = 1
    while u >= 0x80:
        u >>= np.uint64(7)
        n += 1
    return n


@njit(**SERIAL)
def put_varint(addr, u):
    """Write the unsigned ``u`` base-128 at address ``addr``; return the bytes written."""
    u = np.uint64(u)
    n = 0
    while u >= 0x80:
        store_u8_at(addr + n, (u & np.uint64(0x7F)) | np.uint64(0x80))
        u >>= np.uint64(7)
        n += 1
    store_u8_at(addr + n, u)
    return n + 1


@njit(**SERIAL)
def write_varint(out, pos, u):
    """Write the unsigned ``u`` base-128 at ``out[pos:]``; return the position after it."""
    return pos + put_varint(out.ctypes.data + pos, u)


@njit(**SERIAL)
def get_zigzag(base, pos, stop, max_bytes):
    """Read a zigzag varint of at most ``max_bytes`` bytes (5: varint, 10: varlong) from the
    bytes [pos, stop) after address ``base``. Returns (value, next position, fault code)."""
    u = np.uint64(0)
    shift = np.uint64(0)
    for k in range(max_bytes):
        if pos + k >= stop:
            return np.int64(0), pos + k, E_VARINT_CUT
        b = np.uint64(load_u8_at(base + pos + k))
        if k == max_bytes - 1:
            # the last byte may only fill the bits that remain of 32 (or 64)
            room = np.uint64(32 - 7 * (max_bytes - 1)) if max_bytes == 5 else np.uint64(1)
            if b >> room:
                return np.int64(0), pos + k, E_VARINT_LONG
        u |= (b & np.uint64(0x7F)) << shift
        if b < 0x80:
            return np.int64(u >> np.uint64(1)) ^ -np.int64(u & np.uint64(1)), pos + k + 1, OK
        shift += np.uint64(7)
    return np.int64(0), pos + max_bytes - 1, E_VARINT_LONG  # pragma: no cover - loop returns


@njit(**SERIAL)
def read_zigzag(buf, pos, stop, max_bytes):
    """:func:`get_zigzag` on ``buf[pos:stop]`` of a uint8 array."""
    return get_zigzag(buf.ctypes.data, pos, stop, max_bytes)


# ----------------------------------------------------------------------------- encoding

@njit(**SERIAL)
def _field_size(length):
    """Bytes of a nullable length-prefixed field (length < 0: null)."""
    if length < 0:
        return 1
    return varint_size(zigzag32(length)) + length


@njit(**PARALLEL)
def record_sizes(keys, values, headers, name_len, ts_deltas, has_ts):
    """Per message: (record size with its length prefix, body size). Headers may be empty
    arrays (no headers); header entries of type NONE are null values."""
    n = keys.offsets.shape[0] - 1
    total = np.empty(n, np.int64)
    body = np.empty(n, np.int64)
    has_kv = keys.validity.shape[0] > 0
    has_vv = values.validity.shape[0] > 0
    has_h = headers.offsets.shape[0] > 0
    for i in prange(n):
        kl = keys.offsets[i + 1] - keys.offsets[i]
        if has_kv and not keys.validity[i]:
            kl = -1
        vl = values.offsets[i + 1] - values.offsets[i]
        if has_vv and not values.validity[i]:
            vl = -1
        td = ts_deltas[i] if has_ts else 0
        b = 1 + varint_size(zigzag64(td)) + varint_size(zigzag32(i)) + _field_size(kl) + _field_size(vl)
        if has_h:
            e0 = headers.offsets[i]
            e1 = headers.offsets[i + 1]
            b += varint_size(zigzag32(e1 - e0))
            for q in range(e0, e1):
                b += _field_size(name_len[headers.name_ids[q]])
                if headers.types[q] == C.NONE:
                    b += 1
                else:
                    b += _field_size(headers.blob_offsets[q + 1] - headers.blob_offsets[q])
        else:
            b += 1
        body[i] = b
        total[i] = varint_size(zigzag32(b)) + b
    return total, body


@njit(**SERIAL)
def _put_field(dst, src, length):
    """Write a nullable length-prefixed field (length < 0: null) at address ``dst`` from
    address ``src``; return the bytes written."""
    if length < 0:
        store_u8_at(dst, 1)  # zigzag(-1)
        return 1
    n = put_varint(dst, zigzag32(length))
    copy_message(dst + n, src, length)
    return n + length


@njit(**PARALLEL)
def write_records(out, positions, body, keys, values, headers, name_offsets, name_data, ts_deltas,
                  has_ts):
    """Write record i at ``out[positions[i]:]`` (positions from the sizes' prefix sum)."""
    n = positions.shape[0]
    has_kv = keys.validity.shape[0] > 0
    has_vv = values.validity.shape[0] > 0
    has_h = headers.offsets.shape[0] > 0
    base = out.ctypes.data
    kd = keys.data.ctypes.data
    vd = values.data.ctypes.data
    nd = name_data.ctypes.data
    bd = headers.blob_data.ctypes.data
    for i in prange(n):
        at = base + positions[i]
        at += put_varint(at, zigzag32(body[i]))
        store_u8_at(at, 0)  # attributes
        at += 1
        at += put_varint(at, zigzag64(ts_deltas[i] if has_ts else 0))
        at += put_varint(at, zigzag32(i))
        ks = keys.offsets[i]
        kl = keys.offsets[i + 1] - ks
        if has_kv and not keys.validity[i]:
            kl = -1
        at += _put_field(at, kd + ks, kl)
        vs = values.offsets[i]
        vl = values.offsets[i + 1] - vs
        if has_vv and not values.validity[i]:
            vl = -1
        at += _put_field(at, vd + vs, vl)
        if has_h:
            e0 = headers.offsets[i]
            e1 = headers.offsets[i + 1]
            at += put_varint(at, zigzag32(e1 - e0))
            for q in range(e0, e1):
                nid = headers.name_ids[q]
                at += _put_field(at, nd + name_offsets[nid], name_offsets[nid + 1] - name_offsets[nid])
                if headers.types[q] == C.NONE:
                    at += _put_field(at, bd, -1)
                else:
                    bs = headers.blob_offsets[q]
                    at += _put_field(at, bd + bs, headers.blob_offsets[q + 1] - bs)
        else:
            store_u8_at(at, 0)  # no headers


# ----------------------------------------------------------------------------- decoding

@njit(**SERIAL)
def scan_records(buf, start, stop, count):
    """Find the body of each of ``count`` records laid back to back in ``buf[start:stop]``.

    Returns (body start per record, body end per record, fault code, fault offset, record).
    """
    body_lo = np.empty(count, np.int64)
    body_hi = np.empty(count, np.int64)
    base = buf.ctypes.data
    pos = start
    for r in range(count):
        length, nxt, err = get_zigzag(base, pos, stop, 5)
        if err != OK:
            return body_lo, body_hi, err, nxt, r
        if length < 0:
            return body_lo, body_hi, E_LENGTH_NEGATIVE, pos, r
        if length > stop - nxt:
            return body_lo, body_hi, E_RECORD_OVERRUN, pos, r
        body_lo[r] = nxt
        body_hi[r] = nxt + length
        pos = nxt + length
    if pos != stop:
        return body_lo, body_hi, E_TRAILING, pos, count
    return body_lo, body_hi, OK, -1, -1


#: Columns of the per-record fields that :func:`parse_records` returns.
F_TS, F_OFFSET, F_KEY_POS, F_KEY_LEN, F_VALUE_POS, F_VALUE_LEN, F_HEADERS, F_HEADER_POS = range(8)


@njit(**SERIAL)
def parse_record(base, lo, hi):
    """Parse one record body, the bytes [lo, hi) after address ``base``.

    Returns (fault code, fault offset, timestamp delta, offset delta, key position, key length
    or -1, value position, value length or -1, header count, position of the first header).
    """
    pos = lo + 1  # attributes: one byte, unused in v2 records
    if pos > hi:
        return E_RECORD_SHORT, lo, 0, 0, 0, 0, 0, 0, 0, 0
    ts, pos, err = get_zigzag(base, pos, hi, 10)
    if err != OK:
        return err, pos, 0, 0, 0, 0, 0, 0, 0, 0
    od, pos, err = get_zigzag(base, pos, hi, 5)
    if err != OK:
        return err, pos, 0, 0, 0, 0, 0, 0, 0, 0
    kl, kp, err = get_zigzag(base, pos, hi, 5)
    if err != OK:
        return err, kp, 0, 0, 0, 0, 0, 0, 0, 0
    if kl >= 0 and kl > hi - kp:
        return E_KEY_OVERRUN, pos, 0, 0, 0, 0, 0, 0, 0, 0
    kl = max(kl, -1)
    pos = kp + max(kl, 0)
    vl, vp, err = get_zigzag(base, pos, hi, 5)
    if err != OK:
        return err, vp, 0, 0, 0, 0, 0, 0, 0, 0
    if vl >= 0 and vl > hi - vp:
        return E_VALUE_OVERRUN, pos, 0, 0, 0, 0, 0, 0, 0, 0
    vl = max(vl, -1)
    pos = vp + max(vl, 0)
    hc, hp, err = get_zigzag(base, pos, hi, 5)
    if err != OK:
        return err, hp, 0, 0, 0, 0, 0, 0, 0, 0
    if hc < 0 or hc > hi - hp:
        return E_HEADER_COUNT, pos, 0, 0, 0, 0, 0, 0, 0, 0
    pos = hp
    for _ in range(hc):
        hk, nxt, err = get_zigzag(base, pos, hi, 5)
        if err != OK:
            return err, nxt, 0, 0, 0, 0, 0, 0, 0, 0
        if hk < 0:
            return E_HEADER_KEY_NEGATIVE, pos, 0, 0, 0, 0, 0, 0, 0, 0
        if hk > hi - nxt:
            return E_HEADER_KEY_OVERRUN, pos, 0, 0, 0, 0, 0, 0, 0, 0
        pos = nxt + hk
        hv, nxt, err = get_zigzag(base, pos, hi, 5)
        if err != OK:
            return err, nxt, 0, 0, 0, 0, 0, 0, 0, 0
        if hv >= 0 and hv > hi - nxt:
            return E_HEADER_VALUE_OVERRUN, pos, 0, 0, 0, 0, 0, 0, 0, 0
        pos = nxt + max(hv, 0)
    if pos != hi:
        return E_RECORD_LEFTOVER, pos, 0, 0, 0, 0, 0, 0, 0, 0
    return OK, -1, ts, od, kp, kl, vp, vl, hc, hp


@njit(**PARALLEL)
def parse_records(buf, body_lo, body_hi):
    """Parse every record in parallel. Returns (fields[count, 8] in the F_* column order,
    first faulty record or -1, its fault code, its fault offset)."""
    count = body_lo.shape[0]
    fields = np.empty((count, 8), np.int64)
    codes = np.empty(count, np.int64)
    where = np.empty(count, np.int64)
    base = buf.ctypes.data
    for r in prange(count):
        code, at, ts, od, kp, kl, vp, vl, hc, hp = parse_record(base, body_lo[r], body_hi[r])
        codes[r] = code
        where[r] = at
        fields[r, F_TS] = ts
        fields[r, F_OFFSET] = od
        fields[r, F_KEY_POS] = kp
        fields[r, F_KEY_LEN] = kl
        fields[r, F_VALUE_POS] = vp
        fields[r, F_VALUE_LEN] = vl
        fields[r, F_HEADERS] = hc
        fields[r, F_HEADER_POS] = hp
    for r in range(count):
        if codes[r] != OK:
            return fields, r, codes[r], where[r]
    return fields, -1, OK, -1


@njit(**SERIAL)
def _field_offsets(fields, len_col):
    count = fields.shape[0]
    offsets = np.empty(count + 1, np.int64)
    offsets[0] = 0
    validity = np.empty(count, np.bool_)
    for r in range(count):
        ln = fields[r, len_col]
        validity[r] = ln >= 0
        offsets[r + 1] = offsets[r] + max(ln, 0)
    return offsets, validity


@njit(**PARALLEL)
def gather_keys_values(buf, fields):
    """Copy every record's key and value into two columns: (key offsets, key bytes, key
    validity, value offsets, value bytes, value validity). Null fields are empty and False."""
    count = fields.shape[0]
    koffsets, kvalid = _field_offsets(fields, F_KEY_LEN)
    voffsets, vvalid = _field_offsets(fields, F_VALUE_LEN)
    kdata = np.empty(koffsets[count], np.uint8)
    vdata = np.empty(voffsets[count], np.uint8)
    src = buf.ctypes.data
    kdst = kdata.ctypes.data
    vdst = vdata.ctypes.data
    for r in prange(count):
        copy_message(kdst + koffsets[r], src + fields[r, F_KEY_POS], koffsets[r + 1] - koffsets[r])
        copy_message(vdst + voffsets[r], src + fields[r, F_VALUE_POS], voffsets[r + 1] - voffsets[r])
    return koffsets, kdata, kvalid, voffsets, vdata, vvalid


@njit(**SERIAL)
def _hash_bytes(addr, length):
    """FNV-1a (64-bit) of ``length`` bytes at ``addr``."""
    h = np.uint64(0xCBF29CE484222325)
    for k in range(length):
        h = (h ^ np.uint64(load_u8_at(addr + k))) * np.uint64(0x100000001B3)
    return h


@njit(**SERIAL)
def _same_bytes(a, b, length):
    for k in range(length):
        if load_u8_at(a + k) != load_u8_at(b + k):
            return False
    return True


@njit(**PARALLEL)
def gather_headers(buf, fields, body_hi):
    """Collect every header of every record (headers were validated by :func:`parse_records`).

    Returns (entry offsets per record, name id per entry, first byte and length of each
    distinct name, type per entry (BYTES or NONE), value offsets, value data). Names are
    interned in order of first appearance with an open-addressing hash table.
    """
    count = fields.shape[0]
    base = buf.ctypes.data
    offsets = np.empty(count + 1, np.int64)
    offsets[0] = 0
    for r in range(count):
        offsets[r + 1] = offsets[r] + fields[r, F_HEADERS]
    m = offsets[count]
    key_pos = np.empty(m, np.int64)
    key_len = np.empty(m, np.int64)
    val_pos = np.empty(m, np.int64)
    val_len = np.empty(m, np.int64)
    for r in prange(count):
        pos = fields[r, F_HEADER_POS]
        hi = body_hi[r]
        for e in range(offsets[r], offsets[r + 1]):
            hk, pos, _ = get_zigzag(base, pos, hi, 5)
            key_pos[e] = pos
            key_len[e] = hk
            pos += hk
            hv, pos, _ = get_zigzag(base, pos, hi, 5)
            val_pos[e] = pos
            val_len[e] = max(hv, -1)
            pos += max(hv, 0)
    # intern the names (serial: few distinct names, one probe per entry)
    size = 16
    while size < 2 * m:
        size *= 2
    table = np.full(size, -1, np.int64)
    name_ids = np.empty(m, np.int32)
    name_pos = np.empty(m, np.int64)
    name_len = np.empty(m, np.int64)
    k = 0
    for e in range(m):
        h = _hash_bytes(base + key_pos[e], key_len[e])
        slot = np.int64(h & np.uint64(size - 1))
        while True:
            nid = table[slot]
            if nid < 0:
                table[slot] = k
                name_pos[k] = key_pos[e]
                name_len[k] = key_len[e]
                name_ids[e] = k
                k += 1
                break
            if name_len[nid] == key_len[e] and _same_bytes(base + name_pos[nid], base + key_pos[e], key_len[e]):
                name_ids[e] = nid
                break
            slot = (slot + 1) & (size - 1)
    types = np.empty(m, np.uint8)
    blob_offsets = np.empty(m + 1, np.int64)
    blob_offsets[0] = 0
    for e in range(m):
        types[e] = C.NONE if val_len[e] < 0 else C.BYTES
        blob_offsets[e + 1] = blob_offsets[e] + max(val_len[e], 0)
    blob_data = np.empty(blob_offsets[m], np.uint8)
    dst = blob_data.ctypes.data
    for e in prange(m):
        copy_message(dst + blob_offsets[e], base + val_pos[e], blob_offsets[e + 1] - blob_offsets[e])
    return offsets, name_ids, name_pos[:k].copy(), name_len[:k].copy(), types, blob_offsets, blob_data
