"""Headers-exchange matching on a CUDA device: one thread per message.

The device evaluates the same :class:`~fastroute.kernels.headers.HeadersTables` as the CPU
(:func:`fastroute.kernels.headers.match_chunk`): per header name a binding uses, the
postings listed under the name and under the hash of the message's value; each posting's
rule is evaluated (an ``any`` rule needs the posted check, an ``all`` rule every check), with
the CPU's own equality functions (:func:`~fastroute.kernels.headers.value_key`,
``_scalar_holds``, ``_double_bits_eq``, which take scalars only and compile for both
targets). What the CPU keeps in per-thread tables sized by the router (the last entry of
each name, stamps of rules already matched, a destination bitmap) a thread cannot hold, so:

* a repeated name keeps its last value by looking for a later entry of the same name in
  the message (O(entries²) per message, cheap for the few headers messages carry);
* a rule reached twice is evaluated twice (same answer; destinations are de-duplicated);
* destinations collect in a sorted local array of at most ``cap`` ids; a message with more
  is matched again with a bitmap row in global scratch (the *wide* pass), as in
  :mod:`fastroute.kernels.cuda_topic`, whose set helpers this module shares.

Two passes (count, prefix sum, fill); the count pass keeps each message's ids in the stash
of :func:`~fastroute.kernels.cuda_topic.stash_width` ids per message, so the fill pass only
copies them (a message with more is routed again). The per-message body :func:`_route_message` is plain
Python compiled for the CPU (:data:`route_message_cpu`, for tests) and for the device.
Nothing here validates input.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, int32, njit

from . import _codes as C
from . import cuda_launch as L
from ._config import SERIAL
from .cuda_launch import KERNEL
from .cuda_scan import exclusive_scan, last
from .cuda_topic import (_DEVICE_HELPERS, MAX_DEST, OK, STASHED, WIDE, _add, _row_clear, _row_count, _row_write,
                         _stash, _stash_copy, _stash_put, _wide_items, _wide_rows, for_device, stash_width)
from .headers import _FNV_OFFSET, _FNV_PRIME, _double_bits_eq, _scalar_holds, value_key


def _last_entry(h_offsets, name_map, name_ids, i, nid):
    """Message i's last header entry whose router name id is nid, or -1."""
    j = h_offsets[i + 1] - 1
    while j >= h_offsets[i]:
        if name_map[name_ids[j]] == nid:
            return j
        j -= 1
    return -1


_last = njit(**SERIAL)(_last_entry)


