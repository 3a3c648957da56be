"""The alternate splice on the GPU: device twins of ``group.splice_routes``, of the
``Routes.unroutable`` rows and of the ``gather.py`` row gathers that ``MessageBatch.take`` uses.

A router with ``alternate=`` finds the messages that route nowhere, routes just those through
the alternate, and splices the answers back into its own routes. On a device batch every step
stays on the device:

1. :func:`unroutable_rows`: flag the empty routes, then compact the flags (count, exclusive
   scan, scatter; ``cuda_scan.flagged_indices``);
2. :func:`gather_binary`, :func:`gather_ranges`, :func:`take`: the rows' binary columns,
   header entries and fixed-width arrays, each a two-pass (lengths, scan, copy) gather;
3. :func:`splice_routes`: per message, the length of its old or new route, an exclusive scan,
   then each message writes its ids.

Copies run one thread per output item, finding its row with the binary search
``cuda_scan.range_of``, so one long row does not leave the rest of its warp waiting. Every
driver reads one scalar (the total, to size its output) back from the device and nothing else.
Nothing here validates input: :class:`fastroute.Router` passes rows it computed itself.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch as L
from .cuda_launch import DEVICE, KERNEL
from .cuda_scan import exclusive_scan, flagged_indices, last, range_of


@cuda.jit(**KERNEL)
def _empty_flags(offsets, flags):
    n = offsets.shape[0] - 1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        flags[i] = np.uint8(1) if offsets[i + 1] == offsets[i] else np.uint8(0)


@cuda.jit(**KERNEL)
def _row_lengths(offsets, rows, lengths):
    for r in range(cuda.grid(1), rows.shape[0], cuda.gridsize(1)):
        j = rows[r]
        lengths[r] = offsets[j + 1] - offsets[j]


@cuda.jit(**KERNEL)
def _copy_rows(src, offsets, rows, out_offsets, out):
    for b in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        r = range_of(out_offsets, b)
        out[b] = src[offsets[rows[r]] + (b - out_offsets[r])]


@cuda.jit(**KERNEL)
def _row_positions(offsets, rows, out_offsets, pos):
    for b in range(cuda.grid(1), pos.shape[0], cuda.gridsize(1)):
        r = range_of(out_offsets, b)
        pos[b] = offsets[rows[r]] + (b - out_offsets[r])


@cuda.jit(**KERNEL)
def _take(src, rows, out):
    for r in range(cuda.grid(1), rows.shape[0], cuda.gridsize(1)):
        out[r] = src[rows[r]]


@cuda.jit(**DEVICE)
def _slot_of(rows, i):
    """r with rows[r] == i in the ascending ``rows``, or -1 (binary search)."""
    lo = 0
    hi = rows.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if rows[mid] < i:
            lo = mid + 1
        else:
            hi = mid
    if lo < rows.shape[0] and rows[lo] == i:
        return lo
    return -1


@cuda.jit(**KERNEL)
def _splice_counts(offsets, rows, sub_offsets, counts):
    n = offsets.shape[0] - 1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        r = _slot_of(rows, i)
        if r >= 0:
            counts[i] = sub_offsets[r + 1] - sub_offsets[r]
        else:
            counts[i] = offsets[i + 1] - offsets[i]


@cuda.jit(**KERNEL)
def _splice_fill(offsets, destinations, rows, sub_offsets, sub_destinations, id_map, new_offsets, out):
    n = offsets.shape[0] - 1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        dst = new_offsets[i]
        r = _slot_of(rows, i)
        if r < 0:
            src = offsets[i]
            for k in range(new_offsets[i + 1] - dst):
                out[dst + k] = destinations[src + k]
        else:
            # mapping breaks the sub-route's order; insertion on arrival restores it. The map is
            # one-to-one, so the ids stay distinct and nothing needs dropping (as on the CPU).
            m = 0
            for k in range(sub_offsets[r], sub_offsets[r + 1]):
                v = id_map[sub_destinations[k]]
                j = dst + m
                while j > dst and out[j - 1] > v:
                    out[j] = out[j - 1]
                    j -= 1
                out[j] = v
                m += 1


def unroutable_rows(offsets):
    """Ascending int64 device array of the messages whose route is empty
    (``offsets[i+1] == offsets[i]``), from the int64 device ``offsets`` of CSR routes. O(n)."""
    n = offsets.shape[0] - 1
    flags = cuda.device_array(n, np.uint8)
    L.launch(_empty_flags, n)(offsets, flags)
    return flagged_indices(flags)


def gather_ranges(offsets, rows):
    """The device twin of ``gather.gather_ranges``: (new_offsets, source_positions), int64.

    ``offsets`` (int64, n+1) give row j the items ``offsets[j]:offsets[j+1]``; ``rows`` is an
    int64 device array of in-range row numbers, in any order, repeats allowed.
    """
    k = rows.shape[0]
    lengths = cuda.device_array(k, np.int64)
    L.launch(_row_lengths, k)(offsets, rows, lengths)
    out_offsets = exclusive_scan(lengths)
    pos = cuda.device_array(last(out_offsets), np.int64)
    L.launch(_row_positions, pos.shape[0])(offsets, rows, out_offsets, pos)
    return out_offsets, pos


def gather_binary(offsets, data, rows):
    """The device twin of ``gather.gather_binary``: (offsets from 0, data) of ``rows``, in order.

    ``offsets`` int64 (n+1, may start past 0), ``data`` uint8, ``rows`` as for
    :func:`gather_ranges`. O(rows + bytes copied).
    """
    k = rows.shape[0]
    lengths = cuda.device_array(k, np.int64)
    L.launch(_row_lengths, k)(offsets, rows, lengths)
    out_offsets = exclusive_scan(lengths)
    out = cuda.device_array(last(out_offsets), data.dtype)
    L.launch(_copy_rows, out.shape[0])(data, offsets, rows, out_offsets, out)
    return out_offsets, out


def take(src, rows):
    """``src[rows]`` of a 1-D device array (any dtype) and an int64 device array of in-range rows."""
    out = cuda.device_array(rows.shape[0], src.dtype)
    L.launch(_take, rows.shape[0])(src, rows, out)
    return out


def splice_routes(offsets, destinations, rows, sub_offsets, sub_destinations, id_map):
    """The device twin of ``group.splice_routes``: message ``rows[r]``'s route becomes sub-route r,
    its ids mapped through ``id_map`` and sorted; the other messages keep theirs.

    Device arrays: ``offsets`` int64 (n+1) and ``destinations`` int32 of the routes;
    ``rows`` int64, ascending, distinct, below n; ``sub_offsets`` int64 (len(rows)+1) and
    ``sub_destinations`` int32 of the sub-routes, each distinct within its message;
    ``id_map`` int32, one-to-one. Returns (new_offsets int64, new_destinations int32) with
    ascending, distinct ids per message, exactly as the CPU kernel. O(n log(rows) + deliveries
    + the sum over sub-routes of length squared): sub-routes are sorted by insertion, which
    suits the short routes an alternate gives and stays correct for any length.
    """
    n = offsets.shape[0] - 1
    counts = cuda.device_array(n, np.int64)
    L.launch(_splice_counts, n)(offsets, rows, sub_offsets, counts)
    new_offsets = exclusive_scan(counts)
    out = cuda.device_array(last(new_offsets), np.int32)
    L.launch(_splice_fill, n)(offsets, destinations, rows, sub_offsets, sub_destinations, id_map, new_offsets,
                              out)
    return new_offsets, out


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90, with the types the drivers above are called with; built on first use.
    if name == "PTX_CHECKS":
        from numba import types as T

        i64, i32, u8 = T.int64[::1], T.int32[::1], T.uint8[::1]
        takes = [(_take, (arr, i64, arr)) for arr in (T.boolean[::1], u8, i32, i64, T.float64[::1])]
        return [(_empty_flags, (i64, u8)),
                (_row_lengths, (i64, i64, i64)),
                (_copy_rows, (u8, i64, i64, i64, u8)),
                (_row_positions, (i64, i64, i64, i64)),
                *takes,
                (_splice_counts, (i64, i64, i64, i64)),
                (_splice_fill, (i64, i32, i64, i64, i32, i32, i64, i32))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
