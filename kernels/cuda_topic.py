"""Topic and exact-key matching on a CUDA device, and the steps around it for routers by key.

The device walks the same :class:`~fastroute.kernels.topic.TopicTable` as the CPU matcher
(:func:`fastroute.kernels.topic.match_chunk`, whose module docstring explains the table),
with the same algorithm: words split and looked up in the table's dictionary, the length
class's groups, split / leaf / small nodes, bit rows with chunk summaries, anchored nodes,
the MQTT '$' rule, middles, plain and group targets. Only the bookkeeping differs:

* one thread per key *item* (no de-duplication: on a device a repeated key costs one more
  thread, where a hash-table pass would cost more than it saves);
* a key's destinations collect in a sorted local array of at most ``cap`` ids
  (:data:`MAX_DEST`), insertion keeping them ascending and unique, which is the order the
  CPU's bitmap yields. A key with more destinations is *wide*: it is matched again with a
  bitmap row of one bit per destination in global scratch, the CPU's own method;
* two passes, count then fill, with an exclusive prefix sum between them
  (:func:`fastroute.kernels.cuda_scan.exclusive_scan`). The count pass keeps each key's
  destinations in a *stash* of :func:`stash_width` ids per key (column-major, so a warp's
  writes coalesce), and the fill pass copies them; only keys with more destinations, or with
  group targets, are matched a second time.

Fixed per-thread limits, because ``cuda.local.array`` sizes are compile-time constants:
:data:`MAX_WORDS` words per key and :data:`MAX_GROUPS` group targets per key (a key past
either is *hard*: the caller routes the batch on the CPU), :data:`MAX_STACK` node depth and
:data:`MAX_SPECS` specs per leaf (a table past these is not uploaded: :func:`fits`).

Each per-key body is a plain Python function in the subset both ``numba.njit`` and
``numba.cuda.jit(device=True)`` compile. It is built twice from one source: the ``*_cpu``
names are CPU builds (the tests compare them with the CPU kernels on many inputs quickly),
and the device build binds the helpers it calls to their device builds
(:func:`for_device`), so the two cannot drift.

Routers by key also need, on the device: the CC and BCC headers' keys
(:func:`header_keys`, the twin of :mod:`~fastroute.kernels.routing_keys`), the union of a
message's keys' answers with one pick per NATS queue group (:func:`expand`, the twin of
:func:`~fastroute.kernels.expand.expand_multi` for seeded picks; MQTT's round-robin is
sequential by nature and runs on the host), and exact-key lookup for direct exchanges
(:func:`direct_items`). Nothing here validates input.
"""

from __future__ import annotations

import types as _pytypes

import numpy as np
from numba import cuda, int32, int64, njit

from . import _codes as C
from . import cuda_launch as L
from . import topic as K
from ._config import INLINE, SERIAL
from .cuda_launch import KERNEL
from .cuda_scan import exclusive_scan, last
from .expand import _pick
from .keys import bytes_equal, hash_bytes

#: Words per key a thread can hold; a longer key makes the batch go to the CPU.
MAX_WORDS = 64
#: Depth of the node stack; a table needing more is not run on the device.
MAX_STACK = 32
#: Specs (word positions) per leaf; a table needing more is not run on the device.
MAX_SPECS = 32
#: Destinations a key collects in its local array before it is matched again as wide.
MAX_DEST = 128
#: Group targets (MQTT shared / NATS queue members reached) per key; more makes the batch
#: go to the CPU.
MAX_GROUPS = 32
#: Bytes of bitmap scratch one launch of the wide pass may use.
WIDE_SCRATCH_BYTES = 64 << 20

#: Item status after the count pass.
OK = 0
WIDE = 1   # too many destinations for the local array: matched again with a bitmap row
HARD = 2   # beyond a fixed limit: the batch is routed on the CPU
STASHED = 3  # OK, and its destinations wait in the stash: the fill pass copies them

#: Device memory the count pass may fill with keys' destinations (at most this, and at most a
#: quarter of the free memory), so that the fill pass copies them instead of matching again.
#: Keys with more destinations than the per-key width this allows are matched again.
STASH_BYTES = 4 << 30


def for_device(fn, **helpers):
    """``fn`` compiled with ``cuda.jit(device=True)``, the global names in ``helpers``
    rebound to device builds. One source thus serves both targets: the module's own globals
    are the CPU builds that ``njit`` calls."""
    scope = dict(fn.__globals__)
    scope.update(helpers)
    clone = _pytypes.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__, fn.__closure__)
    clone.__doc__ = fn.__doc__
    return cuda.jit(device=True)(clone)


def _device_build(dispatcher):
    """The device build of an njit function's Python source."""
    return cuda.jit(device=True)(dispatcher.py_func)


# --------------------------------------------------------------------------- small helpers

def _ctz_py(x):
    """Index of the lowest set bit of a non-zero uint64 (plain arithmetic: both targets)."""
    n = 0
    if x & np.uint64(0xFFFFFFFF) == 0:
        n += 32
        x >>= np.uint64(32)
    if x & np.uint64(0xFFFF) == 0:
        n += 16
        x >>= np.uint64(16)
    if x & np.uint64(0xFF) == 0:
        n += 8
        x >>= np.uint64(8)
    if x & np.uint64(0xF) == 0:
        n += 4
        x >>= np.uint64(4)
    if x & np.uint64(0x3) == 0:
        n += 2
        x >>= np.uint64(2)
    if x & np.uint64(0x1) == 0:
        n += 1
    return n


