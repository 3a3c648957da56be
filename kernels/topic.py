"""Topic matching: the compiled table and the per-key matcher for AMQP, MQTT and NATS.

How a table answers a key (fastroute/_topic_table.py builds it):

* Every pattern is a *prefix* of p words, a *suffix* of s words and, when it contains ``#``,
  any number of *middle* segments between its ``#`` words. A pattern without ``#`` matches
  keys of exactly p words; one with ``#`` matches keys of at least p + s (+ middles) words
  whose first p and last s words match, its middles fitting in order in between.
* Patterns are grouped: those without ``#`` by length, those with ``#`` into one group of
  short prefixes and suffixes (plus a group per (p, s) for long ones). A key of L words
  visits the groups that can match that length (``len_root_off``/``len_roots``).
* A group indexes *specs*: word positions counted from the start (0, 1, ...) or, encoded as
  negative numbers, from the end (-1 is the last word). A group is a tree whose leaves are
  bitset tables: per spec and literal word w a row of bits marks the leaf's patterns that
  accept w there (w itself, ``*``, or no constraint at that spec); a key ANDs one row per
  spec, plus a row of the patterns that admit its length, and reads the set bits. A leaf
  whose rows would cost too much memory is instead a *split* node on one spec: a lookup of
  the key's word there, plus the child of patterns that accept any word there.
* Rows and children are found by (slot, word id) in one lookup table (dense when small).
* A leaf's patterns are ordered by their word at its most selective spec, and its rows, when
  long, start with a summary word marking their non-zero chunks: a key visits only the chunks
  where that spec's row has bits.
* Patterns such as ``#.a.*.b.#`` constrain no position, only words somewhere in the middle;
  they sit in a small node under one literal word of their middles (their *anchor*,
  ``anchor_node`` per word id), visited when the key contains that word.
* Where only a few patterns remain (a split on a high-cardinality word leaves one or two per
  word), a *small* node checks them one by one against their prefix and suffix words, which
  costs less memory than bit rows and lookup entries.

Word ids come from the table's dictionary of literal words; a key word absent from it (and
a key word ``*`` or ``#``, which are never literals in a binding) matches only wildcards.
Destinations of a key come out ascending and unique: small destination sets collect in a
two-level bitmap, large ones are sorted.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, prange

from ._bits import trailing_zeros
from ._threads import map_chunks
from ._config import PARALLEL, SERIAL
from .keys import hash_bytes, mix64

AMQP = 0
MQTT = 1
NATS = 2

STAR = -2
#: a spec a pattern does not constrain (beyond its prefix or suffix)
ANY = -4

#: pattern flags
HAS_MIDDLES = 1
NO_DOLLAR = 2
OPEN_ENDED = 4   # has '#': matches keys of at least minlen words, not exactly p

#: node kinds
LEAF = 0
SPLIT = 1
SMALL = 2        # a few patterns checked one by one (node_nw holds their count)

TopicTable = namedtuple("TopicTable", [
    "dialect", "sep", "max_depth", "max_specs", "n_words", "n_dest", "use_bitmap",
    "word_offsets", "word_data", "word_slots", "word_hashes",
    "lut_dense", "lut_keys", "lut_vals",
    "len_root_off", "len_roots",
    "node_kind", "node_spec", "node_slot", "node_star",
    "node_qoff", "lq_spec", "lq_slot", "lq_star",
    "node_lenoff", "node_lencap", "len_rows",
    "node_nw", "node_sum", "node_all", "node_boff",
    "bits", "leaf_pats", "leaf_act", "anchor_node",
    "pat_flags", "pat_p", "pat_s", "pat_minlen", "pat_word_off", "pat_words",
    "pat_seg_off", "seg_off", "seg_words",
    "pat_tgt_off", "tgt",
])


@njit(**SERIAL)
def sort_unique(buf, a, b):
    """Sort buf[a:b] ascending and drop repeats in place; return the new end."""
    if b - a > 48:
        buf[a:b] = np.sort(buf[a:b])
    else:
        for i in range(a + 1, b):
            v = buf[i]
            j = i - 1
            while j >= a and buf[j] > v:
                buf[j + 1] = buf[j]
                j -= 1
            buf[j + 1] = v
    if b - a < 2:
        return b
    w = a + 1
    for i in range(a + 1, b):
        if buf[i] != buf[w - 1]:
            buf[w] = buf[i]
            w += 1
    return w


@njit(**SERIAL)
def match_chunk(t, offsets, data, reps, k0, k1, max_words, out, cap, gout, gcap, start, count,
                gstart, gcount):
    """Match the keys reps[k0:k1], writing into out[cap0:cap1] and gout[gcap0:gcap1].

    ``cap``/``gcap`` are (start, end) of this chunk's regions. Per key k it sets start[k],
    count[k] (destination ids, ascending and unique) and gstart[k], gcount[k] (group-binding
    indices in pattern order). Returns False when a region ran out of room (the caller
    retries with more).

    The whole per-key procedure is written out in this one function on purpose: numba
    reference-counts arrays passed to helper functions with atomic operations, and when two
    threads touch the same table arrays those atomics cost more than the matching itself.
    """
    # the table's arrays as plain locals, read once: no reference counting in the loops
    (dialect, sep, max_depth, max_specs, n_words, n_dest, use_bitmap,
     word_offsets, word_data, word_slots, word_hashes, lut_dense, lut_keys, lut_vals,
     len_root_off, len_roots, node_kind, node_spec, node_slot, node_star, node_qoff,
     lq_spec, lq_slot, lq_star, node_lenoff, node_lencap, len_rows, node_nw, node_sum, node_all,
     node_boff, bits, leaf_pats, leaf_act, anchor_node, pat_flags, pat_p,
     pat_s, pat_minlen, pat_word_off, pat_words, pat_seg_off, seg_off, seg_words,
     pat_tgt_off, tgt) = t
    words = np.empty(max_words + 1, np.int32)
    stack = np.empty(max_depth + 2, np.int64)
    rows = np.empty(max_specs + 1, np.int64)
    bm_words = (n_dest + 63) // 64 if use_bitmap else 0
    # a summary bit per bitmap word pays off only when the bitmap is too long to scan
    sm_words = (n_dest + 4095) // 4096 if use_bitmap and bm_words > 64 else 0
    use_summary = sm_words > 0
    bitmap = np.zeros(bm_words, np.uint64)
    summary = np.zeros(sm_words, np.uint64)
    dense = lut_dense.shape[0] > 0
    lut_mask = np.uint64(lut_keys.shape[0] - 1)
    word_mask = np.uint64(word_slots.shape[0] - 1)
    n_classes = len_root_off.shape[0] - 2
    pos = cap[0]
    o_end = cap[1]
    gpos = gcap[0]
    g_end = gcap[1]
    for k in range(k0, k1):
        i = reps[k]
        a0 = offsets[i]
        a1 = offsets[i + 1]
        nd = pos
        ng = gpos
        overflow = False
        start[k] = pos
        gstart[k] = gpos
        count[k] = 0
        gcount[k] = 0
        # -- a topic mosquitto would refuse routes nowhere
        if dialect == MQTT:
            ok = a1 > a0 and a1 - a0 <= 65535
            j = a0
            while ok and j < a1:
                c = np.int64(data[j])
                if c < 0x80:
                    if c <= 0x1F or c == 0x7F or c == 0x2B or c == 0x23:  # controls, '+', '#'
                        ok = False
                    j += 1
                    continue
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
                        or 0xD800 <= cp <= 0xDFFF or 0x7F <= cp <= 0x9F or 0xFDD0 <= cp <= 0xFDEF
                        or cp & 0xFFFF >= 0xFFFE):
                    ok = False
                j += ln
            if not ok:
                continue
        # -- split into words and look each up in the dictionary (-1: not a literal word)
        n = 0
        nowhere = False
        if not (a1 == a0 and dialect == AMQP):
            ws = a0
            for j in range(a0, a1 + 1):
                if j < a1 and data[j] != sep:
                    continue
                if dialect == NATS and j == ws:
                    nowhere = True  # an empty token: no interest
                    break
                h = hash_bytes(data, ws, j)
                s = h & word_mask
                wid = -1
                for _ in range(word_slots.shape[0]):
                    cand = word_slots[s]
                    if cand < 0:
                        break
                    if word_hashes[cand] == h and word_offsets[cand + 1] - word_offsets[cand] == j - ws:
                        same = True
                        b0 = word_offsets[cand]
                        for q in range(j - ws):
                            if word_data[b0 + q] != data[ws + q]:
                                same = False
                                break
                        if same:
                            wid = cand
                            break
                    s = (s + np.uint64(1)) & word_mask
                words[n] = wid
                n += 1
                ws = j + 1
        if nowhere:
            continue
        dollar = a1 > a0 and data[a0] == 36  # '$'
        li = min(n, n_classes)
        # -- walk the groups a key of n words can match; the anchored patterns come last
        r = len_root_off[li]
        r_end = len_root_off[li + 1]
        top = 0
        anchor_i = 0
        while True:
            if top == 0:
                if r < r_end:
                    stack[0] = len_roots[r]
                    top = 1
                    r += 1
                else:
                    # then the anchored patterns listed under each distinct word of the key
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
            if kind == SPLIT:
                spec = node_spec[node]
                wi = spec if spec >= 0 else n + spec
                w = words[wi] if 0 <= wi < n else -1
                if w >= 0:
                    child = -1
                    if dense:
                        child = lut_dense[node_slot[node] * n_words + w]
                    else:
                        key = np.int64(node_slot[node]) * n_words + w
                        s = mix64(np.uint64(key)) & lut_mask
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
            if kind == SMALL:
                n_cand = node_nw[node]
            else:
                lenoff = node_lenoff[node]
                first = len_rows[lenoff + min(n, node_lencap[node])] if lenoff >= 0 else node_all[node]
                if first < 0:
                    continue
                qa = node_qoff[node]
                qb = node_qoff[node + 1]
                dead = False
                for q in range(qa, qb):
                    spec = lq_spec[q]
                    wi = spec if spec >= 0 else n + spec
                    w = words[wi] if 0 <= wi < n else -1
                    row = -1
                    if w >= 0:
                        if dense:
                            row = lut_dense[lq_slot[q] * n_words + w]
                        else:
                            key = np.int64(lq_slot[q]) * n_words + w
                            s = mix64(np.uint64(key)) & lut_mask
                            while lut_keys[s] >= 0:
                                if lut_keys[s] == key:
                                    row = lut_vals[s]
                                    break
                                s = (s + np.uint64(1)) & lut_mask
                    if row < 0:
                        row = lq_star[q]
                        if row < 0:
                            dead = True
                            break
                    rows[q - qa] = row
                if dead:
                    continue
                n_cand = 0
            nq = 0 if kind == SMALL else qb - qa
            boff = node_boff[node]
            nw = node_nw[node] if kind != SMALL else 1
            summed = kind == LEAF and node_sum[node] != 0
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
                    c = np.int64(trailing_zeros(cmask))
                    cmask &= cmask - np.uint64(1)
                else:
                    c += 1
                    if c >= nw:
                        break
                if kind == SMALL:
                    acc = np.uint64(0)
                else:
                    acc = bits[first + c]
                    for q in range(nq):
                        if acc == 0:
                            break
                        acc &= bits[rows[q] + c]
                m = 0
                while acc != 0 or (kind == SMALL and m < n_cand):
                    if kind == SMALL:
                        pid = leaf_pats[boff + m]
                        m += 1
                        # prefix, suffix and length, checked directly
                        pp = pat_p[pid]
                        ps = pat_s[pid]
                        if (pat_flags[pid] & OPEN_ENDED) != 0:
                            if n < pat_minlen[pid]:
                                continue
                        elif n != pp:
                            continue
                        fits = True
                        wa = pat_word_off[pid]
                        for q in range(pp):
                            w = pat_words[wa + q]
                            if w != STAR and w != words[q]:
                                fits = False
                                break
                        if fits:
                            for q in range(ps):
                                w = pat_words[wa + pp + q]
                                if w != STAR and w != words[n - ps + q]:
                                    fits = False
                                    break
                        if not fits:
                            continue
                    else:
                        bit = np.int64(trailing_zeros(acc))
                        acc &= acc - np.uint64(1)
                        act = leaf_act[boff + c * 64 + bit]
                        if act >= 0 and use_bitmap:
                            # one plain destination and nothing left to check
                            bitmap[act >> 6] |= np.uint64(1) << np.uint64(act & 63)
                            if use_summary:
                                summary[act >> 12] |= np.uint64(1) << np.uint64((act >> 6) & 63)
                            continue
                        pid = leaf_pats[boff + c * 64 + bit]
                    # the last checks: the '$' rule, then middles placed greedily leftmost
                    # (optimal for fixed-length segments separated by '#')
                    flags = pat_flags[pid]
                    if (flags & NO_DOLLAR) != 0 and dollar:
                        continue
                    if (flags & HAS_MIDDLES) != 0:
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
                                    if w != STAR and w != words[x + q]:
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
                            if use_bitmap:
                                bitmap[d >> 6] |= np.uint64(1) << np.uint64(d & 63)
                                if use_summary:
                                    summary[d >> 12] |= np.uint64(1) << np.uint64((d >> 6) & 63)
                            elif nd < o_end:
                                out[nd] = d
                                nd += 1
                            else:
                                overflow = True
                        elif ng < g_end:
                            gout[ng] = -d - 1
                            ng += 1
                        else:
                            overflow = True
        # -- destinations out in ascending order
        if use_bitmap:
            for sw in range(sm_words if use_summary else 1):
                sbits = np.uint64(0)
                if use_summary:
                    sbits = summary[sw]
                    summary[sw] = 0
                wi = -1
                while True:
                    # the next bitmap word that may hold bits: from the summary, or every word
                    if use_summary:
                        if sbits == 0:
                            break
                        wi = (sw << 6) + np.int64(trailing_zeros(sbits))
                        sbits &= sbits - np.uint64(1)
                    else:
                        wi += 1
                        if wi >= bm_words:
                            break
                    bw = bitmap[wi]
                    if bw == 0:
                        continue
                    bitmap[wi] = 0
                    while bw != 0:
                        if nd < o_end:
                            out[nd] = np.int32((wi << 6) + np.int64(trailing_zeros(bw)))
                            nd += 1
                        else:
                            overflow = True
                        bw &= bw - np.uint64(1)
        else:
            if nd - pos > 1:
                out[pos:nd] = np.sort(out[pos:nd])
                wq = pos + 1
                for q in range(pos + 1, nd):
                    if out[q] != out[wq - 1]:
                        out[wq] = out[q]
                        wq += 1
                nd = wq
        if overflow:
            return False
        count[k] = nd - pos
        gcount[k] = ng - gpos
        pos = nd
        gpos = ng
    return True


def match_unique(t, offsets, data, reps, max_words, per_key, g_per_key, nchunks, spare=None):
    """Match the keys ``reps`` (item indices of the column) in parallel chunks.

    Keys are split into ``nchunks`` chunks (a few per thread, at most one per key), run by
    :func:`match_chunk` on a thread pool; each chunk writes into its own region of one output
    buffer sized ``per_key`` targets per key (``g_per_key`` group targets). Returns (out,
    start, count, gout, gstart, gcount, overflowed): chunks that ran out of room are flagged
    in ``overflowed`` and left incomplete, for the caller to redo with more room.

    ``spare``: an int32 array from an earlier call to write into when it is large enough;
    reusing it spares the page faults of fresh memory (tens of MB for large batches).
    """
    u = reps.shape[0]
    bounds = np.arange(nchunks + 1, dtype=np.int64) * u // nchunks
    keys_in = np.diff(bounds)
    cap = np.zeros(nchunks + 1, np.int64)
    np.cumsum(keys_in * per_key + 64, out=cap[1:])
    gcap = np.zeros(nchunks + 1, np.int64)
    np.cumsum(keys_in * g_per_key + (64 if g_per_key > 0 else 0), out=gcap[1:])
    out = spare[:cap[-1]] if spare is not None and spare.shape[0] >= cap[-1] else np.empty(cap[-1], np.int32)
    gout = np.empty(gcap[-1], np.int32)
    start = np.zeros(u, np.int64)
    count = np.zeros(u, np.int64)
    gstart = np.zeros(u, np.int64)
    gcount = np.zeros(u, np.int64)

    def run(c):
        return match_chunk(t, offsets, data, reps, bounds[c], bounds[c + 1], max_words, out,
                           cap[c:c + 2], gout, gcap[c:c + 2], start, count, gstart, gcount)

    overflowed = ~np.asarray(map_chunks(run, nchunks), np.bool_)
    return out, start, count, gout, gstart, gcount, overflowed


@njit(**PARALLEL)
def compact(buf, start, count):
    """Gather per-item slices buf[start[k]:start[k]+count[k]] into one CSR (offsets, values)."""
    u = start.shape[0]
    offsets = np.empty(u + 1, np.int64)
    offsets[0] = 0
    for k in range(u):
        offsets[k + 1] = offsets[k] + count[k]
    out = np.empty(offsets[u], buf.dtype)
    for k in prange(u):
        a = start[k]
        b = offsets[k]
        for j in range(count[k]):
            out[b + j] = buf[a + j]
    return offsets, out
