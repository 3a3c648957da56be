"""Headers-exchange matching: which bindings each message's header table satisfies.

A router compiles its bindings into :class:`HeadersTables` (see
``fastroute/_headers_router.py``): every non-ignored binding argument is a *check*
(a router name id, a type code and a value); checks belong to *rules* (one per distinct
argument set, ``all`` or ``any``), and rules to destinations. Each check that can start a
match is *posted*: under a hash key of (name, value) when its value can be hashed, else in
a per-name list. An ``any`` rule posts all its checks; an ``all`` rule posts one (its
anchor) and checks the others only when the anchor holds. So a message looks at the
postings of the header values it carries, not at every binding.

Per message (the body of :func:`match_chunk`): record the last entry of each header name,
look up each present name's postings, evaluate them, and write the destination ids of the
matched rules, ascending and unique. :func:`route_serial` and :func:`route_parallel` run it
over a batch and return CSR routes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from . import _codes as C
from ._config import INLINE, PARALLEL, SERIAL

#: Value compat modes (``HeadersTables.compat``): RabbitMQ >= 3.13 compares typed values,
#: <= 3.12 compares integers and floats numerically.
COMPAT_313 = 0
COMPAT_312 = 1

# Hash classes: values of one class can be equal, values of different classes never are.
_K_BOOL = 1
_K_INT = 2
_K_FLOAT = 3
_K_BYTES = 4
_K_LIST = 6
_K_DICT = 7

_TWO63 = 9.223372036854775808e18
_FNV_OFFSET = -3750763034362895579  # 0xcbf29ce484222325 as int64
_FNV_PRIME = 1099511628211
_MIX1 = -4658895280553007687  # 0xbf58476d1ce4e5b9 as int64
_MIX2 = -7723592293110705685  # 0x94d049bb133111eb as int64
_DEBRUIJN = 0x03F79D71B4CA8B09
# _DEBRUIJN_POS[((b * _DEBRUIJN) >> 58) & 63] = k for b = 1 << k: the index of a word's lowest bit
_DEBRUIJN_POS = np.zeros(64, np.int64)
for _k in range(64):
    _DEBRUIJN_POS[(((1 << _k) * _DEBRUIJN) & 0xFFFFFFFFFFFFFFFF) >> 58] = _k
del _k


class HeaderColumns(NamedTuple):
    """A batch's HeaderTable columns plus ``name_map`` (table name id -> router name id, -1
    for names no binding uses)."""

    offsets: np.ndarray
    name_map: np.ndarray
    name_ids: np.ndarray
    types: np.ndarray
    ints: np.ndarray
    floats: np.ndarray
    blob_offsets: np.ndarray
    blob_data: np.ndarray


class Scratch(NamedTuple):
    """Per-thread working memory: row c belongs to chunk c; :func:`make_scratch` zeroes it.

    ``name_stamp``/``name_entry``/``present`` have a column per router name, ``rule_stamp``
    per rule, ``out`` per destination and ``dest_bits`` a bit per destination (each padded
    so rows do not share cache lines); ``dest_bits`` is back to zero after every message.
    The arrays travel inside this tuple, never on their own: numba refcounts an array each
    time one is handed to a function, and in a per-message loop that costs more than the
    matching.
    """

    name_stamp: np.ndarray   # int64[rows, >= names]
    name_entry: np.ndarray   # int64[rows, >= names]
    present: np.ndarray      # int32[rows, >= names]
    rule_stamp: np.ndarray   # int64[rows, >= rules]
    dest_bits: np.ndarray    # int64[rows, >= destinations / 64]
    out: np.ndarray          # int32[rows, >= destinations]


def make_scratch(tab, rows: int) -> Scratch:
    """Zeroed scratch for ``rows`` chunks of a router compiled into ``tab``."""
    def pad(k):
        return (k + 16 + 15) // 16 * 16

    m, r, d, w = pad(tab.n_names), pad(tab.rule_all.shape[0]), pad(tab.n_dest), pad((tab.n_dest + 63) // 64)
    return Scratch(np.zeros((rows, m), np.int64), np.zeros((rows, m), np.int64), np.zeros((rows, m), np.int32),
                   np.zeros((rows, r), np.int64), np.zeros((rows, w), np.int64), np.zeros((rows, d), np.int32))


class HeadersTables(NamedTuple):
    """A compiled headers router. k checks, r rules, m router names, d destinations."""

    compat: int                      # COMPAT_313 or COMPAT_312
    n_names: int
    n_dest: int
    check_name: np.ndarray           # int32[k] router name id
    check_type: np.ndarray           # uint8[k] type code (kernels/_codes.py)
    check_int: np.ndarray            # int64[k] bool / int value
    check_float: np.ndarray          # float64[k]
    check_blob_offsets: np.ndarray   # int64[k+1] into check_blob_data: str/bytes, nested encoding
    check_blob_data: np.ndarray      # uint8
    check_fpos_offsets: np.ndarray   # int64[k+1] into check_fpos
    check_fpos: np.ndarray           # int64: offsets of float payloads inside a nested blob
    check_rule: np.ndarray           # int32[k]
    name_hashed: np.ndarray          # uint8[m]: 1 when some posting under this name is hashed
    name_post_offsets: np.ndarray    # int64[m+1] into postings: unhashable postings per name
    slot_key: np.ndarray             # int64[cap], cap a power of two
    slot_bucket: np.ndarray          # int32[cap], -1 = empty slot
    bucket_offsets: np.ndarray       # int64[b+1] into postings: hashed postings per key
    postings: np.ndarray             # int32 check ids
    rule_all: np.ndarray             # uint8[r]: 1 = all, 0 = any
    rule_check_offsets: np.ndarray   # int64[r+1]: rule r's checks are ids [off[r], off[r+1])
    rule_dest_offsets: np.ndarray    # int64[r+1] into rule_dests
    rule_dests: np.ndarray           # int32, ascending unique per rule
    always: np.ndarray               # int32 ascending: destinations every message reaches


# --------------------------------------------------------------------------- hashing

@njit(**INLINE)
def _mix(x):
    # splitmix64's finalizer; int64 arithmetic wraps, which is all a hash needs
    x ^= x >> 30
    x *= _MIX1
    x ^= x >> 27
    x *= _MIX2
    x ^= x >> 31
    return x


@njit(**INLINE)
def _float_payload(f):
    # frexp maps -0.0 and 0.0 alike, as equality does; callers have excluded NaN
    if f == np.inf:
        return np.int64(0x7FF0000000000000)
    if f == -np.inf:
        return np.int64(-0x7FF0000000000000)
    m, e = math.frexp(f)
    return _mix(np.int64(m * 9007199254740992.0)) ^ np.int64(e)


@njit(**INLINE)
def _integral(f):
    """True when float f equals some int64 exactly."""
    return f >= -_TWO63 and f < _TWO63 and math.floor(f) == f


@njit(**INLINE)
def value_key(name, t, iv, fv, blob_hash, compat):
    """Hash key of (name, value) such that equal values get equal keys.

    ``blob_hash`` is the FNV-1a hash of the value's bytes (str, bytes, list, dict). Returns
    (hashable, key): None is never hashable (it equals nothing; presence is tested apart),
    nor is NaN (it equals nothing).
    """
    if t == C.NONE:
        return False, np.int64(0)
    if t == C.BOOL:
        cls, payload = _K_BOOL, iv
    elif t == C.INT:
        cls, payload = _K_INT, iv
    elif t == C.FLOAT:
        if fv != fv:
            return False, np.int64(0)
        if compat == COMPAT_312 and _integral(fv):
            cls, payload = _K_INT, np.int64(fv)
        else:
            cls, payload = _K_FLOAT, _float_payload(fv)
    elif t == C.STR or t == C.BYTES:
        cls, payload = _K_BYTES, blob_hash
    elif t == C.LIST:
        cls, payload = _K_LIST, blob_hash
    else:
        cls, payload = _K_DICT, blob_hash
    return True, _mix(_mix(np.int64(name) * 8 + cls) ^ payload)


@njit(**SERIAL)
def check_keys(check_name, check_type, check_int, check_float, check_blob_offsets,
               check_blob_data, check_fpos_offsets, compat):
    """Per check, (hashable, key). A nested value holding floats is not hashed: -0.0 equals
    0.0 there too, which byte hashing would miss."""
    k = check_name.shape[0]
    hashable = np.zeros(k, np.bool_)
    keys = np.zeros(k, np.int64)
    for c in range(k):
        if check_fpos_offsets[c + 1] > check_fpos_offsets[c]:
            continue
        h = _FNV_OFFSET
        for p in range(check_blob_offsets[c], check_blob_offsets[c + 1]):
            h ^= np.int64(check_blob_data[p])
            h *= _FNV_PRIME
        ok, key = value_key(check_name[c], check_type[c], check_int[c], check_float[c], h, compat)
        hashable[c] = ok
        keys[c] = key
    return hashable, keys


@njit(**SERIAL)
def build_slots(bucket_keys, cap):
    """Open-addressing table (linear probing) from distinct keys to their bucket index."""
    slot_key = np.zeros(cap, np.int64)
    slot_bucket = np.full(cap, -1, np.int32)
    mask = cap - 1
    for b in range(bucket_keys.shape[0]):
        s = bucket_keys[b] & mask
        while slot_bucket[s] >= 0:
            s = (s + 1) & mask
        slot_key[s] = bucket_keys[b]
        slot_bucket[s] = b
    return slot_key, slot_bucket


# --------------------------------------------------------------------------- equality

@njit(**INLINE)
def _int_eq_float(i, f):
    # exact, as Erlang's == between an integer and a float (and Python's) is
    return _integral(f) and np.int64(f) == i


@njit(**INLINE)
def _double_bits_eq(a, b):
    """Equality of two doubles given by their IEEE bits: -0.0 equals 0.0, NaN nothing."""
    if a == b:
        # NaN: exponent all ones and a non-zero mantissa
        return (a & 0x7FF0000000000000) != 0x7FF0000000000000 or (a & 0x000FFFFFFFFFFFFF) == 0
    return (a & 0x7FFFFFFFFFFFFFFF) == 0 and (b & 0x7FFFFFFFFFFFFFFF) == 0


@njit(**INLINE)
def _scalar_holds(bt, ci, cf, ht, hi, hf, compat):
    """Check (type bt, int ci, float cf) against a header of type ht (int hi, float hf),
    for every type but str/bytes/list/dict. A void check is a presence test."""
    if bt == C.NONE:
        return True
    if bt == C.BOOL:
        return ht == C.BOOL and hi == ci
    if bt == C.INT:
        if ht == C.INT:
            return hi == ci
        return ht == C.FLOAT and compat == COMPAT_312 and _int_eq_float(ci, hf)
    # bt == C.FLOAT
    if ht == C.FLOAT:
        return hf == cf
    return ht == C.INT and compat == COMPAT_312 and _int_eq_float(hi, cf)


# --------------------------------------------------------------------------- drivers

@njit(**SERIAL)
def match_chunk(cols, tab, scr, c, lo, hi, base, counts, buf, pos, end):
    """Match messages lo..hi-1 with scratch row c; return the first one not written.

    Message i's destination ids (ascending, unique) go to ``buf`` from ``pos`` on, in
    message order, while they fit before ``end``; its count goes to ``counts[i]`` in any
    case. Stamps are ``base + i + 1``: a second pass over one row needs a higher base.

    Per message: note the last entry of each header name a binding uses; for each such
    name, read the postings listed under the name and those under the hash of its value;
    evaluate each posting's rule (an ``any`` rule needs the posted check, an ``all`` rule
    every check) and collect the destinations of the rules that hold.

    The message body is written out here over arrays bound once per chunk, not as a
    function per message: numba increfs every array of a tuple wherever the tuple is
    handed on (inlined or not), and with a per-message function (and helpers taking the
    tuples) one thread spent 1.1 µs per message instead of 0.15 µs at 10 bindings, nearly
    all of it in refcount atomics. The reusable pieces (:func:`value_key`,
    :func:`_scalar_holds`, :func:`_double_bits_eq`) take scalars only, so a CUDA twin can
    share them.
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
    name_stamp = scr.name_stamp[c]
    name_entry = scr.name_entry[c]
    present = scr.present[c]
    rule_stamp = scr.rule_stamp[c]
    dest_bits = scr.dest_bits[c]
    out = scr.out[c]
    stop = hi
    for i in range(lo, hi):
        s = base + i + 1
        n_present = 0
        for j in range(h_offsets[i], h_offsets[i + 1]):
            nid = name_map[name_ids[j]]
            if nid < 0:
                continue
            if name_stamp[nid] != s:
                name_stamp[nid] = s
                present[n_present] = nid
                n_present += 1
            name_entry[nid] = j  # a repeated name keeps its last value
        # destinations go to out (in the order found) and to a bitmap that dedupes them
        count = 0
        wlo = dest_bits.shape[0]
        whi = -1
        for a in range(always.shape[0]):
            d = always[a]
            dest_bits[d >> 6] |= np.int64(1) << (d & 63)
            out[count] = d
            count += 1
        if count:
            wlo = always[0] >> 6
            whi = always[count - 1] >> 6
        for p in range(n_present):
            nid = present[p]
            j = name_entry[nid]
            for phase in range(2):
                if phase == 0:
                    q0 = name_post[nid]
                    q1 = name_post[nid + 1]
                else:
                    q0 = q1 = 0
                    if name_hashed[nid]:
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
                    r = c_rule[k]
                    if c_name[k] != nid or rule_stamp[r] == s:
                        continue
                    if rule_all[r]:
                        k0 = rule_coff[r]
                        k1 = rule_coff[r + 1]
                    else:
                        k0 = k
                        k1 = k + 1
                    held = True
                    for ck in range(k0, k1):
                        cn = c_name[ck]
                        if name_stamp[cn] != s:
                            held = False
                            break
                        e = name_entry[cn]
                        bt = c_type[ck]
                        ht = h_types[e]
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
                    rule_stamp[r] = s
                    for rd in range(rule_doff[r], rule_doff[r + 1]):
                        d = rule_dests[rd]
                        w = d >> 6
                        bit = np.int64(1) << (d & 63)
                        if dest_bits[w] & bit == 0:
                            dest_bits[w] |= bit
                            out[count] = d
                            count += 1
                            wlo = min(wlo, w)
                            whi = max(whi, w)
        # ascending ids: insertion sort when few, else read the bitmap back if it is dense
        # enough, else sort; every path leaves the bitmap zero
        if count <= 12 or whi - wlo >= 4 * count:
            if count <= 12:
                for a in range(1, count):
                    v = out[a]
                    b = a - 1
                    while b >= 0 and out[b] > v:
                        out[b + 1] = out[b]
                        b -= 1
                    out[b + 1] = v
            else:
                out[:count].sort()
            for a in range(count):
                dest_bits[out[a] >> 6] = 0
        else:
            a = 0
            for w in range(wlo, whi + 1):
                x = dest_bits[w]
                dest_bits[w] = 0
                while x != 0:
                    low = x & -x
                    out[a] = (w << 6) + _DEBRUIJN_POS[((low * _DEBRUIJN) >> 58) & 63]
                    a += 1
                    x ^= low
        counts[i] = count
        if stop == hi:
            if pos + count <= end:
                for a in range(count):
                    buf[pos + a] = out[a]
                pos += count
            else:
                stop = i
    return stop


