"""Erlang's phash2 (binaries, atoms, small tuples) and RabbitMQ's exs1024 jump hash, per key and per batch.

These reproduce what RabbitMQ's x-consistent-hash exchange computes (SEMANTICS.md §6): the
hash of the routed value (``erlang:phash2``, Jenkins lookup2 underneath) and the bucket that
``jump_consistent_hash`` picks with Erlang ``rand``'s exs1024 generator seeded (K, K, K).

Per-key functions are plain Python in the subset both ``numba.njit`` and
``numba.cuda.jit(device=True)`` compile (fixed-width scalars, array reads, no allocation);
``jump`` takes its 16-word generator state as a scratch array so a GPU twin can pass a
thread-local one. The per-message bodies of the batch drivers (:func:`key_seed`,
:func:`header_seed`) are written the same way, so kernels/cuda_phash2.py compiles the very
same source for the device. The ``*_cpu`` names are their njit builds; the GPU twin rebinds
the ``*_cpu`` helpers these bodies call to its device builds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _codes as C
from ._config import INLINE, PARALLEL

_U32 = np.uint32
_U64 = np.uint64

#: phash2's range: make_hash2 & (2^27 - 1).
PHASH2_MASK = _U32((1 << 27) - 1)
_GOLDEN32 = _U32(0x9E3779B9)
# HCONST_n of erl_term_hashing.c: n * 0x9E3779B9 mod 2^32
HCONST_3 = _U32(0xDAA66D2B)
HCONST_9 = _U32(0x8FF34781)
HCONST_13 = _U32(0x08D12E65)


def jenkins_mix(a, b, c):
    """Bob Jenkins' lookup2 MIX on three uint32 words; returns the mixed (a, b, c)."""
    a = _U32(a - b - c)
    a = _U32(a ^ (c >> _U32(13)))
    b = _U32(b - c - a)
    b = _U32(b ^ (a << _U32(8)))
    c = _U32(c - a - b)
    c = _U32(c ^ (b >> _U32(13)))
    a = _U32(a - b - c)
    a = _U32(a ^ (c >> _U32(12)))
    b = _U32(b - c - a)
    b = _U32(b ^ (a << _U32(16)))
    c = _U32(c - a - b)
    c = _U32(c ^ (b >> _U32(5)))
    a = _U32(a - b - c)
    a = _U32(a ^ (c >> _U32(3)))
    b = _U32(b - c - a)
    b = _U32(b ^ (a << _U32(10)))
    c = _U32(c - a - b)
    c = _U32(c ^ (b >> _U32(15)))
    return a, b, c


def hash_step(x, k, h):
    """make_hash2's UINT32_HASH_STEP: the c that MIX(k + x, k, h) leaves (H1 in SEMANTICS).

    Used in plain Python (numpy uint32 scalars) to fold fixed terms into constants.
    """
    return jenkins_mix(_U32(k + x), _U32(k), _U32(h))[2]


def read_u32le(data, i):
    """The little-endian uint32 at ``data[i:i+4]`` (``i`` unsigned, see hashing.murmur2)."""
    return _U32(_U32(data[i]) | (_U32(data[i + _U64(1)]) << _U32(8))
                | (_U32(data[i + _U64(2)]) << _U32(16)) | (_U32(data[i + _U64(3)]) << _U32(24)))


jenkins_mix_cpu = njit(**INLINE)(jenkins_mix)
read_u32le_cpu = njit(**INLINE)(read_u32le)


def phash2_binary(data, start, end, h):
    """make_hash2 of the binary ``data[start:end]`` reached with running hash ``h`` (uint32).

    With h = 0 this is the binary's whole make_hash2; ``& PHASH2_MASK`` gives its phash2.
    """
    con = _U32(HCONST_13 + _U32(h))
    length = end - start
    if length == 0:
        return con
    a = _GOLDEN32
    b = _GOLDEN32
    c = con
    i = _U64(start)  # unsigned indices let LLVM merge the byte loads (see hashing.murmur2)
    e = _U64(end)
    while e - i >= _U64(12):
        a = _U32(a + read_u32le_cpu(data, i))
        b = _U32(b + read_u32le_cpu(data, i + _U64(4)))
        c = _U32(c + read_u32le_cpu(data, i + _U64(8)))
        a, b, c = jenkins_mix_cpu(a, b, c)
        i += _U64(12)
    c = _U32(c + _U32(length & 0xFFFFFFFF))
    j = _U32(0)
    while i < e:
        v = _U32(data[i])
        if j < _U32(4):
            a = _U32(a + (v << (_U32(8) * j)))
        elif j < _U32(8):
            b = _U32(b + (v << (_U32(8) * (j - _U32(4)))))
        else:
            c = _U32(c + (v << (_U32(8) * (j - _U32(7)))))
        j += _U32(1)
        i += _U64(1)
    a, b, c = jenkins_mix_cpu(a, b, c)
    return c


