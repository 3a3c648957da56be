"""Bulk tokenizing of binding patterns: validation, word interning and pattern shapes.

One pass over all patterns (joined into one byte buffer) replaces a Python loop per binding,
so large routing tables compile quickly. Rules match fastroute/_topic_parse.py, which stays
the readable statement of them and produces the error messages: a pattern this kernel marks
invalid is re-parsed there to raise the PatternError.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import SERIAL
from .keys import bytes_equal, hash_bytes, mix64
from .topic import AMQP, MQTT, NATS, STAR

HASH = -3

#: status codes (0 = valid)
BAD_UTF8 = 1
TOO_LONG = 2
BAD_WILDCARD = 3
EMPTY = 4
EMPTY_TOKEN = 5
WHITESPACE = 6
TOO_MANY_HASHES = 7


@njit(**SERIAL)
def _utf8_ok(data, a, b, mosquitto):
    """Well-formed UTF-8 (with mosquitto's extra refusals when ``mosquitto``)."""
    k = a
    while k < b:
        c = np.int64(data[k])
        if c < 0x80:
            if mosquitto and (c <= 0x1F or c == 0x7F):
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
        if k + ln > b:
            return False
        for j in range(1, ln):
            x = np.int64(data[k + j])
            if x & 0xC0 != 0x80:
                return False
            cp = (cp << 6) | (x & 0x3F)
        if (ln == 3 and cp < 0x800) or (ln == 4 and (cp < 0x10000 or cp > 0x10FFFF)):
            return False
        if 0xD800 <= cp <= 0xDFFF:
            return False
        if mosquitto and (0x7F <= cp <= 0x9F or 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFF >= 0xFFFE):
            return False
        k += ln
    return True


@njit(**SERIAL)
def tokenize_patterns(offsets, data, dialect, max_hash):
    """Validate and tokenize every pattern.

    Args:
        offsets, data: the patterns (for MQTT shared subscriptions, just their filters).
        dialect: AMQP / MQTT / NATS.
        max_hash: AMQP only, the most '#' words allowed (-1: any number).

    Returns (status, tok_off, toks, word_offsets, word_data): per pattern a status (0 =
    valid); tokens CSR with literal words as word ids (in order of first appearance), STAR or
    HASH; the distinct literal words as a binary column indexed by word id.
    """
    n = offsets.shape[0] - 1
    total = 0
    for i in range(n):
        total += offsets[i + 1] - offsets[i] + 2
    status = np.zeros(n, np.int32)
    tok_off = np.zeros(n + 1, np.int64)
    toks = np.empty(total, np.int32)
    size = 16
    while size < 2 * total:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, np.int32)
    slot_hash = np.zeros(size, np.uint64)
    word_start = np.empty(total, np.int64)
    word_end = np.empty(total, np.int64)
    n_words = 0
    sep = 47 if dialect == MQTT else 46
    t = 0
    for i in range(n):
        a = offsets[i]
        b = offsets[i + 1]
        t0 = t
        st = 0
        if dialect == AMQP:
            if b - a > 255:
                st = TOO_LONG
            elif not _utf8_ok(data, a, b, False):
                st = BAD_UTF8
        elif dialect == MQTT:
            if b == a:
                st = EMPTY
            elif b - a > 65535:
                st = TOO_LONG
            elif not _utf8_ok(data, a, b, True):
                st = BAD_UTF8
        else:
            if b == a:
                st = EMPTY
        if st == 0 and not (dialect == AMQP and b == a):
            start = a
            hashes = 0
            for k in range(a, b + 1):
                if k < b and data[k] != sep:
                    if dialect == NATS and (data[k] == 32 or data[k] == 9 or data[k] == 10
                                            or data[k] == 13 or data[k] == 12):
                        st = WHITESPACE
                        break
                    continue
                ln = k - start
                last = k == b
                if ln == 1 and ((dialect != MQTT and data[start] == 42) or (dialect == MQTT and data[start] == 43)):
                    toks[t] = STAR
                    t += 1
                elif ln == 1 and dialect != NATS and data[start] == 35:
                    if dialect == MQTT and not last:
                        st = BAD_WILDCARD
                        break
                    toks[t] = HASH
                    t += 1
                    hashes += 1
                elif ln == 1 and dialect == NATS and data[start] == 62:
                    if not last:
                        st = BAD_WILDCARD
                        break
                    toks[t] = STAR
                    toks[t + 1] = HASH
                    t += 2
                else:
                    if dialect == NATS and ln == 0:
                        st = EMPTY_TOKEN
                        break
                    if dialect == MQTT:
                        bad = False
                        for j in range(start, k):
                            if data[j] == 43 or data[j] == 35:
                                bad = True
                        if bad:
                            st = BAD_WILDCARD
                            break
                    h = hash_bytes(data, start, k)
                    s = h & mask
                    wid = -1
                    while slots[s] >= 0:
                        j = slots[s]
                        if slot_hash[s] == h and bytes_equal(data, word_start[j], word_end[j], data, start, k):
                            wid = j
                            break
                        s = (s + np.uint64(1)) & mask
                    if wid < 0:
                        wid = n_words
                        slots[s] = wid
                        slot_hash[s] = h
                        word_start[wid] = start
                        word_end[wid] = k
                        n_words += 1
                    toks[t] = wid
                    t += 1
                start = k + 1
            if st == 0 and dialect == AMQP and max_hash >= 0 and hashes > max_hash:
                st = TOO_MANY_HASHES
        status[i] = st
        if st != 0:
            t = t0
        tok_off[i + 1] = t
    word_offsets = np.zeros(n_words + 1, np.int64)
    for w in range(n_words):
        word_offsets[w + 1] = word_offsets[w] + word_end[w] - word_start[w]
    word_data = np.empty(word_offsets[n_words], np.uint8)
    for w in range(n_words):
        for j in range(word_end[w] - word_start[w]):
            word_data[word_offsets[w] + j] = data[word_start[w] + j]
    return status, tok_off, toks[:t].copy(), word_offsets, word_data


