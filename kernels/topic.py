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
* Patterns such as ``#.a.*.b.#`` constrain no position, only words somewhere in the middle;
  they are listed under one literal word of their middles (their *anchor*) and checked when
  the key contains that word.
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
from ._config import INLINE, PARALLEL, SERIAL
from .keys import hash_bytes, lookup_string, mix64

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
    "node_nw", "node_all", "node_boff",
    "bits", "leaf_pats", "leaf_act", "anchor_off", "anchor_pats",
    "pat_flags", "pat_p", "pat_s", "pat_minlen", "pat_word_off", "pat_words",
    "pat_seg_off", "seg_off", "seg_words",
    "pat_tgt_off", "tgt",
])


@njit(**INLINE)
def lut_get(lut_dense, lut_keys, lut_vals, n_words, slot, word):
    """The value stored for (slot, word), or -1."""
    if lut_dense.shape[0] > 0:
        return np.int64(lut_dense[slot * n_words + word])
    key = np.int64(slot) * n_words + word
    mask = np.uint64(lut_keys.shape[0] - 1)
    s = mix64(np.uint64(key)) & mask
    while True:
        k = lut_keys[s]
        if k == key:
            return np.int64(lut_vals[s])
        if k < 0:
            return np.int64(-1)
        s = (s + np.uint64(1)) & mask


@njit(**INLINE)
def spec_word(words, n, spec):
    """The key's word id at a spec (from the start if >= 0, from the end if < 0), or -1."""
    i = spec if spec >= 0 else n + spec
    if i < 0 or i >= n:
        return -1
    return words[i]


@njit(**SERIAL)
def middles_fit(pat_p, pat_s, pat_seg_off, seg_off, seg_words, pid, words, n):
    """Greedy, leftmost placement of a pattern's middle segments between prefix and suffix.

    Leftmost placement is optimal for fixed-length segments separated by '#', so a failure
    here means no placement exists.
    """
    pos = pat_p[pid]
    end = n - pat_s[pid]
    for g in range(pat_seg_off[pid], pat_seg_off[pid + 1]):
        a = seg_off[g]
        ln = seg_off[g + 1] - a
        found = False
        i = pos
        while i + ln <= end:
            ok = True
            for k in range(ln):
                w = seg_words[a + k]
                if w != STAR and w != words[i + k]:
                    ok = False
                    break
            if ok:
                found = True
                break
            i += 1
        if not found:
            return False
        pos = i + ln
    return True


@njit(**SERIAL)
def pattern_fits(pat_flags, pat_p, pat_s, pat_minlen, pat_word_off, pat_words, pid, words, n):
    """Whether a pattern's length, prefix and suffix accept the key (middles not checked)."""
    p = pat_p[pid]
    s = pat_s[pid]
    if (pat_flags[pid] & OPEN_ENDED) != 0:
        if n < pat_minlen[pid]:
            return False
    elif n != p:
        return False
    a = pat_word_off[pid]
    for k in range(p):
        w = pat_words[a + k]
        if w != STAR and w != words[k]:
            return False
    for k in range(s):
        w = pat_words[a + p + k]
        if w != STAR and w != words[n - s + k]:
            return False
    return True


@njit(**INLINE)
def split_words(t, data, k0, k1, words):
    """Tokenize key bytes into word ids; return the word count, or -1 if the key routes nowhere.

    AMQP: the empty key has zero words. NATS: a subject with an empty token has no interest.
    """
    if k1 == k0 and t.dialect == AMQP:
        return 0
    n = 0
    start = k0
    sep = t.sep
    for k in range(k0, k1 + 1):
        if k == k1 or data[k] == sep:
            if t.dialect == NATS and k == start:
                return -1
            h = hash_bytes(data, start, k)
            words[n] = lookup_string(t.word_slots, t.word_hashes, t.word_offsets, t.word_data,
                                     data, start, k, h)
            n += 1
            start = k + 1
    return n


@njit(**SERIAL)
def mqtt_topic_ok(data, k0, k1):
    """mosquitto's check of a PUBLISH topic: non-empty, no wildcards, valid restricted UTF-8."""
    if k1 == k0 or k1 - k0 > 65535:
        return False
    k = k0
    while k < k1:
        c = np.int64(data[k])
        if c < 0x80:
            if c <= 0x1F or c == 0x7F or c == 0x2B or c == 0x23:  # controls, '+', '#'
                return False
            k += 1
            continue
        if c & 0xE0 == 0xC0:
            if c < 0xC2:
                return False
            ln = 2
            cp = c & 0x1F
        elif c & 0xF0 == 0xE0:
            ln = 3
            cp = c & 0x0F
        elif c & 0xF8 == 0xF0:
            if c > 0xF4:
                return False
            ln = 4
            cp = c & 0x07
        else:
            return False
        if k + ln > k1:
            return False
        for j in range(1, ln):
            b = np.int64(data[k + j])
            if b & 0xC0 != 0x80:
                return False
            cp = (cp << 6) | (b & 0x3F)
        if (ln == 3 and cp < 0x800) or (ln == 4 and (cp < 0x10000 or cp > 0x10FFFF)):
            return False
        if 0xD800 <= cp <= 0xDFFF or 0x7F <= cp <= 0x9F or 0xFDD0 <= cp <= 0xFDEF:
            return False
        if cp & 0xFFFF >= 0xFFFE:
            return False
        k += ln
    return True


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