def _popcount_py(x):
    """Set bits of a uint64."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


def _add_py(dest, nd, cap, bm, r, wide, d):
    """Add destination id d to a key's set; return the new size, or -1 when full.

    ``wide``: set bit d of bitmap row ``bm[r]`` (the size is then counted at the end).
    Otherwise ``dest[0:nd]`` is kept ascending and unique, holding at most ``cap`` ids.
    """
    if wide:
        bm[r, d >> 6] |= np.uint64(1) << np.uint64(d & 63)
        return nd
    j = nd
    while j > 0 and dest[j - 1] > d:
        j -= 1
    if j > 0 and dest[j - 1] == d:
        return nd
    if nd >= cap:
        return -1
    k = nd
    while k > j:
        dest[k] = dest[k - 1]
        k -= 1
    dest[j] = d
    return nd + 1


_ctz = njit(**INLINE)(_ctz_py)
_popcount = njit(**INLINE)(_popcount_py)
_add = njit(**INLINE)(_add_py)
_hash = hash_bytes
_equal = bytes_equal


# --------------------------------------------------------------------------- topic: per key

def _match(t, data, a0, a1, words, stack, rows, dest, cap, bm, r, wide, gdest):
    """Match the key ``data[a0:a1]`` against TopicTable ``t``: return (nd, ng, status).

    Destination ids go to the set of :func:`_add_py` (``dest``/``cap`` or bitmap row
    ``bm[r]`` when ``wide``); nd is their count (not counted when wide). Group-binding
    indices go to ``gdest[0:ng]`` in the order the CPU finds them. ``words``, ``stack`` and
    ``rows`` are scratch of :data:`MAX_WORDS`, :data:`MAX_STACK` and :data:`MAX_SPECS`
    items. status is OK, WIDE (``dest`` overflowed) or HARD (too many words or group
    targets); the counts are 0 unless OK.
    """
    dialect = t.dialect
    sep = t.sep
    n_words = t.n_words
    word_offsets = t.word_offsets
    word_data = t.word_data
    word_slots = t.word_slots
    word_hashes = t.word_hashes
    lut_dense = t.lut_dense
    lut_keys = t.lut_keys
    lut_vals = t.lut_vals
    len_root_off = t.len_root_off
    len_roots = t.len_roots
    node_kind = t.node_kind
    node_spec = t.node_spec
    node_slot = t.node_slot
    node_star = t.node_star
    node_qoff = t.node_qoff
    lq_spec = t.lq_spec
    lq_slot = t.lq_slot
    lq_star = t.lq_star
    node_lenoff = t.node_lenoff
    node_lencap = t.node_lencap
    len_rows = t.len_rows
    node_nw = t.node_nw
    node_sum = t.node_sum
    node_all = t.node_all
    node_boff = t.node_boff
    bits = t.bits
    leaf_pats = t.leaf_pats
    leaf_act = t.leaf_act
    anchor_node = t.anchor_node
    pat_flags = t.pat_flags
    pat_p = t.pat_p
    pat_s = t.pat_s
    pat_minlen = t.pat_minlen
    pat_word_off = t.pat_word_off
    pat_words = t.pat_words
    pat_seg_off = t.pat_seg_off
    seg_off = t.seg_off
    seg_words = t.seg_words
    pat_tgt_off = t.pat_tgt_off
    tgt = t.tgt
    dense = lut_dense.shape[0] > 0
    lut_mask = np.uint64(lut_keys.shape[0] - 1)
    word_mask = np.uint64(word_slots.shape[0] - 1)
    n_slots = word_slots.shape[0]
    n_classes = len_root_off.shape[0] - 2
    nd = 0
    ng = 0
    # -- a topic mosquitto would refuse routes nowhere
    if dialect == K.MQTT:
        ok = a1 > a0 and a1 - a0 <= 65535
        j = a0
        while ok and j < a1:
            c = np.int64(data[j])
            if c < 0x80:
                if c <= 0x1F or c == 0x7F or c == 0x2B or c == 0x23:  # controls, '+', '#'
                    ok = False
                j += 1
                continue
            ln = 0
            cp = np.int64(0)
            if c & 0xE0 == 0xC0 and c >= 0xC2:
                ln = 2
                cp = c & 0x1F
            elif c & 0xF0 == 0xE0:
                ln = 3
                cp = c & 0x0F
            elif c & 0xF8 == 0xF0 and c <= 0xF4:
                ln = 4
                cp = c & 0x07
            else:
                ok = False
                break
            if j + ln > a1:
                ok = False
                break
            for q in range(1, ln):
                x = np.int64(data[j + q])
                if x & 0xC0 != 0x80:
                    ok = False
                cp = (cp << 6) | (x & 0x3F)
            if ((ln == 3 and cp < 0x800) or (ln == 4 and (cp < 0x10000 or cp > 0x10FFFF))
                    or (cp >= 0xD800 and cp <= 0xDFFF) or (cp >= 0x7F and cp <= 0x9F)
                    or (cp >= 0xFDD0 and cp <= 0xFDEF) or cp & 0xFFFF >= 0xFFFE):
                ok = False
            j += ln
        if not ok:
            return 0, 0, OK
    # -- split into words and look each up in the dictionary (-1: not a literal word)
    n = 0
    if not (a1 == a0 and dialect == K.AMQP):
        ws = a0
        for j in range(a0, a1 + 1):
            if j < a1 and data[j] != sep:
                continue
            if dialect == K.NATS and j == ws:
                return 0, 0, OK  # an empty token: no interest
            if n == MAX_WORDS:
                return 0, 0, HARD
            h = _hash(data, ws, j)
            s = h & word_mask
            wid = -1
            for _ in range(n_slots):
                cand = word_slots[s]
                if cand < 0:
                    break
                if word_hashes[cand] == h and _equal(word_data, word_offsets[cand], word_offsets[cand + 1],
                                                     data, ws, j):
                    wid = cand
                    break
                s = (s + np.uint64(1)) & word_mask
            words[n] = wid
            n += 1
            ws = j + 1
    dollar = a1 > a0 and data[a0] == 36  # '$'
    li = n if n < n_classes else n_classes
    # -- walk the groups a key of n words can match; the anchored patterns come last
    r_at = len_root_off[li]
    r_end = len_root_off[li + 1]
    top = 0
    anchor_i = 0
    while True:
        if top == 0:
            if r_at < r_end:
                stack[0] = len_roots[r_at]
                top = 1
                r_at += 1
            else:
                while top == 0 and anchor_i < n:
                    w = words[anchor_i]
                    anchor_i += 1
                    if w < 0 or anchor_node[w] < 0:
                        continue
                    seen = False
                    for q in range(anchor_i - 1):
                        if words[q] == w:
                            seen = True
                            break
                    if not seen:
                        stack[0] = anchor_node[w]
                        top = 1
                if top == 0:
                    break
        top -= 1
        node = stack[top]
        kind = node_kind[node]
        if kind == K.SPLIT:
            spec = node_spec[node]
            wi = spec if spec >= 0 else n + spec
            w = words[wi] if wi >= 0 and wi < n else -1
            if w >= 0:
                child = -1
                if dense:
                    child = lut_dense[np.int64(node_slot[node]) * n_words + w]
                else:
                    key = np.int64(node_slot[node]) * n_words + w
                    s = K.mix64(np.uint64(key)) & lut_mask
                    while lut_keys[s] >= 0:
                        if lut_keys[s] == key:
                            child = lut_vals[s]
                            break
                        s = (s + np.uint64(1)) & lut_mask
                if child >= 0:
                    stack[top] = child
                    top += 1
            if node_star[node] >= 0:
                stack[top] = node_star[node]
                top += 1
            continue
        # the candidates of this node: a bitset leaf, or a few patterns one by one
        n_cand = 0
        first = np.int64(-1)
        qa = 0
        qb = 0
        if kind == K.SMALL:
            n_cand = node_nw[node]
        else:
            lenoff = node_lenoff[node]
            if lenoff >= 0:
                cap_len = node_lencap[node]
                first = np.int64(len_rows[lenoff + (n if n < cap_len else cap_len)])
            else:
                first = np.int64(node_all[node])
            if first < 0:
                continue
            qa = node_qoff[node]
            qb = node_qoff[node + 1]
            dead = False
            for q in range(qa, qb):
                spec = lq_spec[q]
                wi = spec if spec >= 0 else n + spec
                w = words[wi] if wi >= 0 and wi < n else -1
                row = np.int64(-1)
                if w >= 0:
                    if dense:
                        row = np.int64(lut_dense[np.int64(lq_slot[q]) * n_words + w])
                    else:
                        key = np.int64(lq_slot[q]) * n_words + w
                        s = K.mix64(np.uint64(key)) & lut_mask
                        while lut_keys[s] >= 0:
                            if lut_keys[s] == key:
                                row = np.int64(lut_vals[s])
                                break
                            s = (s + np.uint64(1)) & lut_mask
                if row < 0:
                    row = np.int64(lq_star[q])
                    if row < 0:
                        dead = True
                        break
                rows[q - qa] = row
            if dead:
                continue
        nq = 0 if kind == K.SMALL else qb - qa
        boff = node_boff[node]
        nw = node_nw[node] if kind != K.SMALL else 1
        summed = kind == K.LEAF and node_sum[node] != 0
        cmask = np.uint64(0)
        if summed:
            # only chunks where the first and the most selective rows both have bits
            cmask = bits[first - 1]
            if nq > 0:
                cmask &= bits[rows[0] - 1]
        c = -1
        while True:
            if summed:
                if cmask == 0:
                    break
                c = _ctz(cmask)
                cmask &= cmask - np.uint64(1)
            else:
                c += 1
                if c >= nw:
                    break
            acc = np.uint64(0)
            if kind != K.SMALL:
                acc = bits[first + c]
                for q in range(nq):
                    if acc == 0:
                        break
                    acc &= bits[rows[q] + c]
            m = 0
            while acc != 0 or (kind == K.SMALL and m < n_cand):
                pid = 0
                if kind == K.SMALL:
                    pid = leaf_pats[boff + m]
                    m += 1
                    # prefix, suffix and length, checked directly
                    pp = pat_p[pid]
                    ps = pat_s[pid]
                    if (pat_flags[pid] & K.OPEN_ENDED) != 0:
                        if n < pat_minlen[pid]:
                            continue
                    elif n != pp:
                        continue
                    fits = True
                    wa = pat_word_off[pid]
                    for q in range(pp):
                        w = pat_words[wa + q]
                        if w != K.STAR and w != words[q]:
                            fits = False
                            break
                    if fits:
                        for q in range(ps):
                            w = pat_words[wa + pp + q]
                            if w != K.STAR and w != words[n - ps + q]:
                                fits = False
                                break
                    if not fits:
                        continue
                else:
                    bit = _ctz(acc)
                    acc &= acc - np.uint64(1)
                    act = leaf_act[boff + c * 64 + bit]
                    if act >= 0:
                        # one plain destination and nothing left to check
                        nd = _add(dest, nd, cap, bm, r, wide, act)
                        if nd < 0:
                            return 0, 0, WIDE
                        continue
                    pid = leaf_pats[boff + c * 64 + bit]
                # the last checks: the '$' rule, then middles placed greedily leftmost
                flags = pat_flags[pid]
                if (flags & K.NO_DOLLAR) != 0 and dollar:
                    continue
                if (flags & K.HAS_MIDDLES) != 0:
                    at = pat_p[pid]
                    end = n - pat_s[pid]
                    placed = True
                    for g in range(pat_seg_off[pid], pat_seg_off[pid + 1]):
                        sa = seg_off[g]
                        ln = seg_off[g + 1] - sa
                        found = False
                        x = at
                        while x + ln <= end:
                            hit = True
                            for q in range(ln):
                                w = seg_words[sa + q]
                                if w != K.STAR and w != words[x + q]:
                                    hit = False
                                    break
                            if hit:
                                found = True
                                break
                            x += 1
                        if not found:
                            placed = False
                            break
                        at = x + ln
                    if not placed:
                        continue
                for e in range(pat_tgt_off[pid], pat_tgt_off[pid + 1]):
                    d = tgt[e]
                    if d >= 0:
                        nd = _add(dest, nd, cap, bm, r, wide, d)
                        if nd < 0:
                            return 0, 0, WIDE
                    else:
                        if ng == MAX_GROUPS:
                            return 0, 0, HARD
                        gdest[ng] = -d - 1
                        ng += 1
    return nd, ng, OK


#: CPU build of :func:`_match`, for tests: one key, with numpy scratch arrays.
match_key_cpu = njit(**SERIAL)(_match)


# --------------------------------------------------------------------------- exact keys: per key

def _lookup(slots, hashes, key_offsets, key_data, data, a0, a1):
    """The binding-key id equal to data[a0:a1] in a string table, or -1 (the same probe as
    :func:`fastroute.kernels.keys.lookup_string`)."""
    h = _hash(data, a0, a1)
    mask = np.uint64(slots.shape[0] - 1)
    s = h & mask
    found = -1
    for _ in range(slots.shape[0]):
        j = slots[s]
        if j < 0:
            break
        if hashes[j] == h and _equal(key_data, key_offsets[j], key_offsets[j + 1], data, a0, a1):
            found = j
            break
        s = (s + np.uint64(1)) & mask
    return found


lookup_cpu = njit(**SERIAL)(_lookup)


# --------------------------------------------------------------------------- messages: per message

def _expand_one(i, n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, policy,
                cursors, seed, msg_no, dest, cap, bm, r, wide):
    """Message i's destinations from its keys' answers: return their count, or -1 when
    ``dest`` is full (see :func:`_add_py`).

    Its keys are item i and items n + ext_off[i] .. n + ext_off[i+1] (the CC/BCC keys;
    ``ext_off`` empty when there are none). The answer is the union of the keys' plain
    destinations plus, per group reached, one member picked among the reaching candidates
    (in key order, then each key's order; one counted as often as it is reached) with
    :func:`fastroute.kernels.expand._pick` at message number ``msg_no``: exactly what
    :func:`~fastroute.kernels.expand.expand_multi` picks.
    """
    nk = 1
    if ext_off.shape[0] > 0:
        nk += ext_off[i + 1] - ext_off[i]
    nd = 0
    for q in range(nk):
        it = i if q == 0 else n + ext_off[i] + q - 1
        for e in range(item_off[it], item_off[it + 1]):
            nd = _add(dest, nd, cap, bm, r, wide, item_dest[e])
            if nd < 0:
                return -1
    if item_gb.shape[0] == 0:
        return nd
    for qa in range(nk):
        ita = i if qa == 0 else n + ext_off[i] + qa - 1
        for ea in range(item_goff[ita], item_goff[ita + 1]):
            g = gb_group[item_gb[ea]]
            # the group's first candidate decides for the group; count its candidates
            first = True
            m = 0
            for qb in range(nk):
                itb = i if qb == 0 else n + ext_off[i] + qb - 1
                for eb in range(item_goff[itb], item_goff[itb + 1]):
                    if gb_group[item_gb[eb]] == g:
                        if qb < qa or (qb == qa and eb < ea):
                            first = False
                        m += 1
            if not first:
                continue
            k = _pick(policy, cursors, g, m, seed, msg_no)
            pick = -1
            for qb in range(nk):
                itb = i if qb == 0 else n + ext_off[i] + qb - 1
                for eb in range(item_goff[itb], item_goff[itb + 1]):
                    if pick < 0 and gb_group[item_gb[eb]] == g:
                        if k == 0:
                            pick = item_gb[eb]
                        k -= 1
            nd = _add(dest, nd, cap, bm, r, wide, gb_dest[pick])
            if nd < 0:
                return -1
    return nd


expand_one_cpu = njit(**SERIAL)(_expand_one)


# --------------------------------------------------------------------------- device builds

_DEVICE_HELPERS = dict(_ctz=cuda.jit(device=True)(_ctz_py), _add=cuda.jit(device=True)(_add_py),
                       _hash=_device_build(hash_bytes), _equal=_device_build(bytes_equal),
                       _pick=_device_build(_pick))
_match_dev = for_device(_match, **_DEVICE_HELPERS)
_lookup_dev = for_device(_lookup, **_DEVICE_HELPERS)
_expand_dev = for_device(_expand_one, **_DEVICE_HELPERS)
_popcount_dev = cuda.jit(device=True)(_popcount_py)


@cuda.jit(device=True)
def _row_count(bm, r):
    total = 0
    for w in range(bm.shape[1]):
        total += _popcount_dev(bm[r, w])
    return total


@cuda.jit(device=True)
def _row_clear(bm, r):
    for w in range(bm.shape[1]):
        bm[r, w] = np.uint64(0)


@cuda.jit(device=True)
def _row_write(bm, r, out, at):
    """Write the set bits of row r ascending to out[at:], clearing the row."""
    k = at
    for w in range(bm.shape[1]):
        x = bm[r, w]
        bm[r, w] = np.uint64(0)
        while x != 0:
            low = x & (np.uint64(0) - x)
            out[k] = np.int32(w * 64 + _popcount_dev(low - np.uint64(1)))
            k += 1
            x ^= low


@cuda.jit(device=True)
def _stash_put(stash, i, dest, nd):
    """Keep item i's nd ids for the fill pass, if they fit; True when they did."""
    if nd > stash.shape[0]:
        return False
    for k in range(nd):
        stash[k, i] = dest[k]
    return True


@cuda.jit(device=True)
def _stash_copy(stash, i, out, offsets):
    """Write item i's stashed ids to ``out`` at ``offsets[i]``."""
    at = offsets[i]
    for k in range(offsets[i + 1] - at):
        out[at + k] = stash[k, i]


# --------------------------------------------------------------------------- topic kernels

@cuda.jit(**KERNEL)
def _topic_count(t, offsets, data, valid, items, wide, cap, bm, counts, gcounts, status, tally, stash):
    """Pass 1: per item, its destination and group-target counts and its status; ``tally``
    counts WIDE and HARD items. ``wide``: only items[j], with bitmap row j. An OK item whose
    ids fit ``stash`` (ids x items) and that reaches no group is STASHED, its ids in
    ``stash[:, i]``."""
    words = cuda.local.array(MAX_WORDS, int32)
    stack = cuda.local.array(MAX_STACK, int32)
    rows = cuda.local.array(MAX_SPECS, int64)
    dest = cuda.local.array(MAX_DEST, int32)
    gdest = cuda.local.array(MAX_GROUPS, int32)
    m = items.shape[0] if wide else offsets.shape[0] - 1
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        nd = 0
        ng = 0
        st = OK
        if valid.shape[0] == 0 or valid[i]:
            if wide:
                _row_clear(bm, j)
            nd, ng, st = _match_dev(t, data, offsets[i], offsets[i + 1], words, stack, rows, dest, cap,
                                    bm, j, wide, gdest)
            if wide and st == OK:
                nd = _row_count(bm, j)
        if st != OK:
            cuda.atomic.add(tally, st, 1)
        counts[i] = nd
        gcounts[i] = ng
        if st != OK or not wide:
            if st == OK and ng == 0 and _stash_put(stash, i, dest, nd):
                st = STASHED
            status[i] = st


@cuda.jit(**KERNEL)
def _topic_fill(t, offsets, data, valid, items, wide, cap, bm, status, item_off, item_dest, item_goff,
                item_gb, stash):
    """Pass 2: write each item's destinations and group targets at its offsets. Plain pass:
    STASHED items copy their ids from ``stash``, OK items are matched again; wide pass:
    items[j], status WIDE, matched again with bitmap row j."""
    words = cuda.local.array(MAX_WORDS, int32)
    stack = cuda.local.array(MAX_STACK, int32)
    rows = cuda.local.array(MAX_SPECS, int64)
    dest = cuda.local.array(MAX_DEST, int32)
    gdest = cuda.local.array(MAX_GROUPS, int32)
    m = items.shape[0] if wide else offsets.shape[0] - 1
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        s = status[i]
        if not wide and s == STASHED:
            _stash_copy(stash, i, item_dest, item_off)
            continue
        if s != (WIDE if wide else OK) or not (valid.shape[0] == 0 or valid[i]):
            continue
        if wide:
            _row_clear(bm, j)
        nd, ng, st = _match_dev(t, data, offsets[i], offsets[i + 1], words, stack, rows, dest, cap,
                                bm, j, wide, gdest)
        at = item_off[i]
        if wide:
            _row_write(bm, j, item_dest, at)
        else:
            for k in range(nd):
                item_dest[at + k] = dest[k]
        if item_gb.shape[0] > 0:
            at = item_goff[i]
            for k in range(ng):
                item_gb[at + k] = gdest[k]


# --------------------------------------------------------------------------- expansion kernels

@cuda.jit(**KERNEL)
def _expand_count(n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, policy,
                  cursors, seed, counter, items, wide, cap, bm, counts, status, tally):
    dest = cuda.local.array(MAX_DEST, int32)
    m = items.shape[0] if wide else n
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        if wide:
            _row_clear(bm, j)
        nd = _expand_dev(i, n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest,
                         policy, cursors, seed, counter + i, dest, cap, bm, j, wide)
        if wide:
            nd = _row_count(bm, j)
        if nd < 0:
            cuda.atomic.add(tally, WIDE, 1)
            status[i] = WIDE
            nd = 0
        elif not wide:
            status[i] = OK
        counts[i] = nd


@cuda.jit(**KERNEL)
def _expand_fill(n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, policy,
                 cursors, seed, counter, items, wide, cap, bm, status, offsets, out):
    dest = cuda.local.array(MAX_DEST, int32)
    m = items.shape[0] if wide else n
    for j in range(cuda.grid(1), m, cuda.gridsize(1)):
        i = items[j] if wide else j
        if status[i] != (WIDE if wide else OK):
            continue
        if wide:
            _row_clear(bm, j)
        nd = _expand_dev(i, n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest,
                         policy, cursors, seed, counter + i, dest, cap, bm, j, wide)
        at = offsets[i]
        if wide:
            _row_write(bm, j, out, at)
        else:
            for k in range(nd):
                out[at + k] = dest[k]


# --------------------------------------------------------------------------- direct kernels

@cuda.jit(**KERNEL)
def _direct_count(offsets, data, valid, slots, hashes, key_offsets, key_data, dest_off, found, counts):
    for i in range(cuda.grid(1), offsets.shape[0] - 1, cuda.gridsize(1)):
        j = -1
        if valid.shape[0] == 0 or valid[i]:
            j = _lookup_dev(slots, hashes, key_offsets, key_data, data, offsets[i], offsets[i + 1])
        found[i] = j
        counts[i] = dest_off[j + 1] - dest_off[j] if j >= 0 else 0


@cuda.jit(**KERNEL)
def _direct_fill(found, dest_off, dests, item_off, item_dest):
    for i in range(cuda.grid(1), found.shape[0], cuda.gridsize(1)):
        j = found[i]
        if j >= 0:
            at = item_off[i]
            for k in range(dest_off[j + 1] - dest_off[j]):
                item_dest[at + k] = dests[dest_off[j] + k]


# --------------------------------------------------------------------------- CC / BCC kernels

@cuda.jit(device=True)
def _u32(buf, pos):
    return (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24))