# exs1024 constants (Erlang rand.erl)
_MASK21 = _U64((1 << 21) - 1)
_SEED_M1 = _U64(2097131)
_SEED_M2 = _U64(2097133)
_SEED_M3 = _U64(2097143)
_XS64_M = _U64(2685821657736338717)
_XS1024_M = _U64(1181783497276652981)
_TWO_POW_MINUS_64 = 2.0 ** -64


def jump(key, buckets, state):
    """RabbitMQ's jump_consistent_hash(key, buckets): a bucket in [0, buckets).

    Lamping-Veach jump hash whose random numbers come from exs1024 seeded (key, key, key);
    only key mod 2^21 matters (two's complement for negative keys). ``state`` is a scratch
    uint64 array of 16 (the generator's words). Erlang fails with badarith when a draw is
    exactly 0.0 (probability 2^-64); this returns the current bucket instead.
    """
    if buckets <= 1:
        return np.int64(0)
    k = _U64(key) & _MASK21
    b1 = ((k + _U64(1)) * _SEED_M1) & _MASK21
    b2 = ((k + _U64(1)) * _SEED_M2) & _MASK21
    b3 = ((k + _U64(1)) * _SEED_M3) & _MASK21
    r = _U64((b1 << _U64(43)) | (b2 << _U64(22)) | (b3 << _U64(1)) | _U64(1))
    # Erlang keeps the 16 seed outputs newest first, then walks them as a ring.
    for t in range(16):
        r = _U64(r ^ (r >> _U64(12)))
        r = _U64(r ^ (r << _U64(25)))
        r = _U64(r ^ (r >> _U64(27)))
        state[15 - t] = _U64(r * _XS64_M)
    p = 0
    bucket = np.int64(-1)
    nxt = np.int64(0)
    limit = np.float64(buckets)
    while nxt < buckets:
        bucket = nxt
        s0 = state[p]
        q = (p + 1) & 15
        s1 = state[q]
        s1 = _U64(s1 ^ (s1 << _U64(31)))
        s1 = _U64(s1 ^ (s1 >> _U64(11)))
        ns = _U64(s0 ^ (s0 >> _U64(30)) ^ s1)
        state[q] = ns
        p = q
        uniform = np.float64(_U64(ns * _XS1024_M)) * _TWO_POW_MINUS_64
        x = np.float64(bucket + 1) / uniform
        if not x < limit:  # also stops on a zero draw (x = inf)
            break
        nxt = np.int64(x)
    return bucket


phash2_binary_cpu = njit(**INLINE)(phash2_binary)
jump_cpu = njit(**INLINE)(jump)


# ---------------------------------------------------------------------------------- constants

def atom_hash(name: str) -> int:
    """erts ``atom_hash``: hashpjw over the UTF-8 name, folding Latin-1 pairs to one byte."""
    data = name.encode("utf-8")
    h = 0
    i = 0
    while i < len(data):
        v = data[i]
        if i + 1 < len(data) and v & 0xFE == 0xC2 and data[i + 1] & 0xC0 == 0x80:
            v = ((v << 6) | (data[i + 1] & 0x3F)) & 0xFF
            i += 1
        i += 1
        h = ((h << 4) + v) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


def _tuple_prefix(atom: str) -> np.uint32:
    """make_hash2 after the first two steps of a pair {atom, _}: arity 2, then the atom."""
    with np.errstate(over="ignore"):
        h = hash_step(_U32(2), HCONST_9, _U32(0))
        return hash_step(_U32(atom_hash(atom)), HCONST_3, h)


def _atom_after(atom: str, h) -> np.uint32:
    with np.errstate(over="ignore"):
        return hash_step(_U32(atom_hash(atom)), HCONST_3, _U32(h))


#: phash2 of the empty binary (a null routing key is hashed as one).
PHASH2_EMPTY_BINARY = np.int64(int(HCONST_13) & int(PHASH2_MASK))
#: phash2 of the atoms a header can turn into, and of the empty list (SEMANTICS §6.4).
PHASH2_UNDEFINED = np.int64(atom_hash("undefined") & int(PHASH2_MASK))
PHASH2_TRUE = np.int64(atom_hash("true") & int(PHASH2_MASK))
PHASH2_FALSE = np.int64(atom_hash("false") & int(PHASH2_MASK))
PHASH2_NIL = np.int64(0xCEC2C42E & int(PHASH2_MASK))
#: make_hash2 state after "{longstr," — an array header's string head is hashed as {longstr, Bin}.
LONGSTR_PAIR = _tuple_prefix("longstr")
#: phash2 of {bool, true} and {bool, false}, for an array header whose head is a bool.
PHASH2_BOOL_TRUE = np.int64(int(_atom_after("true", _tuple_prefix("bool"))) & int(PHASH2_MASK))
PHASH2_BOOL_FALSE = np.int64(int(_atom_after("false", _tuple_prefix("bool"))) & int(PHASH2_MASK))

# Why a header value has no seed (status codes of header_seeds).
SEED_OK = 0
SEED_FLOAT = 1
SEED_TABLE = 2
SEED_ARRAY_HEAD = 3