@njit(**INLINE)
def emit(t, pid, words, n, dollar, use_bitmap, bitmap, summary, out, nd, o1, gout, ng, g1, overflow):
    """Record the targets of a pattern whose prefix and suffix matched, after its last checks
    (the '$' rule, middles). Returns the updated (nd, ng, overflow)."""
    flags = t.pat_flags[pid]
    if (flags & NO_DOLLAR) != 0 and dollar:
        return nd, ng, overflow
    if (flags & HAS_MIDDLES) != 0 and not middles_fit(
            t.pat_p, t.pat_s, t.pat_seg_off, t.seg_off, t.seg_words, pid, words, n):
        return nd, ng, overflow
    for e in range(t.pat_tgt_off[pid], t.pat_tgt_off[pid + 1]):
        d = t.tgt[e]
        if d >= 0:
            if use_bitmap:
                bitmap[d >> 6] |= np.uint64(1) << np.uint64(d & 63)
                summary[d >> 12] |= np.uint64(1) << np.uint64((d >> 6) & 63)
            elif nd < o1:
                out[nd] = d
                nd += 1
            else:
                overflow = True
        elif ng < g1:
            gout[ng] = -d - 1
            ng += 1
        else:
            overflow = True
    return nd, ng, overflow


@njit(**INLINE)
def match_key(t, data, k0, k1, words, stack, rows, bitmap, summary, out, o0, o1, gout, g0, g1):
    """Match one key; write its destination ids to out[o0:o1] (ascending, unique) and its
    group targets to gout[g0:g1] (group-binding indices, in pattern order).

    ``bitmap``/``summary`` are per-thread scratch of n_dest bits and n_dest/4096 words, all
    zero on entry and on return (empty when the table sorts instead, ``use_bitmap`` 0).
    Returns (destinations written, group targets written), or (-1, -1) when a buffer is too
    small (the caller retries with more room).
    """
    if t.dialect == MQTT and not mqtt_topic_ok(data, k0, k1):
        return 0, 0
    n = split_words(t, data, k0, k1, words)
    if n < 0:
        return 0, 0
    dollar = k1 > k0 and data[k0] == 36  # '$'
    use_bitmap = summary.shape[0] > 0
    lut_dense = t.lut_dense
    lut_keys = t.lut_keys
    lut_vals = t.lut_vals
    n_words = t.n_words
    bits = t.bits
    li = min(n, t.len_root_off.shape[0] - 2)
    nd = o0
    ng = g0
    overflow = False
    for r in range(t.len_root_off[li], t.len_root_off[li + 1]):
        stack[0] = t.len_roots[r]
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            kind = t.node_kind[node]
            if kind == SMALL:
                boff = t.node_boff[node]
                for k in range(t.node_nw[node]):
                    pid = t.leaf_pats[boff + k]
                    if not pattern_fits(t.pat_flags, t.pat_p, t.pat_s, t.pat_minlen, t.pat_word_off,
                                        t.pat_words, pid, words, n):
                        continue
                    nd, ng, overflow = emit(t, pid, words, n, dollar, use_bitmap, bitmap, summary,
                                            out, nd, o1, gout, ng, g1, overflow)
                continue
            if kind == SPLIT:
                w = spec_word(words, n, t.node_spec[node])
                if w >= 0:
                    child = lut_get(lut_dense, lut_keys, lut_vals, n_words, t.node_slot[node], w)
                    if child >= 0:
                        stack[top] = child
                        top += 1
                if t.node_star[node] >= 0:
                    stack[top] = t.node_star[node]
                    top += 1
                continue
            # leaf: the length row (or the 'all' row), then one row per spec
            lenoff = t.node_lenoff[node]
            if lenoff >= 0:
                first = t.len_rows[lenoff + min(n, t.node_lencap[node])]
            else:
                first = t.node_all[node]
            if first < 0:
                continue
            qa = t.node_qoff[node]
            qb = t.node_qoff[node + 1]
            dead = False
            for j in range(qa, qb):
                w = spec_word(words, n, t.lq_spec[j])
                row = np.int64(-1)
                if w >= 0:
                    row = lut_get(lut_dense, lut_keys, lut_vals, n_words, t.lq_slot[j], w)
                if row < 0:
                    row = t.lq_star[j]
                    if row < 0:
                        dead = True
                        break
                rows[j - qa] = row
            if dead:
                continue
            nq = qb - qa
            nw = t.node_nw[node]
            boff = t.node_boff[node]
            for c in range(nw):
                acc = bits[first + c]
                for j in range(nq):
                    if acc == 0:
                        break
                    acc &= bits[rows[j] + c]
                while acc != 0:
                    bit = np.int64(trailing_zeros(acc))
                    acc &= acc - np.uint64(1)
                    act = t.leaf_act[boff + c * 64 + bit]
                    if act >= 0 and use_bitmap:
                        # a pattern with one plain destination and nothing left to check
                        bitmap[act >> 6] |= np.uint64(1) << np.uint64(act & 63)
                        summary[act >> 12] |= np.uint64(1) << np.uint64((act >> 6) & 63)
                    else:
                        nd, ng, overflow = emit(t, t.leaf_pats[boff + c * 64 + bit], words, n, dollar,
                                                use_bitmap, bitmap, summary, out, nd, o1, gout, ng, g1,
                                                overflow)
    # anchored patterns: checked when the key contains their anchor word (once per word)
    if t.anchor_pats.shape[0] > 0:
        for i in range(n):
            w = words[i]
            if w < 0 or t.anchor_off[w] == t.anchor_off[w + 1]:
                continue
            seen = False
            for j in range(i):
                if words[j] == w:
                    seen = True
                    break
            if seen:
                continue
            for k in range(t.anchor_off[w], t.anchor_off[w + 1]):
                pid = t.anchor_pats[k]
                if pattern_fits(t.pat_flags, t.pat_p, t.pat_s, t.pat_minlen, t.pat_word_off, t.pat_words,
                                pid, words, n):
                    nd, ng, overflow = emit(t, pid, words, n, dollar, use_bitmap, bitmap, summary,
                                            out, nd, o1, gout, ng, g1, overflow)
    if use_bitmap:
        # read the bitmap out in order, clearing it for the next key
        for sw in range(summary.shape[0]):
            sbits = summary[sw]
            if sbits == 0:
                continue
            summary[sw] = 0
            while sbits != 0:
                wi = (sw << 6) + np.int64(trailing_zeros(sbits))
                sbits &= sbits - np.uint64(1)
                b = bitmap[wi]
                bitmap[wi] = 0
                while b != 0:
                    if nd < o1:
                        out[nd] = np.int32((wi << 6) + np.int64(trailing_zeros(b)))
                        nd += 1
                    else:
                        overflow = True
                    b &= b - np.uint64(1)
    else:
        nd = sort_unique(out, o0, nd)
    if overflow:
        return -1, -1
    return nd - o0, ng - g0