@cuda.jit(device=True)
def _item_end(buf, pos):
    """Position just past the nested item starting at pos (routing_keys._item_end)."""
    tag = buf[pos]
    if tag <= C.TAG_TRUE:
        return pos + 1
    if tag == C.TAG_INT or tag == C.TAG_FLOAT:
        return pos + 9
    return pos + 5 + _u32(buf, pos + 1)


@cuda.jit(device=True)
def _first_entry(h_offsets, name_ids, i, name_id):
    for j in range(h_offsets[i], h_offsets[i + 1]):
        if name_ids[j] == name_id:
            return j
    return -1


@cuda.jit(device=True)
def _list_of(h_offsets, name_ids, types, blob_offsets, blob_data, i, name_id):
    """(first entry, item count, first item position, end) of message i's list header
    ``name_id``; entry -1 when absent, -2 when it is not a well-formed list."""
    j = _first_entry(h_offsets, name_ids, i, name_id)
    if j < 0:
        return -1, 0, 0, 0
    b0 = blob_offsets[j]
    end = blob_offsets[j + 1]
    if types[j] != C.LIST or end - b0 < 9:
        return -2, 0, 0, 0
    return j, _u32(blob_data, b0 + 5), b0 + 9, end


@cuda.jit(**KERNEL)
def _cc_count(h_offsets, name_ids, types, blob_offsets, blob_data, cc_id, bcc_id, nkeys, nbytes, bad):
    """Per message, the str elements of its CC and BCC lists (count and bytes); ``bad[0]``
    becomes the lowest message whose CC or BCC is not a well-formed list."""
    for i in range(cuda.grid(1), h_offsets.shape[0] - 1, cuda.gridsize(1)):
        count = 0
        size = 0
        wrong = False
        for which in range(2):
            name_id = cc_id if which == 0 else bcc_id
            if name_id < 0 or wrong:
                continue
            j, items, pos, end = _list_of(h_offsets, name_ids, types, blob_offsets, blob_data, i, name_id)
            if j == -2:
                wrong = True
                continue
            for _ in range(items):
                # a malformed list (from a hostile frame, say) counts as "not a list"
                if pos >= end or (blob_data[pos] > C.TAG_FLOAT and pos + 5 > end):
                    wrong = True
                    break
                nxt = _item_end(blob_data, pos)
                if nxt > end:
                    wrong = True
                    break
                if blob_data[pos] == C.TAG_STR:
                    count += 1
                    size += nxt - pos - 5
                pos = nxt
        if wrong:
            cuda.atomic.min(bad, 0, i)
            count = 0
            size = 0
        nkeys[i] = count
        nbytes[i] = size


