"""Frame encoding on a CUDA device: the same bytes as :mod:`fastroute.kernels.frame`.

The unit of work is a *delivery*: one message copied into one frame. Frame f holds the
messages ``msgs[msg_off[f]:msg_off[f+1]]`` in that order (a single frame of the whole batch,
or one frame per destination from the stable grouping of a Routes). Sizes take two passes
with a prefix sum between, as the issue and the CPU layout both want:

1. per delivery, its key, value, header-entry and header-value byte counts
   (:func:`_delivery_sums`; null keys and values are counted per frame with atomic adds);
2. exclusive prefix sums over the deliveries give every delivery's position inside its
   frame's columns, and their values at frame boundaries the frames' totals. The host runs
   the CPU's own :func:`~fastroute.kernels.frame.frame_layout` on those totals (a few numbers
   per frame), so column sizes, flags and positions cannot differ from the CPU's;
3. one thread per frame writes its header and directory (:func:`_write_headers`), one
   thread per delivery its part of every column (:func:`_write_deliveries`), then the
   frames' CRC-32C are computed on the device (:mod:`fastroute.kernels.cuda_crc32c`) and
   stored at byte 4 of each frame.

A team of threads (a warp on hardware) copies each delivery's bytes, lane k taking bytes
k, k + 32, ...: contiguous loads and stores for any alignment. Nothing here validates input;
:mod:`fastroute.codec` does.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch as L
from . import frame as F
from .cuda_crc32c import crc32c_ranges
from .cuda_launch import KERNEL
from .cuda_scan import exclusive_scan, range_of

_MAGIC_WORD = int.from_bytes(F.MAGIC, "little")


@cuda.jit(**KERNEL)
def _delivery_sums(msgs, msg_off, keys, values, headers, sums, nulls):
    """sums[:, g] = key bytes, value bytes, header entries, header value bytes of delivery g;
    nulls[f] += its null key and null value."""
    has_kv = keys.validity.shape[0] > 0
    has_vv = values.validity.shape[0] > 0
    has_h = headers.offsets.shape[0] > 0
    for g in range(cuda.grid(1), msgs.shape[0], cuda.gridsize(1)):
        i = msgs[g]
        sums[0, g] = keys.offsets[i + 1] - keys.offsets[i]
        sums[1, g] = values.offsets[i + 1] - values.offsets[i]
        ne = 0
        bb = 0
        if has_h:
            e0 = headers.offsets[i]
            e1 = headers.offsets[i + 1]
            ne = e1 - e0
            bb = headers.blob_offsets[e1] - headers.blob_offsets[e0]
        sums[2, g] = ne
        sums[3, g] = bb
        if (has_kv and not keys.validity[i]) or (has_vv and not values.validity[i]):
            f = range_of(msg_off, g)
            if has_kv and not keys.validity[i]:
                cuda.atomic.add(nulls, (f, 0), 1)
            if has_vv and not values.validity[i]:
                cuda.atomic.add(nulls, (f, 1), 1)


@cuda.jit(**KERNEL)
def _frame_totals(msg_off, pos, totals):
    """totals[q, f] = frame f's sum of quantity q (pos[q] are exclusive prefix sums)."""
    nf = msg_off.shape[0] - 1
    for f in range(cuda.grid(1), nf, cuda.gridsize(1)):
        for q in range(4):
            totals[q, f] = pos[q][msg_off[f + 1]] - pos[q][msg_off[f]]