def _route_message(cols, tab, i, dest, cap, bm, r, wide):
    """Message i's destinations into the set of :func:`fastroute.kernels.cuda_topic._add_py`;
    return their count (not counted when ``wide``) or -1 when ``dest`` is full.

    ``cols``: the batch's HeaderColumns, ``tab``: the router's HeadersTables.
    """
    h_offsets = cols.offsets
    name_map = cols.name_map
    name_ids = cols.name_ids
    h_types = cols.types
    h_ints = cols.ints
    h_floats = cols.floats
    h_boff = cols.blob_offsets
    h_blob = cols.blob_data
    compat = tab.compat
    c_name = tab.check_name
    c_type = tab.check_type
    c_int = tab.check_int
    c_float = tab.check_float
    c_boff = tab.check_blob_offsets
    c_blob = tab.check_blob_data
    c_foff = tab.check_fpos_offsets
    c_fpos = tab.check_fpos
    c_rule = tab.check_rule
    name_hashed = tab.name_hashed
    name_post = tab.name_post_offsets
    slot_key = tab.slot_key
    slot_bucket = tab.slot_bucket
    mask = slot_key.shape[0] - 1
    bucket_off = tab.bucket_offsets
    postings = tab.postings
    rule_all = tab.rule_all
    rule_coff = tab.rule_check_offsets
    rule_doff = tab.rule_dest_offsets
    rule_dests = tab.rule_dests
    always = tab.always
    nd = 0
    for a in range(always.shape[0]):
        nd = _add(dest, nd, cap, bm, r, wide, always[a])
        if nd < 0:
            return -1
    e0 = h_offsets[i]
    e1 = h_offsets[i + 1]
    for j in range(e0, e1):
        nid = name_map[name_ids[j]]
        if nid < 0:
            continue
        # a repeated name keeps its last value: only that entry opens the name's postings
        later = False
        for j2 in range(j + 1, e1):
            if name_map[name_ids[j2]] == nid:
                later = True
                break
        if later:
            continue
        for phase in range(2):
            q0 = 0
            q1 = 0
            if phase == 0:
                q0 = name_post[nid]
                q1 = name_post[nid + 1]
            elif name_hashed[nid]:
                bh = _FNV_OFFSET
                if h_types[j] >= C.STR:
                    for b in range(h_boff[j], h_boff[j + 1]):
                        bh ^= np.int64(h_blob[b])
                        bh *= _FNV_PRIME
                ok, key = value_key(nid, h_types[j], h_ints[j], h_floats[j], bh, compat)
                if ok:
                    sl = key & mask
                    while slot_bucket[sl] >= 0 and slot_key[sl] != key:
                        sl = (sl + 1) & mask
                    bk = slot_bucket[sl]
                    if bk >= 0:
                        q0 = bucket_off[bk]
                        q1 = bucket_off[bk + 1]
            for q in range(q0, q1):
                k = postings[q]
                rl = c_rule[k]
                if c_name[k] != nid:
                    continue
                k0 = k
                k1 = k + 1
                if rule_all[rl]:
                    k0 = rule_coff[rl]
                    k1 = rule_coff[rl + 1]
                held = True
                for ck in range(k0, k1):
                    e = _last(h_offsets, name_map, name_ids, i, c_name[ck])
                    if e < 0:
                        held = False
                        break
                    bt = c_type[ck]
                    ht = h_types[e]
                    ok = True
                    if bt < C.STR:
                        ok = _scalar_holds(bt, c_int[ck], c_float[ck], ht, h_ints[e], h_floats[e], compat)
                    else:
                        # str equals bytes; a list or dict compares its encoding, in which
                        # equal values differ only inside float payloads (listed per check)
                        if bt <= C.BYTES:
                            ok = ht == C.STR or ht == C.BYTES
                        else:
                            ok = ht == bt
                        a0 = c_boff[ck]
                        nb = c_boff[ck + 1] - a0
                        b0 = h_boff[e]
                        if h_boff[e + 1] - b0 != nb:
                            ok = False
                        f = c_foff[ck]
                        f1 = c_foff[ck + 1]
                        nxt = c_fpos[f] if f < f1 else nb
                        x = 0
                        while ok and x < nb:
                            if x == nxt:
                                wa = np.int64(0)
                                wb = np.int64(0)
                                for q8 in range(8):
                                    wa |= np.int64(c_blob[a0 + x + q8]) << (8 * q8)
                                    wb |= np.int64(h_blob[b0 + x + q8]) << (8 * q8)
                                ok = _double_bits_eq(wa, wb)
                                x += 8
                                f += 1
                                nxt = c_fpos[f] if f < f1 else nb
                            else:
                                ok = c_blob[a0 + x] == h_blob[b0 + x]
                                x += 1
                    if not ok:
                        held = False
                        break
                if not held:
                    continue
                for rd in range(rule_doff[rl], rule_doff[rl + 1]):
                    nd = _add(dest, nd, cap, bm, r, wide, rule_dests[rd])
                    if nd < 0:
                        return -1
    return nd


#: CPU build of :func:`_route_message`, for tests.
route_message_cpu = njit(**SERIAL)(_route_message)

_route_dev = for_device(_route_message, _last=cuda.jit(device=True)(_last_entry), **_DEVICE_HELPERS)


@cuda.jit(**KERNEL)
def _count(cols, tab, items, wide, cap, bm, counts, status, tally, stash):
    """Pass 1: per message, its destination count and status; an OK message whose ids fit
    ``stash`` (ids x messages) is STASHED with its ids in ``stash[:, i]``."""
    dest = cuda.local.array(MAX_DEST, int32)
    m = items.shape[0] if wide else cols.offsets.shape[0] - 1
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        if wide:
            _row_clear(bm, j)
        nd = _route_dev(cols, tab, i, dest, cap, bm, j, wide)
        if wide:
            nd = _row_count(bm, j)
        if nd < 0:
            cuda.atomic.add(tally, WIDE, 1)
            status[i] = WIDE
            nd = 0
        elif not wide:
            status[i] = STASHED if _stash_put(stash, i, dest, nd) else OK
        counts[i] = nd


