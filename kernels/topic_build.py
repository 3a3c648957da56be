"""Compile-time kernels for topic tables: bitset leaves and the (slot, word) lookup table."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._config import SERIAL
from .keys import mix64


@njit(**SERIAL)
def _leaf_rows(W, order, a, b, qlist):
    """Rows a leaf of W[order[a:b]] needs: one 'all' row, per position a star row if any
    pattern has '*' there, and one row per distinct literal word there."""
    rows = 1
    nb = b - a
    ws = np.empty(nb, np.int32)
    for qi in range(qlist.shape[0]):
        q = qlist[qi]
        star = False
        for j in range(nb):
            ws[j] = W[order[a + j], q]
            if ws[j] < 0:
                star = True
        ws.sort()
        prev = -100
        for j in range(nb):
            if ws[j] >= 0 and ws[j] != prev:
                rows += 1
                prev = ws[j]
        if star:
            rows += 1
    return rows


@njit(**SERIAL)
def leaf_sizes(W, order, run_starts, qlist):
    """Rows per run (see _leaf_rows); a run is order[run_starts[r]:run_starts[r+1]]."""
    r = run_starts.shape[0] - 1
    out = np.empty(r, np.int64)
    for k in range(r):
        out[k] = _leaf_rows(W, order, run_starts[k], run_starts[k + 1], qlist)
    return out


#: Leaves of this many 64-pattern chunks (up to 64) give each row a leading summary word whose
#: bit c says whether chunk c of the row has any bit set.
SUMMARY_MIN_WORDS = 4


@njit(**SERIAL)
def build_leaves(W, pids, minlen, order, run_starts, qlist, len_cap, slot_base, bits_base, pats_base):
    """Build one bitset leaf per run of pattern rows.

    Args:
        W: int32[n, npos] word ids per pattern row and position (STAR = -2).
        pids: int32[n] pattern id of each row.
        order, run_starts: run k is rows order[run_starts[k]:run_starts[k+1]].
        qlist: int32 positions the leaves index.
        minlen: int32[n] the fewest key words each pattern row can match.
        len_cap: -1 for leaves of fixed-length patterns; else each leaf gets length rows
            0..len_cap (row L: the patterns with minlen <= L; -1 where none).
        slot_base: first lookup slot; leaf k uses slots slot_base + k*len(qlist) + qi.
        bits_base, pats_base: where this call's bits and pattern lists will start globally.

    Returns (nw, has_sum, allrow, boff, lq_star, len_rows, bits, pats, lut_slot, lut_word,
    lut_val): per leaf its words per row, whether its rows carry a summary word (just before
    each row's offset), 'all' row offset and pattern-list offset; per (leaf, position)
    the star row (-1 if none); per leaf len_cap+1 length rows (if len_cap >= 0); the bit rows;
    the pattern ids in leaf order; and the lookup entries (slot, word) -> row offset. Offsets
    are global (based at bits_base / pats_base).
    """
    r = run_starts.shape[0] - 1
    k_pos = qlist.shape[0]
    nrows = leaf_sizes(W, order, run_starts, qlist)
    nw = np.empty(r, np.int64)
    has_sum = np.zeros(r, np.int8)
    row_base = np.empty(r + 1, np.int64)
    row_base[0] = 0
    n_lut = 0
    for k in range(r):
        nb = run_starts[k + 1] - run_starts[k]
        nw[k] = (nb + 63) // 64
        if SUMMARY_MIN_WORDS <= nw[k] <= 64:
            has_sum[k] = 1
        row_base[k + 1] = row_base[k] + (nrows[k] + len_cap + 1) * (nw[k] + has_sum[k])
        n_lut += nrows[k] - 1
    bits = np.zeros(row_base[r], np.uint64)
    pats = np.empty(run_starts[r] - run_starts[0], np.int32)
    allrow = np.empty(r, np.int64)
    boff = np.empty(r, np.int64)
    lq_star = np.full(r * k_pos, -1, np.int64)
    len_rows = np.full(r * (len_cap + 1), -1, np.int64)
    lut_slot = np.empty(n_lut, np.int64)
    lut_word = np.empty(n_lut, np.int64)
    lut_val = np.empty(n_lut, np.int64)
    e = 0
    for k in range(r):
        a = run_starts[k]
        b = run_starts[k + 1]
        nb = b - a
        w_k = nw[k]
        hs = np.int64(has_sum[k])
        stride = w_k + hs
        cur = row_base[k]
        boff[k] = pats_base + (a - run_starts[0])
        for j in range(nb):
            pats[a - run_starts[0] + j] = pids[order[a + j]]
        # the 'all' row: the leaf's first nb bits
        row = cur + hs
        cur += stride
        allrow[k] = bits_base + row
        for j in range(nb):
            bits[row + j // 64] |= np.uint64(1) << np.uint64(j % 64)
        # length row L marks the patterns with minlen <= L; lengths that add no pattern
        # share the previous row
        prev = -1
        for L in range(len_cap + 1):
            grows = False
            for j in range(nb):
                if minlen[order[a + j]] == L:
                    grows = True
                    break
            if grows:
                row = cur + hs
                cur += stride
                if prev >= 0:
                    for c in range(w_k):
                        bits[row + c] = bits[prev + c]
                for j in range(nb):
                    if minlen[order[a + j]] == L:
                        bits[row + j // 64] |= np.uint64(1) << np.uint64(j % 64)
                prev = row
            if prev >= 0:
                len_rows[k * (len_cap + 1) + L] = bits_base + prev
        ws = np.empty(nb, np.int64)
        for qi in range(k_pos):
            q = qlist[qi]
            for j in range(nb):
                ws[j] = W[order[a + j], q]
            star_row = -1
            for j in range(nb):
                if ws[j] < 0:
                    if star_row < 0:
                        star_row = cur + hs
                        cur += stride
                    bits[star_row + j // 64] |= np.uint64(1) << np.uint64(j % 64)
            if star_row >= 0:
                lq_star[k * k_pos + qi] = bits_base + star_row
            idx = np.argsort(ws, kind="mergesort")
            j = 0
            while j < nb:
                w = ws[idx[j]]
                if w < 0:
                    j += 1
                    continue
                row = cur + hs
                cur += stride
                if star_row >= 0:
                    for c in range(w_k):
                        bits[row + c] = bits[star_row + c]
                while j < nb and ws[idx[j]] == w:
                    jj = idx[j]
                    bits[row + jj // 64] |= np.uint64(1) << np.uint64(jj % 64)
                    j += 1
                lut_slot[e] = slot_base + k * k_pos + qi
                lut_word[e] = w
                lut_val[e] = bits_base + row
                e += 1
        if hs:
            # summary words: bit c set when chunk c of the row is non-zero
            for rs in range(row_base[k], cur, stride):
                sm = np.uint64(0)
                for c in range(w_k):
                    if bits[rs + 1 + c] != 0:
                        sm |= np.uint64(1) << np.uint64(c)
                bits[rs] = sm
    return nw, has_sum, allrow, boff, lq_star, len_rows, bits[:cur], pats, lut_slot[:e], lut_word[:e], lut_val[:e]


@njit(**SERIAL)
def build_hash_lut(slots, words, vals, n_words):
    """An open-addressing table from key slot*n_words+word to val (keys -1 = empty)."""
    n = slots.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    keys = np.full(size, -1, np.int64)
    out = np.full(size, -1, np.int32)
    mask = np.uint64(size - 1)
    for i in range(n):
        key = slots[i] * n_words + words[i]
        s = mix64(np.uint64(key)) & mask
        while keys[s] >= 0:
            s = (s + np.uint64(1)) & mask
        keys[s] = key
        out[s] = vals[i]
    return keys, out