@cuda.jit(**KERNEL)
def _write_headers(out, out64, flags, counts, sizes, col_start, frame_start, headers):
    """Frame f's fixed header and directory (CRC left 0), its column padding zeroed, the
    first entry of every offsets column and the header names (the CPU's _write_header)."""
    nf = frame_start.shape[0] - 1
    for f in range(cuda.grid(1), nf, cuda.gridsize(1)):
        base = frame_start[f]
        w = base // 8
        out64[w] = _MAGIC_WORD
        out64[w + 1] = F.VERSION | (flags[f] << 16) | (F.NCOLS << 32)
        out64[w + 2] = frame_start[f + 1] - base
        out64[w + 3] = counts[f, 0]
        out64[w + 4] = counts[f, 1]
        out64[w + 5] = counts[f, 2]
        for col in range(F.NCOLS):
            size = sizes[f, col]
            out64[w + 6 + col] = size
            start = base + col_start[f, col]
            for k in range(start + size, start + ((size + 7) & ~7)):
                out[k] = 0
        out64[(base + col_start[f, F.KEY_OFFSETS]) // 8] = 0
        out64[(base + col_start[f, F.VALUE_OFFSETS]) // 8] = 0
        if flags[f] & F.F_HEADERS:
            out64[(base + col_start[f, F.HDR_OFFSETS]) // 8] = 0
            out64[(base + col_start[f, F.HDR_BLOB_OFFSETS]) // 8] = 0
            no = (base + col_start[f, F.HDR_NAME_OFFSETS]) // 8
            for k in range(headers.name_offsets.shape[0]):
                out64[no + k] = headers.name_offsets[k]
            nd = base + col_start[f, F.HDR_NAME_DATA]
            for k in range(headers.name_data.shape[0]):
                out[nd + k] = headers.name_data[k]


@cuda.jit(**KERNEL)
def _write_deliveries(out, out32, out64, outf, msgs, msg_off, pos, flags, col_start, frame_start, keys,
                      values, headers, meta, team):
    """Delivery g (message msgs[g] in frame f, at position j): its offsets, validity, bytes,
    header entries and metadata, at the positions the prefix sums ``pos`` give.

    A team of ``team`` consecutive threads (a warp on hardware) writes each delivery: lane k
    copies bytes k, k + team, ..., so a team's loads and stores are contiguous; lane 0
    writes the per-message fields.
    """
    kpos = pos[0]
    vpos = pos[1]
    epos = pos[2]
    bpos = pos[3]
    t = cuda.grid(1)
    lane = t % team
    for g in range(t // team, msgs.shape[0], cuda.gridsize(1) // team):
        i = msgs[g]
        f = range_of(msg_off, g)
        g0 = msg_off[f]
        j = g - g0
        base = frame_start[f]
        fl = flags[f]
        # keys
        at = kpos[g] - kpos[g0]
        src = keys.offsets[i]
        ln = keys.offsets[i + 1] - src
        dst = base + col_start[f, F.KEY_DATA] + at
        for k in range(lane, ln, team):
            out[dst + k] = keys.data[src + k]
        if lane == 0:
            out64[(base + col_start[f, F.KEY_OFFSETS]) // 8 + 1 + j] = at + ln
            if fl & F.F_KEY_VALIDITY:
                out[base + col_start[f, F.KEY_VALIDITY] + j] = 1 if keys.validity[i] else 0
        # values
        at = vpos[g] - vpos[g0]
        src = values.offsets[i]
        ln = values.offsets[i + 1] - src
        dst = base + col_start[f, F.VALUE_DATA] + at
        for k in range(lane, ln, team):
            out[dst + k] = values.data[src + k]
        if lane == 0:
            out64[(base + col_start[f, F.VALUE_OFFSETS]) // 8 + 1 + j] = at + ln
            if fl & F.F_VALUE_VALIDITY:
                out[base + col_start[f, F.VALUE_VALIDITY] + j] = 1 if values.validity[i] else 0
        # headers: entry q goes to frame entry e + (q - e0); its value bytes end at the
        # frame's blob position plus the bytes of the message's entries up to q
        if fl & F.F_HEADERS:
            e = epos[g] - epos[g0]
            b = bpos[g] - bpos[g0]
            e0 = headers.offsets[i]
            e1 = headers.offsets[i + 1]
            src = headers.blob_offsets[e0]
            dst = base + col_start[f, F.HDR_BLOB_DATA] + b
            for k in range(lane, headers.blob_offsets[e1] - src, team):
                out[dst + k] = headers.blob_data[src + k]
            ids = (base + col_start[f, F.HDR_NAME_IDS]) // 4
            tys = base + col_start[f, F.HDR_TYPES]
            ints = (base + col_start[f, F.HDR_INTS]) // 8
            flts = (base + col_start[f, F.HDR_FLOATS]) // 8
            bo = (base + col_start[f, F.HDR_BLOB_OFFSETS]) // 8 + 1
            for q in range(e0 + lane, e1, team):
                x = e + q - e0
                out32[ids + x] = headers.name_ids[q]
                out[tys + x] = headers.types[q]
                out64[ints + x] = headers.ints[q]
                outf[flts + x] = headers.floats[q]
                out64[bo + x] = b + headers.blob_offsets[q + 1] - src
            if lane == 0:
                out64[(base + col_start[f, F.HDR_OFFSETS]) // 8 + 1 + j] = e + e1 - e0
        # metadata
        if lane == 0:
            if fl & F.F_PARTITION:
                out32[(base + col_start[f, F.PARTITION]) // 4 + j] = meta.partition[i]
            if fl & F.F_OFFSET:
                out64[(base + col_start[f, F.OFFSET]) // 8 + j] = meta.offset[i]
            if fl & F.F_TIMESTAMP:
                out64[(base + col_start[f, F.TIMESTAMP]) // 8 + j] = meta.timestamp[i]


def team_size() -> int:
    """Threads per delivery in :func:`_write_deliveries`: a warp (32), or the largest power of
    two up to 32 that divides the block size (test launches use smaller blocks)."""
    team = 32
    while team > 1 and int(L.THREADS_PER_BLOCK) % team:
        team //= 2
    return team


@cuda.jit(**KERNEL)
def _store_crcs(outu32, frame_start, crcs):
    for f in range(cuda.grid(1), crcs.shape[0], cuda.gridsize(1)):
        outu32[frame_start[f] // 4 + 1] = crcs[f]


@cuda.jit(**KERNEL)
def _id_range(ids, lo_hi):
    """lo_hi[0] = min(ids), lo_hi[1] = max(ids) (start them at +inf / -inf)."""
    for k in range(cuda.grid(1), ids.shape[0], cuda.gridsize(1)):
        cuda.atomic.min(lo_hi, 0, ids[k])
        cuda.atomic.max(lo_hi, 1, ids[k])


def id_range(ids) -> tuple:
    """(min, max) of a non-empty int32 device array."""
    lo_hi = cuda.to_device(np.array([np.iinfo(np.int32).max, np.iinfo(np.int32).min], np.int32))
    L.launch(_id_range, ids.shape[0])(ids, lo_hi)
    lo, hi = lo_hi.copy_to_host().tolist()
    return lo, hi


def encode(msg_off: np.ndarray, msgs, keys, values, headers, meta, source_flags: int, name_count: int,
           name_bytes: int):
    """Write frames on the device: frame f holds messages ``msgs[msg_off[f]:msg_off[f+1]]``.

    Args:
        msg_off: host int64 (frames + 1), rising from 0.
        msgs: device int64 message indices.
        keys, values, headers, meta: the batch as :mod:`fastroute.kernels.frame`'s Column,
            Headers and Meta tuples of device arrays (absent parts empty, as for the CPU).
        source_flags: F_HEADERS / F_PARTITION / F_OFFSET / F_TIMESTAMP of the batch.
        name_count, name_bytes: the header name table's size.

    Returns:
        (out, frame_start): the frames back to back in one device uint8 array, and their
        host int64 boundaries (frames + 1).
    """
    nf = msg_off.shape[0] - 1
    d = int(msg_off[-1])
    d_msg_off = cuda.to_device(np.ascontiguousarray(msg_off, np.int64))
    sums = cuda.device_array((4, d), np.int64)
    nulls = cuda.to_device(np.zeros((nf, 2), np.int64))
    L.launch(_delivery_sums, d)(msgs, d_msg_off, keys, values, headers, sums, nulls)
    pos = tuple(exclusive_scan(sums[q]) for q in range(4))
    totals = cuda.device_array((4, nf), np.int64)
    L.launch(_frame_totals, nf)(d_msg_off, pos, totals)
    t = totals.copy_to_host()
    nl = nulls.copy_to_host()
    frame_sums = np.empty((nf, 6), np.int64)
    frame_sums[:, F.S_KEY_BYTES] = t[0]
    frame_sums[:, F.S_VALUE_BYTES] = t[1]
    frame_sums[:, F.S_KEY_NULLS] = nl[:, 0]
    frame_sums[:, F.S_VALUE_NULLS] = nl[:, 1]
    frame_sums[:, F.S_ENTRIES] = t[2]
    frame_sums[:, F.S_BLOB_BYTES] = t[3]
    flags, counts, sizes, col_start, frame_start, _ = F.frame_layout(
        np.ascontiguousarray(msg_off, np.int64), np.arange(nf, dtype=np.int64), frame_sums, source_flags,
        name_count, name_bytes)
    total = int(frame_start[-1])
    out = cuda.device_array(total, np.uint8)
    if nf == 0:
        return out, frame_start
    out32, out64, outf = out.view(np.int32), out.view(np.int64), out.view(np.float64)
    d_flags, d_counts, d_sizes, d_col, d_start = (cuda.to_device(a) for a in (flags, counts, sizes, col_start,
                                                                                frame_start))
    L.launch(_write_headers, nf)(out, out64, d_flags, d_counts, d_sizes, d_col, d_start, headers)
    team = team_size()
    L.launch(_write_deliveries, d * team)(out, out32, out64, outf, msgs, d_msg_off, pos, d_flags, d_col,
                                          d_start, keys, values, headers, meta, np.int64(team))
    crcs = crc32c_ranges(out, out.view(np.uint64), frame_start[:-1] + 8, frame_start[1:])
    L.launch(_store_crcs, nf)(out.view(np.uint32), d_start, crcs)
    return out, frame_start


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90, with the tuple types codec.py passes; built on first use.
    if name == "PTX_CHECKS":
        from numba import typeof
        from numba import types as T

        def z(dtype):
            return np.zeros(1, dtype)

        col = typeof(F.Column(z(np.int64), z(np.uint8), z(np.bool_)))
        hdr = typeof(F.Headers(z(np.int64), z(np.int32), z(np.uint8), z(np.int64), z(np.float64), z(np.int64),
                               z(np.uint8), z(np.int64), z(np.uint8)))
        meta = typeof(F.Meta(z(np.int32), z(np.int64), z(np.int64)))
        i64, i64x2 = T.int64[::1], T.int64[:, ::1]
        pos = T.UniTuple(i64, 4)
        return [(_delivery_sums, (i64, i64, col, col, hdr, i64x2, i64x2)),
                (_frame_totals, (i64, pos, i64x2)),
                (_write_headers, (T.uint8[::1], i64, i64, i64x2, i64x2, i64x2, i64, hdr)),
                (_write_deliveries, (T.uint8[::1], T.int32[::1], i64, T.float64[::1], i64, i64, pos, i64, i64x2,
                                     i64, col, col, hdr, meta, T.int64)),
                (_store_crcs, (T.uint32[::1], i64, T.uint32[::1])),
                (_id_range, (T.int32[::1], T.int32[::1]))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
