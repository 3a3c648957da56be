"""Compilation of parsed topic patterns into the flat arrays of kernels/topic.py's TopicTable."""

from __future__ import annotations

import numpy as np

from .kernels import topic as K
from .kernels.keys import build_string_table
from .kernels.topic_build import build_hash_lut, build_leaves, leaf_sizes

#: A leaf may spend this many bytes of bit rows per pattern (plus the fixed allowance below)
#: before it is split on one spec; it bounds the table to O(patterns) memory whatever the
#: vocabulary.
LEAF_BYTES_PER_PATTERN = 128
LEAF_BYTES_FIXED = 4096
#: The (slot, word) lookup is a dense array while it costs at most this many bytes per pattern.
DENSE_LUT_BYTES_PER_PATTERN = 64
#: Up to this many destinations a key's destinations collect in a bitmap, else they are sorted.
BITMAP_MAX_DEST = 1 << 18
#: The dense lookup is always allowed up to this size.
DENSE_LUT_MIN_BYTES = 1 << 18
#: Groups (or split children) of at most this many patterns are checked one by one.
SMALL_NODE_MAX = 4
#: Patterns with '#' whose prefix and suffix are both at most this long share one group.
SHORT_AFFIX = 4


class _Builder:
    """Accumulates nodes, bit rows and lookup entries while groups are compiled."""

    def __init__(self):
        self.n_nodes = 0
        self.n_slots = 0
        self.n_bits = 0
        self.n_pats = 0
        self.n_len = 0
        self.max_depth = 1
        self.max_specs = 1
        # per node, chunks in node-id order
        self.kind, self.spec, self.slot, self.nw, self.all, self.boff = ([] for _ in range(6))
        self.lenoff, self.lencap, self.npos, self.sum = [], [], [], []
        self.lq_spec, self.lq_slot, self.lq_star = [], [], []
        self.len_rows, self.bits, self.pats = [], [], []
        self.lut = []          # (slots, words, vals) chunks
        self.star_child = {}   # split node -> star child

    def leaves(self, g, order, qlist, run_starts):
        """Bulk-build one leaf per run of group g's rows; return the first leaf's node id."""
        r = run_starts.shape[0] - 1
        k = qlist.shape[0]
        slot_base = self.n_slots
        if k and order.shape[0] > 64:
            # order each leaf's patterns by their word at its most selective spec, wildcards
            # last: a key's row there then has few non-zero chunks, which the summary skips
            key = g.W[order, qlist[0]].astype(np.int64)
            key[key < 0] = np.iinfo(np.int64).max
            run_id = np.repeat(np.arange(r), np.diff(run_starts))
            order = order[np.lexsort((key, run_id))]
        nw, has_sum, allrow, boff, lq_star, len_rows, bits, pats, ls, lw, lv = build_leaves(
            g.W, g.pids, g.minlen, order, run_starts, qlist, g.len_cap, slot_base, self.n_bits,
            self.n_pats)
        first = self.n_nodes
        self.n_nodes += r
        self.n_slots += r * k
        self.n_bits += bits.shape[0]
        self.n_pats += pats.shape[0]
        self.max_specs = max(self.max_specs, k)
        self.kind.append(np.zeros(r, np.int8))
        self.spec.append(np.zeros(r, np.int32))
        self.slot.append(np.full(r, -1, np.int32))
        self.nw.append(nw)
        self.sum.append(has_sum)
        self.all.append(allrow)
        self.boff.append(boff)
        self.npos.append(np.full(r, k, np.int64))
        if g.len_cap >= 0:
            self.lenoff.append(self.n_len + np.arange(r, dtype=np.int64) * (g.len_cap + 1))
            self.n_len += len_rows.shape[0]
            self.len_rows.append(len_rows)
        else:
            self.lenoff.append(np.full(r, -1, np.int64))
        self.lencap.append(np.full(r, g.len_cap, np.int32))
        self.lq_spec.append(np.tile(g.specs[qlist], r))
        self.lq_slot.append(slot_base + np.arange(r * k, dtype=np.int64))
        self.lq_star.append(lq_star)
        self.bits.append(bits)
        self.pats.append(pats)
        self.lut.append((ls, lw, lv))
        return first

    def smalls(self, g, order, run_starts):
        """Build one small node (patterns checked one by one) per run; return the first id."""
        r = run_starts.shape[0] - 1
        first = self.n_nodes
        self.n_nodes += r
        base = int(run_starts[0])
        self.kind.append(np.full(r, 2, np.int8))
        self.spec.append(np.zeros(r, np.int32))
        self.slot.append(np.full(r, -1, np.int32))
        self.nw.append(np.diff(run_starts))
        self.sum.append(np.zeros(r, np.int8))
        self.all.append(np.full(r, -1, np.int64))
        self.boff.append(self.n_pats + run_starts[:-1] - base)
        self.npos.append(np.zeros(r, np.int64))
        self.lenoff.append(np.full(r, -1, np.int64))
        self.lencap.append(np.full(r, -1, np.int32))
        pats = g.pids[order[base:run_starts[-1]]]
        self.pats.append(pats)
        self.n_pats += pats.shape[0]
        return first

    def split(self, spec):
        node = self.n_nodes
        self.n_nodes += 1
        slot = self.n_slots
        self.n_slots += 1
        self.kind.append(np.ones(1, np.int8))
        self.spec.append(np.full(1, spec, np.int32))
        self.slot.append(np.full(1, slot, np.int32))
        self.lencap.append(np.full(1, -1, np.int32))
        self.sum.append(np.zeros(1, np.int8))
        for lst, val in ((self.nw, 0), (self.all, -1), (self.boff, -1), (self.npos, 0), (self.lenoff, -1)):
            lst.append(np.full(1, val, np.int64))
        return node, slot


