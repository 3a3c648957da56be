"""Encoding kernels of the fastroute frame (layout in ``docs/frame-format.md``).

A frame is a fixed header, a directory of column sizes, then the columns, each starting at an
8-byte boundary so that a reader can view them as numpy arrays in place.

One batch, one frame (:func:`write_frame`): the messages are cut into segments of about 256 KiB
(:func:`segment_plan`, :func:`segment_sums`), :func:`frame_layout` turns the per-segment sums
into column sizes and positions with one prefix sum, and each segment writes its part of
every column, then checksums its key and value bytes while they are still in cache. The rest
of the frame (:func:`gap_ranges`: header, offsets, headers, metadata) is checksummed after,
and :func:`finish_crcs` merges all pieces, in byte order, into the frame's CRC-32C.

One frame per destination (:func:`scatter_frames`): blocks of consecutive messages are the
unit of work. :func:`scatter_sums` sums what each block sends to each destination,
:func:`scatter_pieces` and :func:`frame_layout` turn that into frames and per-block cursors,
and each block appends its messages to their destinations' frames, reading the batch in
order. The frames' CRC-32C are computed afterwards over whole frames.

Nothing here validates input; :mod:`fastroute.codec` does.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL
from .crc32c import crc32c_combine, crc32c_range
from .frame_bytes import copy_at, copy_message, store_u64_at

# ----------------------------------------------------------------------------- layout constants

MAGIC = b"FRTF"
VERSION = 1
#: Bytes before the column directory: magic, crc, version, flags, column count, frame
#: length, message count, header entry count, header name count.
FIXED_BYTES = 48
NCOLS = 18
HEADER_BYTES = FIXED_BYTES + 8 * NCOLS

# Column slots, in frame order.
KEY_OFFSETS, KEY_VALIDITY, KEY_DATA = 0, 1, 2
VALUE_OFFSETS, VALUE_VALIDITY, VALUE_DATA = 3, 4, 5
HDR_OFFSETS, HDR_NAME_IDS, HDR_TYPES, HDR_INTS, HDR_FLOATS = 6, 7, 8, 9, 10
HDR_BLOB_OFFSETS, HDR_BLOB_DATA, HDR_NAME_OFFSETS, HDR_NAME_DATA = 11, 12, 13, 14
PARTITION, OFFSET, TIMESTAMP = 15, 16, 17

COLUMN_NAMES = ("key_offsets", "key_validity", "key_data", "value_offsets", "value_validity",
                "value_data", "header_offsets", "header_name_ids", "header_types", "header_ints",
                "header_floats", "header_blob_offsets", "header_blob_data", "header_name_offsets",
                "header_name_data", "partition", "offset", "timestamp")

# Flag bits.
F_KEY_VALIDITY = 1
F_VALUE_VALIDITY = 2
F_HEADERS = 4
F_PARTITION = 8
F_OFFSET = 16
F_TIMESTAMP = 32
F_ALL = 63

#: Bounds of the segment size in messages, and the bytes a segment aims at: small enough that
#: a segment's bytes are still in cache when they are checksummed, large enough that the
#: per-segment bookkeeping is noise.
SEGMENT_MIN = 16
SEGMENT_MAX = 4096
SEGMENT_BYTES = 1 << 18


def segment_size(n_messages: int, n_bytes: int) -> int:
    """Messages per segment for a batch of that many messages and key + value bytes."""
    if n_messages == 0:
        return SEGMENT_MAX
    avg = max(1, n_bytes // n_messages)
    return int(min(SEGMENT_MAX, max(SEGMENT_MIN, SEGMENT_BYTES // avg)))

#: Byte columns, as numba sees them: validity is an empty bool array when the column has
#: no nulls.
Column = namedtuple("Column", "offsets data validity")
#: A HeaderTable's arrays plus its names as UTF-8 (offsets + bytes); all empty without headers.
Headers = namedtuple("Headers", "offsets name_ids types ints floats blob_offsets blob_data "
                                "name_offsets name_data")
#: Optional per-message metadata; an absent column is an empty array.
Meta = namedtuple("Meta", "partition offset timestamp")


@njit(**SERIAL)
def pad8(n):
    return (n + 7) & ~7


# ----------------------------------------------------------------------------- step 1

@njit(**SERIAL)
def segment_plan(n, seg_size):
    """Cut messages 0..n into segments of at most ``seg_size``: (frame of segment (all 0),
    first message, end message). No messages still make one empty segment, which writes the
    frame's header."""
    count = max(1, (n + seg_size - 1) // seg_size)
    seg_frame = np.zeros(count, np.int64)
    seg_lo = np.empty(count, np.int64)
    seg_hi = np.empty(count, np.int64)
    for s in range(count):
        seg_lo[s] = min(n, s * seg_size)
        seg_hi[s] = min(n, (s + 1) * seg_size)
    return seg_frame, seg_lo, seg_hi


#: Per-segment sums, in this column order.
S_KEY_BYTES, S_VALUE_BYTES, S_KEY_NULLS, S_VALUE_NULLS, S_ENTRIES, S_BLOB_BYTES = 0, 1, 2, 3, 4, 5


@njit(**PARALLEL)
def segment_sums(seg_lo, seg_hi, keys, values, headers):
    """Per segment: key bytes, value bytes, key nulls, value nulls, header entries, blob bytes."""
    nseg = seg_lo.shape[0]
    sums = np.zeros((nseg, 6), np.int64)
    has_kv = keys.validity.shape[0] > 0
    has_vv = values.validity.shape[0] > 0
    has_h = headers.offsets.shape[0] > 0
    for s in prange(nseg):
        kb = 0
        vb = 0
        kn = 0
        vn = 0
        ne = 0
        bb = 0
        for i in range(seg_lo[s], seg_hi[s]):
            kb += keys.offsets[i + 1] - keys.offsets[i]
            vb += values.offsets[i + 1] - values.offsets[i]
            if has_kv and not keys.validity[i]:
                kn += 1
            if has_vv and not values.validity[i]:
                vn += 1
            if has_h:
                e0 = headers.offsets[i]
                e1 = headers.offsets[i + 1]
                ne += e1 - e0
                bb += headers.blob_offsets[e1] - headers.blob_offsets[e0]
        sums[s, S_KEY_BYTES] = kb
        sums[s, S_VALUE_BYTES] = vb
        sums[s, S_KEY_NULLS] = kn
        sums[s, S_VALUE_NULLS] = vn
        sums[s, S_ENTRIES] = ne
        sums[s, S_BLOB_BYTES] = bb
    return sums


# ----------------------------------------------------------------------------- step 2

@njit(**SERIAL)
def frame_layout(group_offsets, seg_frame, sums, source_flags, name_count, name_bytes):
    """Sizes and positions of every frame and column.

    Returns (flags[f], counts[f, 3] = messages / header entries / names, sizes[f, NCOLS],
    col_start[f, NCOLS] (from the frame start), frame_start[f+1], seg_base[s, 6]): seg_base
    holds, per segment, the running totals (same order as ``sums``) of the earlier segments
    of its frame, so each segment can write its part independently. ``sums`` is consumed.
    """
    nf = group_offsets.shape[0] - 1
    nseg = seg_frame.shape[0]
    totals = np.zeros((nf, 6), np.int64)
    seg_base = np.empty((nseg, 6), np.int64)
    for s in range(nseg):
        f = seg_frame[s]
        for q in range(6):
            seg_base[s, q] = totals[f, q]
            totals[f, q] += sums[s, q]
    flags = np.empty(nf, np.int64)
    counts = np.zeros((nf, 3), np.int64)
    sizes = np.zeros((nf, NCOLS), np.int64)
    col_start = np.zeros((nf, NCOLS), np.int64)
    frame_start = np.zeros(nf + 1, np.int64)
    for f in range(nf):
        c = group_offsets[f + 1] - group_offsets[f]
        fl = source_flags & (F_HEADERS | F_PARTITION | F_OFFSET | F_TIMESTAMP)
        if totals[f, S_KEY_NULLS] > 0:
            fl |= F_KEY_VALIDITY
        if totals[f, S_VALUE_NULLS] > 0:
            fl |= F_VALUE_VALIDITY
        flags[f] = fl
        sz = sizes[f]
        sz[KEY_OFFSETS] = 8 * (c + 1)
        sz[KEY_VALIDITY] = c if fl & F_KEY_VALIDITY else 0
        sz[KEY_DATA] = totals[f, S_KEY_BYTES]
        sz[VALUE_OFFSETS] = 8 * (c + 1)
        sz[VALUE_VALIDITY] = c if fl & F_VALUE_VALIDITY else 0
        sz[VALUE_DATA] = totals[f, S_VALUE_BYTES]
        counts[f, 0] = c
        if fl & F_HEADERS:
            m = totals[f, S_ENTRIES]
            counts[f, 1] = m
            counts[f, 2] = name_count
            sz[HDR_OFFSETS] = 8 * (c + 1)
            sz[HDR_NAME_IDS] = 4 * m
            sz[HDR_TYPES] = m
            sz[HDR_INTS] = 8 * m
            sz[HDR_FLOATS] = 8 * m
            sz[HDR_BLOB_OFFSETS] = 8 * (m + 1)
            sz[HDR_BLOB_DATA] = totals[f, S_BLOB_BYTES]
            sz[HDR_NAME_OFFSETS] = 8 * (name_count + 1)
            sz[HDR_NAME_DATA] = name_bytes
        if fl & F_PARTITION:
            sz[PARTITION] = 4 * c
        if fl & F_OFFSET:
            sz[OFFSET] = 8 * c
        if fl & F_TIMESTAMP:
            sz[TIMESTAMP] = 8 * c
        pos = HEADER_BYTES
        for col in range(NCOLS):
            col_start[f, col] = pos
            pos += pad8(sz[col])
        frame_start[f + 1] = frame_start[f] + pos
    return flags, counts, sizes, col_start, frame_start, seg_base


# ----------------------------------------------------------------------------- step 3

_MAGIC_WORD = int.from_bytes(MAGIC, "little")


@njit(**SERIAL)
def _write_header(out, out64, f, flags, counts, sizes, col_start, frame_start, headers):
    """Write frame f's fixed header and directory (CRC left 0), zero its column padding, and
    write the first entry of every offsets column and the header names."""
    base = frame_start[f]
    w = base // 8
    out64[w] = _MAGIC_WORD  # magic in bytes 0..3; the CRC (bytes 4..7) is filled in last
    out64[w + 1] = VERSION | (flags[f] << 16) | (NCOLS << 32)
    out64[w + 2] = frame_start[f + 1] - base
    out64[w + 3] = counts[f, 0]
    out64[w + 4] = counts[f, 1]
    out64[w + 5] = counts[f, 2]
    for col in range(NCOLS):
        out64[w + 6 + col] = sizes[f, col]
        start = base + col_start[f, col]
        for k in range(start + sizes[f, col], start + pad8(sizes[f, col])):
            out[k] = 0
    out64[(base + col_start[f, KEY_OFFSETS]) // 8] = 0
    out64[(base + col_start[f, VALUE_OFFSETS]) // 8] = 0
    if flags[f] & F_HEADERS:
        out64[(base + col_start[f, HDR_OFFSETS]) // 8] = 0
        out64[(base + col_start[f, HDR_BLOB_OFFSETS]) // 8] = 0
        no = (base + col_start[f, HDR_NAME_OFFSETS]) // 8
        for k in range(headers.name_offsets.shape[0]):
            out64[no + k] = headers.name_offsets[k]
        copy_at(out.ctypes.data + base + col_start[f, HDR_NAME_DATA], headers.name_data.ctypes.data,
                headers.name_data.shape[0])


@njit(**SERIAL)
def _write_binary(out, out64, lo, hi, col, off_word, data_pos, start, valid_pos):
    """Write the offsets (and validity, when valid_pos >= 0) of messages [lo, hi) and copy
    their bytes, which lie back to back in the source, to ``data_pos + start`` onwards."""
    pos = start
    for i in range(lo, hi):
        pos += col.offsets[i + 1] - col.offsets[i]
        out64[off_word + i - lo] = pos
        if valid_pos >= 0:
            out[valid_pos + i - lo] = 1 if col.validity[i] else 0
    copy_at(out.ctypes.data + data_pos + start, col.data.ctypes.data + col.offsets[lo], pos - start)


@njit(**PARALLEL)
def write_frame(out, out32, out64, outf, seg_lo, seg_hi, sums, seg_base, flags, counts, sizes,
                col_start, keys, values, headers, meta, hw):
    """Write a batch as frame 0 of ``out``, one segment per task: the header (by the first
    segment), then the segment's part of every column. Each segment's key bytes and value
    bytes are checksummed while they are in cache; returns their CRC-32C, (segments, 2)."""
    nseg = seg_lo.shape[0]
    crcs = np.empty((nseg, 2), np.uint32)
    frame_start = np.array([0, out.shape[0]], np.int64)
    fl = flags[0]
    for s in prange(nseg):
        lo = seg_lo[s]
        hi = seg_hi[s]
        if s == 0:
            _write_header(out, out64, 0, flags, counts, sizes, col_start, frame_start, headers)
        kd = col_start[0, KEY_DATA]
        vd = col_start[0, VALUE_DATA]
        kb = seg_base[s, S_KEY_BYTES]
        vb = seg_base[s, S_VALUE_BYTES]
        _write_binary(out, out64, lo, hi, keys, col_start[0, KEY_OFFSETS] // 8 + 1 + lo, kd, kb,
                      col_start[0, KEY_VALIDITY] + lo if fl & F_KEY_VALIDITY else -1)
        _write_binary(out, out64, lo, hi, values, col_start[0, VALUE_OFFSETS] // 8 + 1 + lo, vd, vb,
                      col_start[0, VALUE_VALIDITY] + lo if fl & F_VALUE_VALIDITY else -1)
        if fl & F_HEADERS:
            _write_headers_part(out, out32, out64, outf, s, seg_lo, seg_hi, seg_base, col_start, headers)
        if fl & F_PARTITION:
            out32[col_start[0, PARTITION] // 4 + lo:col_start[0, PARTITION] // 4 + hi] = meta.partition[lo:hi]
        if fl & F_OFFSET:
            out64[col_start[0, OFFSET] // 8 + lo:col_start[0, OFFSET] // 8 + hi] = meta.offset[lo:hi]
        if fl & F_TIMESTAMP:
            out64[col_start[0, TIMESTAMP] // 8 + lo:col_start[0, TIMESTAMP] // 8 + hi] = meta.timestamp[lo:hi]
        crcs[s, 0] = crc32c_range(out, kd + kb, kd + kb + sums[s, S_KEY_BYTES], 0, hw)
        crcs[s, 1] = crc32c_range(out, vd + vb, vd + vb + sums[s, S_VALUE_BYTES], 0, hw)
    return crcs


@njit(**SERIAL)
def _write_headers_part(out, out32, out64, outf, s, seg_lo, seg_hi, seg_base, col_start, headers):
    """Write the header columns of segment s's messages into frame 0."""
    ho = col_start[0, HDR_OFFSETS] // 8 + 1
    ids = col_start[0, HDR_NAME_IDS] // 4
    tys = col_start[0, HDR_TYPES]
    ints = col_start[0, HDR_INTS] // 8
    flts = col_start[0, HDR_FLOATS] // 8
    bo = col_start[0, HDR_BLOB_OFFSETS] // 8 + 1
    e = seg_base[s, S_ENTRIES]
    bpos = seg_base[s, S_BLOB_BYTES]
    e0 = headers.offsets[seg_lo[s]]
    e1 = headers.offsets[seg_hi[s]]
    b0 = headers.blob_offsets[e0]
    copy_at(out.ctypes.data + col_start[0, HDR_BLOB_DATA] + bpos, headers.blob_data.ctypes.data + b0,
            headers.blob_offsets[e1] - b0)
    for q in range(e0, e1):
        out32[ids + e] = headers.name_ids[q]
        out[tys + e] = headers.types[q]
        out64[ints + e] = headers.ints[q]
        outf[flts + e] = headers.floats[q]
        bpos += headers.blob_offsets[q + 1] - headers.blob_offsets[q]
        out64[bo + e] = bpos
        e += 1
    for i in range(seg_lo[s], seg_hi[s]):
        out64[ho + i] = headers.offsets[i + 1] - headers.offsets[0]


@njit(**SERIAL)
def gap_ranges(sizes, col_start, frame_start):
    """Per frame, the three byte ranges outside its key and value bytes: [8, key data),
    [end of key data, value data), [end of value data, frame end). Returns (starts, stops)."""
    nf = sizes.shape[0]
    starts = np.empty(3 * nf, np.int64)
    stops = np.empty(3 * nf, np.int64)
    for f in range(nf):
        b = frame_start[f]
        kd = b + col_start[f, KEY_DATA]
        vd = b + col_start[f, VALUE_DATA]
        starts[3 * f] = b + 8
        stops[3 * f] = kd
        starts[3 * f + 1] = kd + sizes[f, KEY_DATA]
        stops[3 * f + 1] = vd
        starts[3 * f + 2] = vd + sizes[f, VALUE_DATA]
        stops[3 * f + 2] = frame_start[f + 1]
    return starts, stops


@njit(**SERIAL)
def finish_crcs(outu32, seg_frame, sums, crcs, gap_crcs, gap_starts, gap_stops, frame_start):
    """Merge, in byte order, each frame's gap and segment checksums into the CRC-32C of bytes
    [8, frame end), and store it at byte 4 of the frame."""
    nf = frame_start.shape[0] - 1
    s0 = 0
    for f in range(nf):
        s1 = s0
        while s1 < seg_frame.shape[0] and seg_frame[s1] == f:
            s1 += 1
        acc = gap_crcs[3 * f]
        for s in range(s0, s1):
            acc = crc32c_combine(acc, crcs[s, 0], sums[s, S_KEY_BYTES])
        acc = crc32c_combine(acc, gap_crcs[3 * f + 1], gap_stops[3 * f + 1] - gap_starts[3 * f + 1])
        for s in range(s0, s1):
            acc = crc32c_combine(acc, crcs[s, 1], sums[s, S_VALUE_BYTES])
        acc = crc32c_combine(acc, gap_crcs[3 * f + 2], gap_stops[3 * f + 2] - gap_starts[3 * f + 2])
        outu32[frame_start[f] // 4 + 1] = acc
        s0 = s1


# ----------------------------------------------------------------------------- one frame per destination

# encode_frames scatters instead of gathering: each task reads a block of consecutive messages
# in batch order (sequential reads, which the hardware prefetches) and appends every message to
# the frames of its destinations at cursors computed beforehand. Gathering each destination's
# messages instead reads keys and values at random and measured about 1.5 times slower (one
# thread, 1M messages to 100 destinations).


@njit(**PARALLEL)
def scatter_sums(route_offsets, route_dests, n_dest, nblocks, keys, values, headers):
    """Per block of messages and destination: messages, key bytes, value bytes, key nulls,
    value nulls, header entries, header value bytes. Returns (counts[b, d], sums[b, d, 6])."""
    n = route_offsets.shape[0] - 1
    size = (n + nblocks - 1) // nblocks
    counts = np.zeros((nblocks, n_dest), np.int64)
    sums = np.zeros((nblocks, n_dest, 6), np.int64)
    has_kv = keys.validity.shape[0] > 0
    has_vv = values.validity.shape[0] > 0
    has_h = headers.offsets.shape[0] > 0
    for b in prange(nblocks):
        for i in range(b * size, min(n, (b + 1) * size)):
            kb = keys.offsets[i + 1] - keys.offsets[i]
            vb = values.offsets[i + 1] - values.offsets[i]
            kn = 1 if has_kv and not keys.validity[i] else 0
            vn = 1 if has_vv and not values.validity[i] else 0
            ne = 0
            bb = 0
            if has_h:
                e0 = headers.offsets[i]
                e1 = headers.offsets[i + 1]
                ne = e1 - e0
                bb = headers.blob_offsets[e1] - headers.blob_offsets[e0]
            for k in range(route_offsets[i], route_offsets[i + 1]):
                d = route_dests[k]
                counts[b, d] += 1
                sums[b, d, S_KEY_BYTES] += kb
                sums[b, d, S_VALUE_BYTES] += vb
                sums[b, d, S_KEY_NULLS] += kn
                sums[b, d, S_VALUE_NULLS] += vn
                sums[b, d, S_ENTRIES] += ne
                sums[b, d, S_BLOB_BYTES] += bb
    return counts, sums


@njit(**SERIAL)
def scatter_pieces(counts, sums):
    """Turn the per-(block, destination) sums into frames and pieces.

    Frames are the destinations that receive a message, in id order. Piece (f, b) is what
    block b appends to frame f; pieces are listed frame by frame, block by block, in the
    ``segment`` form :func:`frame_layout` takes. Returns (used destinations, frame of each
    destination or -1, group_offsets, piece frame, piece sums, message count before each piece
    within its frame).
    """
    nblocks, n_dest = counts.shape
    frame_of = np.full(n_dest, -1, np.int64)
    nf = 0
    for d in range(n_dest):
        total = 0
        for b in range(nblocks):
            total += counts[b, d]
        if total > 0:
            frame_of[d] = nf
            nf += 1
    used = np.empty(nf, np.int64)
    group_offsets = np.zeros(nf + 1, np.int64)
    piece_frame = np.empty(nf * nblocks, np.int64)
    piece_sums = np.empty((nf * nblocks, 6), np.int64)
    piece_first = np.empty(nf * nblocks, np.int64)
    for d in range(n_dest):
        f = frame_of[d]
        if f < 0:
            continue
        used[f] = d
        c = 0
        for b in range(nblocks):
            s = f * nblocks + b
            piece_frame[s] = f
            piece_first[s] = c
            c += counts[b, d]
            for q in range(6):
                piece_sums[s, q] = sums[b, d, q]
        group_offsets[f + 1] = group_offsets[f] + c
    return used, frame_of, group_offsets, piece_frame, piece_sums, piece_first


@njit(**PARALLEL)
def scatter_frames(out, out32, out64, outf, route_offsets, route_dests, frame_of, nblocks,
                   piece_base, piece_first, flags, counts, sizes, col_start, frame_start, keys,
                   values, headers, meta):
    """Write every frame: headers (one task per frame), then every message appended to the
    frames of its destinations, one block of consecutive messages per task. Leaves the CRC
    fields 0."""
    nf = frame_start.shape[0] - 1
    for f in prange(nf):
        _write_header(out, out64, f, flags, counts, sizes, col_start, frame_start, headers)
    n = route_offsets.shape[0] - 1
    size = (n + nblocks - 1) // nblocks
    base_addr = out.ctypes.data
    ksrc = keys.data.ctypes.data
    vsrc = values.data.ctypes.data
    extra = F_KEY_VALIDITY | F_VALUE_VALIDITY | F_HEADERS | F_PARTITION | F_OFFSET | F_TIMESTAMP
    for b in prange(nblocks):
        # Per frame, the addresses where this block's next key byte, key offset, value byte and
        # value offset go, and the running key / value offsets: plain 1-D arrays, so the hot
        # loop is a few loads and stores per message.
        kdst = np.empty(nf, np.int64)
        koff = np.empty(nf, np.int64)
        kpos = np.empty(nf, np.int64)
        vdst = np.empty(nf, np.int64)
        voff = np.empty(nf, np.int64)
        vpos = np.empty(nf, np.int64)
        for f in range(nf):
            s = f * nblocks + b
            at = base_addr + frame_start[f]
            kpos[f] = piece_base[s, S_KEY_BYTES]
            vpos[f] = piece_base[s, S_VALUE_BYTES]
            kdst[f] = at + col_start[f, KEY_DATA] + kpos[f]
            vdst[f] = at + col_start[f, VALUE_DATA] + vpos[f]
            koff[f] = at + col_start[f, KEY_OFFSETS] + 8 * (piece_first[s] + 1)
            voff[f] = at + col_start[f, VALUE_OFFSETS] + 8 * (piece_first[s] + 1)
        for i in range(b * size, min(n, (b + 1) * size)):
            ka = keys.offsets[i]
            kl = keys.offsets[i + 1] - ka
            va = values.offsets[i]
            vl = values.offsets[i + 1] - va
            for k in range(route_offsets[i], route_offsets[i + 1]):
                f = frame_of[route_dests[k]]
                at = kdst[f]
                copy_message(at, ksrc + ka, kl)
                kdst[f] = at + kl
                p = kpos[f] + kl
                kpos[f] = p
                at = koff[f]
                store_u64_at(at, p)
                koff[f] = at + 8
                at = vdst[f]
                copy_message(at, vsrc + va, vl)
                vdst[f] = at + vl
                p = vpos[f] + vl
                vpos[f] = p
                at = voff[f]
                store_u64_at(at, p)
                voff[f] = at + 8
        if flags.shape[0] and (_any_flag(flags, extra)):
            _scatter_extras(out, out32, out64, outf, route_offsets, route_dests, frame_of, nblocks,
                            b, size, piece_base, piece_first, flags, col_start, frame_start, keys,
                            values, headers, meta)


@njit(**SERIAL)
def _any_flag(flags, mask):
    for f in range(flags.shape[0]):
        if flags[f] & mask:
            return True
    return False


@njit(**SERIAL)
def _scatter_extras(out, out32, out64, outf, route_offsets, route_dests, frame_of, nblocks, b, size,
                    piece_base, piece_first, flags, col_start, frame_start, keys, values, headers,
                    meta):
    """The rest of block b's columns: validity, headers and metadata."""
    nf = frame_start.shape[0] - 1
    n = route_offsets.shape[0] - 1
    cur = np.empty((nf, 3), np.int64)  # messages, header entries, header bytes
    for f in range(nf):
        s = f * nblocks + b
        cur[f, 0] = piece_first[s]
        cur[f, 1] = piece_base[s, S_ENTRIES]
        cur[f, 2] = piece_base[s, S_BLOB_BYTES]
    base_addr = out.ctypes.data
    bsrc = headers.blob_data.ctypes.data
    for i in range(b * size, min(n, (b + 1) * size)):
        for k in range(route_offsets[i], route_offsets[i + 1]):
            f = frame_of[route_dests[k]]
            base = frame_start[f]
            fl = flags[f]
            j = cur[f, 0]
            if fl & F_KEY_VALIDITY:
                out[base + col_start[f, KEY_VALIDITY] + j] = 1 if keys.validity[i] else 0
            if fl & F_VALUE_VALIDITY:
                out[base + col_start[f, VALUE_VALIDITY] + j] = 1 if values.validity[i] else 0
            if fl & F_HEADERS:
                e = cur[f, 1]
                bpos = cur[f, 2]
                e0 = headers.offsets[i]
                e1 = headers.offsets[i + 1]
                b0 = headers.blob_offsets[e0]
                copy_message(base_addr + base + col_start[f, HDR_BLOB_DATA] + bpos, bsrc + b0,
                             headers.blob_offsets[e1] - b0)
                ids = (base + col_start[f, HDR_NAME_IDS]) // 4
                tys = base + col_start[f, HDR_TYPES]
                ints = (base + col_start[f, HDR_INTS]) // 8
                flts = (base + col_start[f, HDR_FLOATS]) // 8
                bo = (base + col_start[f, HDR_BLOB_OFFSETS]) // 8 + 1
                for q in range(e0, e1):
                    out32[ids + e] = headers.name_ids[q]
                    out[tys + e] = headers.types[q]
                    out64[ints + e] = headers.ints[q]
                    outf[flts + e] = headers.floats[q]
                    bpos += headers.blob_offsets[q + 1] - headers.blob_offsets[q]
                    out64[bo + e] = bpos
                    e += 1
                out64[(base + col_start[f, HDR_OFFSETS]) // 8 + 1 + j] = e
                cur[f, 1] = e
                cur[f, 2] = bpos
            if fl & F_PARTITION:
                out32[(base + col_start[f, PARTITION]) // 4 + j] = meta.partition[i]
            if fl & F_OFFSET:
                out64[(base + col_start[f, OFFSET]) // 8 + j] = meta.offset[i]
            if fl & F_TIMESTAMP:
                out64[(base + col_start[f, TIMESTAMP]) // 8 + j] = meta.timestamp[i]
            cur[f, 0] = j + 1