@cuda.jit(**KERNEL)
def _cc_fill(h_offsets, name_ids, types, blob_offsets, blob_data, cc_id, bcc_id, key_base, byte_base,
             n, base, offsets, data):
    """Append message i's CC then BCC str elements as items n + key_base[i] ... of the key
    column (``offsets``, ``data``), their bytes from ``base + byte_base[i]`` on."""
    for i in range(cuda.grid(1), h_offsets.shape[0] - 1, cuda.gridsize(1)):
        e = n + 1 + key_base[i]
        w = base + byte_base[i]
        for which in range(2):
            name_id = cc_id if which == 0 else bcc_id
            if name_id < 0:
                continue
            j, items, pos, end = _list_of(h_offsets, name_ids, types, blob_offsets, blob_data, i, name_id)
            if j < 0:
                continue
            for _ in range(items):
                if blob_data[pos] == C.TAG_STR:
                    ln = _u32(blob_data, pos + 1)
                    for k in range(ln):
                        data[w + k] = blob_data[pos + 5 + k]
                    w += ln
                    offsets[e] = w
                    e += 1
                pos = _item_end(blob_data, pos)


@cuda.jit(**KERNEL)
def _copy(src, out, at):
    """out[at + k] = src[k]."""
    for k in range(cuda.grid(1), src.shape[0], cuda.gridsize(1)):
        out[at + k] = src[k]