class _Group:
    """Patterns compiled together: W[row, q] is the word (or STAR / ANY) a pattern row needs
    at spec ``specs[q]``; ``minlen`` the fewest key words each row can match."""

    def __init__(self, pids, W, specs, minlen, len_cap):
        self.pids = np.asarray(pids, np.int32)
        self.W = W
        self.specs = np.asarray(specs, np.int32)
        self.minlen = np.asarray(minlen, np.int32)
        self.len_cap = len_cap


def _by_selectivity(g, rows, qlist):
    """Order specs so the ones fewest patterns leave open come first: a key's AND of rows
    then reaches zero, and stops, sooner."""
    open_count = (g.W[rows][:, qlist] < 0).sum(axis=0)
    return qlist[np.argsort(open_count, kind="stable")]


def _fits(nrows, nb):
    return nrows * ((nb + 63) // 64) * 8 <= LEAF_BYTES_PER_PATTERN * nb + LEAF_BYTES_FIXED


def _build_node(b: _Builder, g: _Group, rows, qlist, depth):
    """Compile the patterns g.W[rows] over specs qlist; return the node id."""
    b.max_depth = max(b.max_depth, depth)
    one_run = np.array([0, rows.shape[0]], np.int64)
    if rows.shape[0] <= SMALL_NODE_MAX:
        return b.smalls(g, rows, one_run)
    if qlist.shape[0] == 0 or _fits(int(leaf_sizes(g.W, rows, one_run, qlist)[0]), rows.shape[0]):
        return b.leaves(g, rows, _by_selectivity(g, rows, qlist), one_run)
    # split on the spec with the most distinct literal words
    sub = g.W[rows][:, qlist]
    distinct = [np.unique(col[col >= 0]).shape[0] for col in sub.T]
    qi = int(np.argmax(distinct))
    q = int(qlist[qi])
    rest = np.delete(qlist, qi)
    node, slot = b.split(int(g.specs[q]))
    col = g.W[rows, q]
    lit = rows[col >= 0]
    star = rows[col < 0]
    if lit.shape[0]:
        lcol = g.W[lit, q]
        order = np.argsort(lcol, kind="stable")
        lit = lit[order]
        lcol = lcol[order]
        bounds = np.flatnonzero(np.diff(lcol)) + 1
        starts = np.concatenate(([0], bounds, [lit.shape[0]])).astype(np.int64)
        words = lcol[starts[:-1]]
        sizes = leaf_sizes(g.W, lit, starts, rest)
        nbs = np.diff(starts)
        ok = sizes * ((nbs + 63) // 64) * 8 <= LEAF_BYTES_PER_PATTERN * nbs + LEAF_BYTES_FIXED
        children = np.empty(words.shape[0], np.int64)
        small = nbs <= SMALL_NODE_MAX
        if small.any():
            runs = np.flatnonzero(small)
            order2 = np.concatenate([lit[starts[r]:starts[r + 1]] for r in runs])
            starts2 = np.concatenate(([0], np.cumsum(nbs[runs]))).astype(np.int64)
            children[runs] = b.smalls(g, order2, starts2) + np.arange(runs.shape[0])
            ok &= ~small
        if ok.any():
            runs = np.flatnonzero(ok)
            if runs.shape[0] < words.shape[0]:
                order2 = np.concatenate([lit[starts[r]:starts[r + 1]] for r in runs])
            else:
                order2 = lit
            starts2 = np.concatenate(([0], np.cumsum(nbs[runs]))).astype(np.int64)
            first = b.leaves(g, order2, _by_selectivity(g, order2, rest), starts2)
            children[runs] = first + np.arange(runs.shape[0])
            b.max_depth = max(b.max_depth, depth + 1)
        for r in np.flatnonzero(~ok & ~small):
            children[r] = _build_node(b, g, lit[starts[r]:starts[r + 1]], rest, depth + 1)
        b.lut.append((np.full(words.shape[0], slot, np.int64), words.astype(np.int64), children))
    b.star_child[node] = _build_node(b, g, star, rest, depth + 1) if star.shape[0] else -1
    return node


def _groups(P, skip):
    """Split patterns into groups: fixed length by length; '#' ones by (p, s) unless both
    are short, in which case they share one group. Yields (group, the fewest key words it
    can match, whether longer keys can match too). ``P`` holds the pattern shapes; patterns
    marked in ``skip`` are left out."""
    p, s, has_hash = P["p"], P["s"], P["has_hash"]
    ids = np.arange(p.shape[0])
    keep = ~skip
    for L in np.unique(p[keep & ~has_hash]).tolist():
        pids = ids[keep & ~has_hash & (p == L)]
        W = P["words"][P["word_off"][pids][:, None] + np.arange(L)].astype(np.int32)
        yield (_Group(pids, W.reshape(pids.shape[0], L), np.arange(L), np.full(pids.shape[0], L), -1),
               L, False)
    hashed = keep & has_hash
    short = hashed & (p <= SHORT_AFFIX) & (s <= SHORT_AFFIX)
    sets = [ids[short]] if short.any() else []
    long_ = hashed & ~short
    if long_.any():
        keys = np.unique(np.stack([p[long_], s[long_]], axis=1), axis=0)
        sets += [ids[long_ & (p == kp) & (s == ks)] for kp, ks in keys.tolist()]
    for pids in sets:
        pp, ss, off = p[pids], s[pids], P["word_off"][pids]
        Pm, Sm = int(pp.max()), int(ss.max())
        W = np.full((pids.shape[0], Pm + Sm), K.ANY, np.int32)
        for j in range(Pm):
            m = pp > j
            W[m, j] = P["words"][off[m] + j]
        for k in range(Sm):
            m = ss > k
            W[m, Pm + k] = P["words"][off[m] + pp[m] + ss[m] - 1 - k]
        minlen = P["minlen"][pids]
        specs = list(range(Pm)) + [-(k + 1) for k in range(Sm)]
        yield _Group(pids, W, specs, minlen, int(minlen.max())), int(minlen.min()), True


def build_table(tok_off, toks, rows, no_dollar, pat_tgt_off, tgt, word_offsets, word_data,
                n_dest: int, dialect: int):
    """Compile tokenized patterns into a TopicTable.

    Args:
        tok_off, toks: the tokens of every binding (kernels/topic_parse.py).
        rows: per pattern id, the binding row holding its tokens.
        no_dollar: per pattern id, whether it must not match keys starting with '$'.
        pat_tgt_off, tgt: per pattern id its targets: destination ids (>= 0), or -(k+1) for
            group-binding k.
        word_offsets, word_data: the literal words, indexed by word id.
        n_dest: the number of destination ids.
        dialect: kernels.topic.AMQP / MQTT / NATS.
    """
    from .kernels.topic_parse import pattern_shapes

    (p, s, has_hash, minlen, lit_mid, word_off, words, pat_seg_off, seg_off,
     seg_words) = pattern_shapes(tok_off, toks, rows)
    P = dict(p=p, s=s, has_hash=has_hash, minlen=minlen, word_off=word_off, words=words)
    n_pat = rows.shape[0]
    n_words = word_offsets.shape[0] - 1
    # middles of '*' alone are implied by the minimum length; only literal ones need a check
    flags = (np.where(lit_mid, K.HAS_MIDDLES, 0) | np.where(no_dollar, K.NO_DOLLAR, 0)
             | np.where(has_hash, K.OPEN_ENDED, 0)).astype(np.uint8)
    # patterns whose prefix and suffix hold no literal word (only '*', which the length
    # covers) but whose middles do: listed under their rarest middle word instead of joining
    # a group where every key would have to check their middles
    owner = np.repeat(np.arange(n_pat), np.diff(word_off))
    affix_literal = np.bincount(owner, weights=(words >= 0), minlength=n_pat) > 0
    anchored_mask = lit_mid & ~affix_literal
    b = _Builder()
    anchor_node = np.full(max(n_words, 1), -1, np.int32)
    if anchored_mask.any():
        freq = np.bincount(toks[toks >= 0], minlength=n_words)
        anchored = np.flatnonzero(anchored_mask)
        anchor = np.empty(anchored.shape[0], np.int64)
        for k, pid in enumerate(anchored.tolist()):
            seg = seg_words[seg_off[pat_seg_off[pid]]:seg_off[pat_seg_off[pid + 1]]]
            lits = seg[seg >= 0]
            anchor[k] = lits[np.argmin(freq[lits])]
        order = np.argsort(anchor, kind="stable")
        words_used, first = np.unique(anchor[order], return_index=True)
        runs = np.append(first, order.shape[0]).astype(np.int64)
        g = _Group(anchored, np.zeros((anchored.shape[0], 0), np.int32), [], minlen[anchored], -1)
        anchor_node[words_used] = b.smalls(g, order, runs) + np.arange(words_used.shape[0])
    roots = []  # (root node, min key length, open-ended)
    for g, min_len, open_ended in _groups(P, anchored_mask):
        rows = np.arange(g.pids.shape[0], dtype=np.int64)
        qlist = np.arange(g.specs.shape[0], dtype=np.int32)
        roots.append((_build_node(b, g, rows, qlist, 1), min_len, open_ended))

    # length classes: class L < cap holds the groups a key of L words can match; class cap
    # holds the open-ended ('#') groups, for all longer keys
    cap = max([m for _, m, _ in roots], default=0) + 1
    per_len = [[] for _ in range(cap + 1)]
    for node, min_len, open_ended in roots:
        for L in (range(min_len, cap + 1) if open_ended else (min_len,)):
            per_len[L].append(node)
    len_root_off = np.zeros(cap + 2, np.int32)
    np.cumsum([len(x) for x in per_len], out=len_root_off[1:])
    len_roots = np.asarray([n for x in per_len for n in x], np.int32)

    def cat(chunks, dtype):
        return np.concatenate(chunks).astype(dtype, copy=False) if chunks else np.zeros(0, dtype)

    node_star = np.full(b.n_nodes, -1, np.int32)
    for node, child in b.star_child.items():
        node_star[node] = child
    node_qoff = np.zeros(b.n_nodes + 1, np.int32)
    np.cumsum(cat(b.npos, np.int64), out=node_qoff[1:])

    if b.lut:
        lut_slot = cat([x[0] for x in b.lut], np.int64)
        lut_word = cat([x[1] for x in b.lut], np.int64)
        lut_val = cat([x[2] for x in b.lut], np.int64)
    else:
        lut_slot = lut_word = lut_val = np.zeros(0, np.int64)
    dense_entries = b.n_slots * n_words
    if 0 < dense_entries and dense_entries * 4 <= max(DENSE_LUT_MIN_BYTES, DENSE_LUT_BYTES_PER_PATTERN * n_pat):
        lut_dense = np.full(dense_entries, -1, np.int32)
        lut_dense[lut_slot * n_words + lut_word] = lut_val
        lut_keys = np.full(1, -1, np.int64)
        lut_vals = np.full(1, -1, np.int32)
    else:
        lut_dense = np.zeros(0, np.int32)
        lut_keys, lut_vals = build_hash_lut(lut_slot, lut_word, lut_val, max(n_words, 1))

    # what a leaf bit does: the destination itself for patterns with one plain destination
    # and nothing left to check (one load instead of three dependent ones), else -(pid + 1)
    leaf_pats = cat(b.pats, np.int32)
    tgt = np.asarray(tgt, np.int32)
    n_targets = np.diff(pat_tgt_off)
    simple = (n_targets == 1) & ((flags & (K.NO_DOLLAR | K.HAS_MIDDLES)) == 0)
    first_target = np.where(n_targets > 0, tgt[np.minimum(pat_tgt_off[:-1], max(tgt.shape[0] - 1, 0))]
                            if tgt.shape[0] else -1, -1)
    simple &= first_target >= 0
    leaf_act = np.where(simple[leaf_pats], first_target[leaf_pats], -(leaf_pats + 1)).astype(np.int32)

    word_slots, word_hashes = build_string_table(word_offsets, word_data)

    return K.TopicTable(
        dialect=dialect, sep=46 if dialect != K.MQTT else 47,
        max_depth=b.max_depth + 1, max_specs=b.max_specs, n_words=max(n_words, 1), n_dest=n_dest,
        use_bitmap=int(n_dest <= BITMAP_MAX_DEST),
        word_offsets=word_offsets, word_data=word_data, word_slots=word_slots, word_hashes=word_hashes,
        lut_dense=lut_dense, lut_keys=lut_keys, lut_vals=lut_vals,
        len_root_off=len_root_off, len_roots=len_roots,
        node_kind=cat(b.kind, np.int8), node_spec=cat(b.spec, np.int32),
        node_slot=cat(b.slot, np.int32), node_star=node_star,
        node_qoff=node_qoff, lq_spec=cat(b.lq_spec, np.int32), lq_slot=cat(b.lq_slot, np.int32),
        lq_star=cat(b.lq_star, np.int32),
        node_lenoff=cat(b.lenoff, np.int32), node_lencap=cat(b.lencap, np.int32),
        len_rows=cat(b.len_rows, np.int32),
        node_nw=cat(b.nw, np.int32), node_sum=cat(b.sum, np.int8), node_all=cat(b.all, np.int32), node_boff=cat(b.boff, np.int32),
        bits=cat(b.bits, np.uint64), leaf_pats=leaf_pats, leaf_act=leaf_act,
        anchor_node=anchor_node,
        pat_flags=flags, pat_p=p, pat_s=s, pat_minlen=minlen, pat_word_off=word_off, pat_words=words,
        pat_seg_off=pat_seg_off, seg_off=seg_off, seg_words=seg_words,
        pat_tgt_off=pat_tgt_off, tgt=tgt,
    )


def table_nbytes(t) -> int:
    """Bytes held by a TopicTable's arrays."""
    return sum(v.nbytes for v in t if isinstance(v, np.ndarray))