@njit(**SERIAL)
def unique_patterns(tok_off, toks, flag):
    """Distinct (token sequence, flag) pairs: returns (pattern id per input, first input of
    each pattern id)."""
    n = tok_off.shape[0] - 1
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    slots = np.full(size, -1, np.int64)
    hashes = np.empty(n, np.uint64)
    pid = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    u = 0
    for i in range(n):
        h = mix64(np.uint64(flag[i]) + np.uint64(0x9E3779B97F4A7C15))
        for k in range(tok_off[i], tok_off[i + 1]):
            h = mix64(h ^ np.uint64(np.int64(toks[k]) & 0xFFFFFFFF))
        hashes[i] = h
        s = h & mask
        while True:
            j = slots[s]
            if j < 0:
                slots[s] = u
                first[u] = i
                pid[i] = u
                u += 1
                break
            f = first[j]
            same = hashes[f] == h and flag[f] == flag[i] and (
                tok_off[f + 1] - tok_off[f] == tok_off[i + 1] - tok_off[i])
            if same:
                for k in range(tok_off[i + 1] - tok_off[i]):
                    if toks[tok_off[f] + k] != toks[tok_off[i] + k]:
                        same = False
                        break
            if same:
                pid[i] = j
                break
            s = (s + np.uint64(1)) & mask
    return pid, first[:u].copy()


@njit(**SERIAL)
def pattern_shapes(tok_off, toks, rows):
    """Prefix / suffix / middles of the patterns tok[rows[k]].

    Returns (p, s, has_hash, minlen, lit_middles, word_off, words, pat_seg_off, seg_off,
    seg_words): per pattern its prefix and suffix lengths, whether it has '#', the fewest
    key words it matches, whether a middle holds a literal word; the prefix-then-suffix words
    (CSR); and the middle segments (CSR of CSR).
    """
    m = rows.shape[0]
    p = np.zeros(m, np.int32)
    s = np.zeros(m, np.int32)
    has_hash = np.zeros(m, np.bool_)
    minlen = np.zeros(m, np.int32)
    lit_mid = np.zeros(m, np.bool_)
    word_off = np.zeros(m + 1, np.int32)
    pat_seg_off = np.zeros(m + 1, np.int32)
    n_tok = 0
    for k in range(m):
        n_tok += tok_off[rows[k] + 1] - tok_off[rows[k]]
    words = np.empty(n_tok, np.int32)
    seg_off = np.zeros(n_tok + 1, np.int32)
    seg_words = np.empty(n_tok, np.int32)
    nw = 0
    ns = 0
    nsw = 0
    for k in range(m):
        a = tok_off[rows[k]]
        b = tok_off[rows[k] + 1]
        first = -1
        last = -1
        for j in range(a, b):
            if toks[j] == HASH:
                if first < 0:
                    first = j
                last = j
        if first < 0:
            p[k] = b - a
            for j in range(a, b):
                words[nw] = toks[j]
                nw += 1
            minlen[k] = b - a
        else:
            has_hash[k] = True
            p[k] = first - a
            s[k] = b - last - 1
            for j in range(a, first):
                words[nw] = toks[j]
                nw += 1
            for j in range(last + 1, b):
                words[nw] = toks[j]
                nw += 1
            mid = 0
            seg_start = first + 1
            for j in range(first + 1, last + 1):
                if toks[j] == HASH:
                    if j > seg_start:
                        for q in range(seg_start, j):
                            seg_words[nsw] = toks[q]
                            nsw += 1
                            if toks[q] >= 0:
                                lit_mid[k] = True
                        mid += j - seg_start
                        ns += 1
                        seg_off[ns] = nsw
                    seg_start = j + 1
            minlen[k] = p[k] + s[k] + mid
        word_off[k + 1] = nw
        pat_seg_off[k + 1] = ns
    return (p, s, has_hash, minlen, lit_mid, word_off, words[:nw].copy(), pat_seg_off,
            seg_off[:ns + 1].copy(), seg_words[:nsw].copy())