@cuda.jit(**KERNEL)
def _set(out, at, value):
    for k in range(at + cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[k] = value


# --------------------------------------------------------------------------- host drivers

def _empty(dtype, shape=0):
    return cuda.device_array(shape, np.dtype(dtype))


def _tally():
    return cuda.to_device(np.zeros(3, np.int64))


def fits(table) -> bool:
    """True when a TopicTable's shape fits the device matcher's fixed limits."""
    return table.max_depth + 2 <= MAX_STACK and table.max_specs + 1 <= MAX_SPECS


def upload_table(table, upload):
    """The TopicTable with its arrays on the device: ``upload(dict of arrays) -> dict``
    (e.g. a per-device cache); scalar fields are kept."""
    arrays = {name: value for name, value in table._asdict().items() if isinstance(value, np.ndarray)}
    uploaded = upload(arrays)
    return table._replace(**uploaded)


def stash_width(n: int, cap: int) -> int:
    """Destination ids per key that the count pass can keep for n keys: at most ``cap``,
    within :data:`STASH_BYTES` and a quarter of the device's free memory."""
    budget = STASH_BYTES
    try:
        free = cuda.current_context().get_memory_info()[0]
        if free == free and free != float("inf"):  # the simulator reports inf
            budget = min(budget, int(free) // 4)
    except Exception:  # a driver that cannot say: keep the fixed budget
        pass
    return int(max(0, min(cap, budget // (4 * max(1, n)))))


def _stash(n: int, width: int):
    """A (width, n) int32 device array (a (0, 1) one when width is 0)."""
    return cuda.device_array((width, n) if width > 0 else (0, 1), np.int32)


def _wide_rows(n_ids: int) -> tuple:
    """(words per bitmap row, rows per wide launch) for sets of up to n_ids ids."""
    words = max(1, (n_ids + 63) // 64)
    return words, max(1, WIDE_SCRATCH_BYTES // (8 * words))


def _wide_items(status, count: int):
    """The indices of the WIDE items (a rare path: the status column visits the host)."""
    return np.flatnonzero(status.copy_to_host() == WIDE)[:count].astype(np.int64)


def topic_items(dt, offsets, data, validity, with_groups: bool, cap: int = MAX_DEST):
    """Match every item of a key column; return (item_off, item_dest, item_goff, item_gb) as
    device CSR (group arrays empty without ``with_groups``), or None when an item is HARD.

    ``dt``: a device TopicTable (:func:`upload_table`) that :func:`fits`. ``offsets``,
    ``data``, ``validity`` (None: no nulls): the column on the device. ``cap`` (at most
    :data:`MAX_DEST`) is the local set size; tests lower it to exercise the wide pass.
    """
    n = offsets.shape[0] - 1
    valid = validity if validity is not None else _empty(np.bool_)
    counts = _empty(np.int64, n)
    gcounts = _empty(np.int64, n)
    status = _empty(np.uint8, n)
    tally = _tally()
    no_items = _empty(np.int64)
    dummy_bm = cuda.device_array((1, 1), np.uint64)
    stash = _stash(n, stash_width(n, cap))
    no_stash = _stash(0, 0)
    L.launch(_topic_count, n)(dt, offsets, data, valid, no_items, False, cap, dummy_bm, counts, gcounts,
                              status, tally, stash)
    t = tally.copy_to_host()
    if t[HARD]:
        return None
    wide_chunks = []
    if t[WIDE]:
        items = _wide_items(status, int(t[WIDE]))
        words, per = _wide_rows(dt.n_dest)
        bm = cuda.device_array((min(per, items.shape[0]), words), np.uint64)
        tally = _tally()
        for a in range(0, items.shape[0], per):
            chunk = cuda.to_device(items[a:a + per])
            wide_chunks.append(chunk)
            L.launch(_topic_count, chunk.shape[0])(dt, offsets, data, valid, chunk, True, cap, bm, counts,
                                                   gcounts, status, tally, no_stash)
        if tally.copy_to_host()[HARD]:
            return None
    item_off = exclusive_scan(counts)
    item_dest = _empty(np.int32, last(item_off))
    if with_groups:
        item_goff = exclusive_scan(gcounts)
        item_gb = _empty(np.int32, last(item_goff))
    else:
        item_goff = _empty(np.int64)
        item_gb = _empty(np.int32)
    L.launch(_topic_fill, n)(dt, offsets, data, valid, no_items, False, cap, dummy_bm, status, item_off,
                             item_dest, item_goff, item_gb, stash)
    del stash  # the wide pass may want the memory
    for chunk in wide_chunks:
        L.launch(_topic_fill, chunk.shape[0])(dt, offsets, data, valid, chunk, True, cap, bm, status,
                                              item_off, item_dest, item_goff, item_gb, no_stash)
    return item_off, item_dest, item_goff, item_gb


def direct_items(tables, offsets, data, validity):
    """Exact-key lookup of every item: (item_off, item_dest) device CSR.

    ``tables``: device arrays (slots, hashes, key_offsets, key_data, dest_off, dests) of a
    DirectRouter's string table and destination CSR.
    """
    slots, hashes, key_offsets, key_data, dest_off, dests = tables
    n = offsets.shape[0] - 1
    valid = validity if validity is not None else _empty(np.bool_)
    found = _empty(np.int64, n)
    counts = _empty(np.int64, n)
    L.launch(_direct_count, n)(offsets, data, valid, slots, hashes, key_offsets, key_data, dest_off, found,
                               counts)
    item_off = exclusive_scan(counts)
    item_dest = _empty(np.int32, last(item_off))
    L.launch(_direct_fill, n)(found, dest_off, dests, item_off, item_dest)
    return item_off, item_dest


def expand(n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, policy, seed, counter,
           n_ids: int, cap: int = MAX_DEST):
    """Per message, the union of its keys' answers plus one pick per group reached: the
    device (offsets, destinations) of n messages. See :func:`_expand_one`; ``policy`` must
    be seeded random (:data:`~fastroute.kernels.expand.RANDOM`) when there are groups.
    ``n_ids``: the number of destination ids (sizes the wide pass's bitmap rows)."""
    counts = _empty(np.int64, n)
    status = _empty(np.uint8, n)
    tally = _tally()
    no_items = _empty(np.int64)
    dummy_bm = cuda.device_array((1, 1), np.uint64)
    cursors = _empty(np.int64, 1)
    args = (n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, policy, cursors,
            np.int64(seed), np.int64(counter))
    L.launch(_expand_count, n)(*args, no_items, False, cap, dummy_bm, counts, status, tally)
    wide = int(tally.copy_to_host()[WIDE])
    chunks = []
    if wide:
        items = _wide_items(status, wide)
        words, per = _wide_rows(n_ids)
        bm = cuda.device_array((min(per, items.shape[0]), words), np.uint64)
        for a in range(0, items.shape[0], per):
            chunk = cuda.to_device(items[a:a + per])
            chunks.append(chunk)
            L.launch(_expand_count, chunk.shape[0])(*args, chunk, True, cap, bm, counts, status, _tally())
    offsets = exclusive_scan(counts)
    out = _empty(np.int32, last(offsets))
    L.launch(_expand_fill, n)(*args, no_items, False, cap, dummy_bm, status, offsets, out)
    for chunk in chunks:
        L.launch(_expand_fill, chunk.shape[0])(*args, chunk, True, cap, bm, status, offsets, out)
    return offsets, out


def header_keys(headers, keys, cc_id: int, bcc_id: int):
    """The key column extended with each message's CC then BCC str elements (RabbitMQ §5).

    ``headers``: a device HeaderTable; ``keys``: the batch's device key column. Returns
    (offsets, data, validity, ext_off, bad): the combined column (the batch's n keys, then
    the extra keys, message by message), ``ext_off`` (n+1: message i's extra keys are items
    n + ext_off[i] ...), and the lowest message whose CC or BCC is not a list of strings
    (-1 if none; the other values are then None).
    """
    n = headers.offsets.shape[0] - 1
    nkeys = _empty(np.int64, n)
    nbytes = _empty(np.int64, n)
    bad = cuda.to_device(np.array([n], np.int64))
    cols = (headers.offsets, headers.name_ids, headers.types, headers.blob_offsets, headers.blob_data)
    L.launch(_cc_count, n)(*cols, cc_id, bcc_id, nkeys, nbytes, bad)
    b = int(bad.copy_to_host()[0])
    if b < n:
        return None, None, None, None, b
    ext_off = exclusive_scan(nkeys)
    byte_base = exclusive_scan(nbytes)
    n_extra = last(ext_off)
    base = last(keys.offsets)
    offsets = _empty(np.int64, n + 1 + n_extra)
    data = _empty(np.uint8, base + last(byte_base))
    L.launch(_copy, n + 1)(keys.offsets, offsets, 0)
    if base:
        L.launch(_copy, base)(keys.data[:base], data, 0)
    L.launch(_cc_fill, n)(*cols, cc_id, bcc_id, ext_off, byte_base, n, base, offsets, data)
    validity = None
    if keys.validity is not None:
        validity = _empty(np.bool_, n + n_extra)
        L.launch(_copy, n)(keys.validity, validity, 0)
        L.launch(_set, n_extra)(validity, n, True)
    return offsets, data, validity, ext_off, -1


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90; the table type comes from a small router, so it is built on first use.
    if name == "PTX_CHECKS":
        from numba import typeof
        from numba import types as T

        from .._topic import TopicRouter

        table = TopicRouter([("a.*.#", "q"), ("#.b", "r"), ("c", "s")])._table
        tt = typeof(table._replace(**{k: np.array(v) for k, v in table._asdict().items()
                                      if isinstance(v, np.ndarray)}))
        i64, i32, u8, b1, bm = T.int64[::1], T.int32[::1], T.uint8[::1], T.boolean[::1], T.uint64[:, ::1]
        I, B = T.int64, T.boolean
        expand = (I, i64, i64, i32, i64, i32, i32, i32, I, i64, I, I, i64, B, I, bm)
        headers = (i64, i32, u8, i64, u8, I, I)
        stash = T.int32[:, ::1]
        return [(_topic_count, (tt, i64, u8, b1, i64, B, I, bm, i64, i64, u8, i64, stash)),
                (_topic_fill, (tt, i64, u8, b1, i64, B, I, bm, u8, i64, i32, i64, i32, stash)),
                (_expand_count, expand + (i64, u8, i64)),
                (_expand_fill, expand + (u8, i64, i32)),
                (_direct_count, (i64, u8, b1, i32, T.uint64[::1], i64, u8, i64, i64, i64)),
                (_direct_fill, (i64, i64, i32, i64, i32)),
                (_cc_count, headers + (i64, i64, i64)),
                (_cc_fill, headers + (i64, i64, I, I, i64, u8)),
                (_copy, (i64, i64, I)), (_copy, (u8, u8, I)),
                (_copy, (b1, b1, I)), (_set, (b1, I, B))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