@cuda.jit(**KERNEL)
def _fill(cols, tab, items, wide, cap, bm, status, offsets, out, stash):
    """Pass 2: STASHED messages copy their ids, OK ones are routed again; wide pass: items[j],
    status WIDE, routed again with bitmap row j."""
    dest = cuda.local.array(MAX_DEST, int32)
    m = items.shape[0] if wide else cols.offsets.shape[0] - 1
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        s = status[i]
        if not wide and s == STASHED:
            _stash_copy(stash, i, out, offsets)
            continue
        if s != (WIDE if wide else OK):
            continue
        if wide:
            _row_clear(bm, j)
        nd = _route_dev(cols, tab, i, dest, cap, bm, j, wide)
        at = offsets[i]
        if wide:
            _row_write(bm, j, out, at)
        else:
            for k in range(nd):
                out[at + k] = dest[k]


@cuda.jit(**KERNEL)
def _constant_fill(always, offsets, out):
    a = always.shape[0]
    for i in range(cuda.grid(1), offsets.shape[0], cuda.gridsize(1)):
        offsets[i] = i * a
        if i < offsets.shape[0] - 1:
            for k in range(a):
                out[i * a + k] = always[k]


def constant(n: int, always):
    """Device routes of n messages that each go to the destinations ``always`` (device)."""
    offsets = cuda.device_array(n + 1, np.int64)
    out = cuda.device_array(n * always.shape[0], np.int32)
    L.launch(_constant_fill, n + 1)(always, offsets, out)
    return offsets, out


def route(cols, tab, cap: int = MAX_DEST):
    """Route every message of a device HeaderColumns ``cols`` through a device HeadersTables
    ``tab``; return device (offsets[n+1], destination ids), each message's ids ascending.

    ``cap`` (at most :data:`~fastroute.kernels.cuda_topic.MAX_DEST`) is the local set size;
    tests lower it to exercise the wide pass.
    """
    n = cols.offsets.shape[0] - 1
    counts = cuda.device_array(n, np.int64)
    status = cuda.device_array(n, np.uint8)
    tally = cuda.to_device(np.zeros(3, np.int64))
    no_items = cuda.device_array(0, np.int64)
    dummy_bm = cuda.device_array((1, 1), np.uint64)
    stash = _stash(n, stash_width(n, cap))
    no_stash = _stash(0, 0)
    L.launch(_count, n)(cols, tab, no_items, False, cap, dummy_bm, counts, status, tally, stash)
    wide = int(tally.copy_to_host()[WIDE])
    chunks = []
    bm = dummy_bm
    if wide:
        items = _wide_items(status, wide)
        words, per = _wide_rows(tab.n_dest)
        bm = cuda.device_array((min(per, items.shape[0]), words), np.uint64)
        for a in range(0, items.shape[0], per):
            chunk = cuda.to_device(items[a:a + per])
            chunks.append(chunk)
            L.launch(_count, chunk.shape[0])(cols, tab, chunk, True, cap, bm, counts, status, tally, no_stash)
    offsets = exclusive_scan(counts)
    out = cuda.device_array(last(offsets), np.int32)
    L.launch(_fill, n)(cols, tab, no_items, False, cap, dummy_bm, status, offsets, out, stash)
    del stash  # the wide pass may want the memory
    for chunk in chunks:
        L.launch(_fill, chunk.shape[0])(cols, tab, chunk, True, cap, bm, status, offsets, out, no_stash)
    return offsets, out


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90; the table types come from a small router, so they are built on first use.
    if name == "PTX_CHECKS":
        from numba import typeof
        from numba import types as T

        from .._headers_router import HeadersRouter
        from .headers import HeaderColumns

        tables = HeadersRouter([({"a": 1, "b": [1.0]}, "q"), ({"x-match": "any", "c": "x"}, "r"), ({}, "s")])._tables
        tab = typeof(tables._replace(**{k: np.array(v) for k, v in tables._asdict().items()
                                        if isinstance(v, np.ndarray)}))

        def z(dtype):
            return np.zeros(1, dtype)

        cols = typeof(HeaderColumns(z(np.int64), z(np.int32), z(np.int32), z(np.uint8), z(np.int64), z(np.float64),
                                    z(np.int64), z(np.uint8)))
        i64, bm, stash = T.int64[::1], T.uint64[:, ::1], T.int32[:, ::1]
        return [(_count, (cols, tab, i64, T.boolean, T.int64, bm, i64, T.uint8[::1], i64, stash)),
                (_fill, (cols, tab, i64, T.boolean, T.int64, bm, T.uint8[::1], i64, T.int32[::1], stash)),
                (_constant_fill, (T.int32[::1], i64, T.int32[::1]))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