@njit(**PARALLEL)
def match_unique(t, offsets, data, reps, max_words, per_key, g_per_key, nchunks):
    """Match the keys ``reps`` (item indices of the column) in parallel chunks.

    Keys are split into ``nchunks`` chunks (a few per thread, at most one per key); each
    chunk writes into its own region of one output buffer sized ``per_key`` targets per key
    (``g_per_key`` group targets). Returns (out, start, count, gout, gstart, gcount,
    overflowed): chunks that ran out of room are flagged in ``overflowed`` and left
    incomplete, for the caller to redo with more room.
    """
    u = reps.shape[0]
    cap = np.empty(nchunks + 1, np.int64)
    gcap = np.empty(nchunks + 1, np.int64)
    cap[0] = 0
    gcap[0] = 0
    for c in range(nchunks):
        keys_in = (c + 1) * u // nchunks - c * u // nchunks
        cap[c + 1] = cap[c] + keys_in * per_key + 64
        gcap[c + 1] = gcap[c] + keys_in * g_per_key + (64 if g_per_key > 0 else 0)
    out = np.empty(cap[nchunks], np.int32)
    gout = np.empty(gcap[nchunks], np.int32)
    start = np.zeros(u, np.int64)
    count = np.zeros(u, np.int64)
    gstart = np.zeros(u, np.int64)
    gcount = np.zeros(u, np.int64)
    overflowed = np.zeros(nchunks, np.bool_)
    depth = t.max_depth + 2
    n_bitmap = (t.n_dest + 63) // 64 if t.use_bitmap else 0
    n_summary = (t.n_dest + 4095) // 4096 if t.use_bitmap else 0
    for c in prange(nchunks):
        words = np.empty(max_words + 1, np.int32)
        stack = np.empty(depth, np.int64)
        rows = np.empty(t.max_specs + 1, np.int64)
        bitmap = np.zeros(n_bitmap, np.uint64)
        summary = np.zeros(n_summary, np.uint64)
        pos = cap[c]
        gpos = gcap[c]
        for k in range(c * u // nchunks, (c + 1) * u // nchunks):
            i = reps[k]
            m, g = match_key(t, data, offsets[i], offsets[i + 1], words, stack, rows, bitmap, summary,
                             out, pos, cap[c + 1], gout, gpos, gcap[c + 1])
            if m < 0:
                overflowed[c] = True
                break
            start[k] = pos
            count[k] = m
            gstart[k] = gpos
            gcount[k] = g
            pos += m
            gpos += g
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