@njit(**SERIAL)
def route_serial(cols, tab, scr, cap):
    """Route every message on one thread (scratch row 0); return (offsets[n+1], ids).

    For small batches, where starting threads costs more than it saves. ``cap`` is the
    first guess at the total number of ids.
    """
    n = cols.offsets.shape[0] - 1
    counts = np.empty(n, np.int64)
    buf = np.empty(cap, np.int32)
    zero = np.int64(0)  # int64, not literal 0: one compiled match_chunk for every caller
    stop = match_chunk(cols, tab, scr, zero, zero, n, zero, counts, buf, zero, np.int64(cap))
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i] + counts[i]
    if stop == n:
        return offsets, buf[:offsets[n]].copy()
    out = np.empty(offsets[n], np.int32)
    out[:offsets[stop]] = buf[:offsets[stop]]
    match_chunk(cols, tab, scr, zero, stop, n, n, counts, out, offsets[stop], offsets[n])
    return offsets, out


@njit(**PARALLEL)
def route_parallel(cols, tab, scr, cap):
    """Route every message, one chunk per scratch row, chunks split across threads; return
    (offsets[n+1], ids).

    Each message is matched once: chunk c writes its answers to its own region of ``cap``
    ids in a shared buffer, then (after a prefix sum over the per-message counts) the
    regions are copied into place. A chunk whose region fills up keeps counting and later
    matches its remaining messages again, straight into the output; a good ``cap`` (from
    the expected fanout) makes that rare.
    """
    n = cols.offsets.shape[0] - 1
    n_chunks = scr.out.shape[0]
    step = (n + n_chunks - 1) // n_chunks
    counts = np.empty(n, np.int64)
    buf = np.empty(n_chunks * cap, np.int32)
    stop = np.empty(n_chunks, np.int64)
    zero = np.int64(0)
    for pc in prange(n_chunks):
        c = np.int64(pc)  # prange counts in uint64; one compiled match_chunk wants int64
        lo = min(c * step, n)
        hi = min(lo + step, n)
        stop[c] = match_chunk(cols, tab, scr, c, lo, hi, zero, counts, buf, c * cap, c * cap + cap)
    offsets = np.empty(n + 1, np.int64)
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i] + counts[i]
    out = np.empty(offsets[n], np.int32)
    for pc in prange(n_chunks):
        c = np.int64(pc)
        lo = min(c * step, n)
        hi = min(lo + step, n)
        w = stop[c]
        src = c * cap
        dst = offsets[lo]
        for a in range(offsets[w] - dst):
            out[dst + a] = buf[src + a]
        if w < hi:
            match_chunk(cols, tab, scr, c, w, hi, n, counts, out, offsets[w], offsets[hi])
    return offsets, out