# ---------------------------------------------------------------------------------- per message

def key_seed(offsets, data, i):
    """phash2 of item i of a binary column (its bytes ``data[offsets[i]:offsets[i+1]]``), int64."""
    return np.int64(phash2_binary_cpu(data, offsets[i], offsets[i + 1], _U32(0)) & PHASH2_MASK)


def header_seed(offsets, name_ids, types, ints, blob_offsets, blob_data, i, name_id):
    """Message i's jump seed from its header ``name_id``: (int64 seed, int8 status).

    The per-message body of :func:`header_seeds` (which documents the rules); status is
    SEED_OK, or SEED_FLOAT / SEED_TABLE / SEED_ARRAY_HEAD with seed 0.
    """
    j = -1
    for e in range(offsets[i], offsets[i + 1]):
        if name_ids[e] == name_id:
            j = e
    seed = PHASH2_UNDEFINED
    status = SEED_OK
    if j >= 0:
        t = types[j]
        if t == C.INT:
            seed = ints[j]
        elif t == C.BOOL:
            seed = PHASH2_TRUE if ints[j] != 0 else PHASH2_FALSE
        elif t == C.STR or t == C.BYTES:
            seed = np.int64(phash2_binary_cpu(blob_data, blob_offsets[j], blob_offsets[j + 1], _U32(0))
                            & PHASH2_MASK)
        elif t == C.FLOAT:
            status = SEED_FLOAT
            seed = 0
        elif t == C.DICT:
            status = SEED_TABLE
            seed = 0
        elif t == C.LIST:
            # nested encoding (kernels/_codes.py): TAG_LIST, u32 payload size, u32 count,
            # then the items, each a tag byte and its payload
            pos = blob_offsets[j] + 5
            if read_u32le_cpu(blob_data, _U64(pos)) == 0:
                seed = PHASH2_NIL
            else:
                tag = blob_data[pos + 4]
                if tag == C.TAG_STR:
                    size = np.int64(read_u32le_cpu(blob_data, _U64(pos + 5)))
                    start = pos + 9
                    seed = np.int64(phash2_binary_cpu(blob_data, start, start + size, LONGSTR_PAIR)
                                    & PHASH2_MASK)
                elif tag == C.TAG_TRUE:
                    seed = PHASH2_BOOL_TRUE
                elif tag == C.TAG_FALSE:
                    seed = PHASH2_BOOL_FALSE
                else:
                    status = SEED_ARRAY_HEAD
                    seed = 0
    return np.int64(seed), np.int8(status)


key_seed_cpu = njit(**INLINE)(key_seed)
header_seed_cpu = njit(**INLINE)(header_seed)


# ---------------------------------------------------------------------------------- drivers

@njit(**PARALLEL)
def key_seeds(offsets, data):
    """phash2 of every item of a binary column (a null item has no bytes: phash2(<<>>)), int64."""
    n = offsets.shape[0] - 1
    out = np.empty(n, np.int64)
    for i in prange(n):
        out[i] = key_seed_cpu(offsets, data, i)
    return out


@njit(**PARALLEL)
def header_seeds(offsets, name_ids, types, ints, blob_offsets, blob_data, name_id):
    """The jump seed of each message from its header ``name_id`` (-1: no message has it).

    Returns (int64 seeds, int8 status): RabbitMQ ≥ 3.13's untyped value rules (SEMANTICS
    §6.2). The last entry of that name wins. Missing or void → phash2(undefined); str/bytes →
    phash2 of the bytes; int → the int itself; bool → phash2 of the atom; an array → phash2([])
    if empty, else of its head as {longstr, Bin} or {bool, B}. A float, a table, or an array
    with another head gets status SEED_FLOAT / SEED_TABLE / SEED_ARRAY_HEAD and seed 0.
    Each message is :func:`header_seed`, the body the GPU twin (kernels/cuda_phash2.py) runs too.
    """
    n = offsets.shape[0] - 1
    seeds = np.empty(n, np.int64)
    status = np.zeros(n, np.int8)
    for i in prange(n):
        seeds[i], status[i] = header_seed_cpu(offsets, name_ids, types, ints, blob_offsets, blob_data, i,
                                              name_id)
    return seeds, status


#: Messages per prange chunk in ``jump_ring``: each chunk allocates one generator state.
_CHUNK = 1024


@njit(**PARALLEL)
def jump_ring(seeds, ring):
    """``ring[jump(seed, len(ring))]`` for every seed, int32; ``ring`` maps bucket → id."""
    n = seeds.shape[0]
    out = np.empty(n, np.int32)
    buckets = ring.shape[0]
    chunks = (n + _CHUNK - 1) // _CHUNK
    for c in prange(chunks):
        state = np.empty(16, np.uint64)
        stop = min(n, (c + 1) * _CHUNK)
        for i in range(c * _CHUNK, stop):
            out[i] = ring[jump_cpu(seeds[i], buckets, state)]
    return out
