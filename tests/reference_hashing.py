"""Slow, readable references for fastroute's own random draws and load-spreading rules.

The broker rules (murmur2, crc32, fnv1a, keyed partitions) are in ``reference.py``; this file
holds what has no upstream to copy: the SplitMix64 stream the random routers draw from, the
round-robin cycle, the weighted pick, and a numpy murmur2 for fixed-width keys that checks
million-key batches quickly.
"""

from __future__ import annotations

import numpy as np

import reference as ref

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    """SplitMix64's output function (Steele, Lea and Flood; Vigna's splitmix64.c)."""
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def stream_key(seed: int) -> int:
    """The 64-bit stream key fastroute derives from a user's seed (numpy SeedSequence)."""
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def draw(key: int, k: int) -> int:
    """Draw k (k = 0, 1, ...) of the stream with this key."""
    return mix64(key + k * GOLDEN)


def partition_stream(keys, n: int, algorithm: str, seed: int, first: int = 0) -> list:
    """Partitions of a batch of keys whose first message is draw ``first`` of the stream."""
    key = stream_key(seed)
    out = []
    for i, k in enumerate(keys):
        p = ref.partition(k, n, algorithm)
        out.append(draw(key, first + i) % n if p is None else p)
    return out


def round_robin(cycle: list, cursor: int, n: int) -> list:
    """n picks from ``cycle`` starting at entry ``cursor``."""
    return [cycle[(cursor + i) % len(cycle)] for i in range(n)]


def random_pick(destinations: list, seed: int, first: int, n: int, weights=None) -> list:
    """n picks of RandomRouter: an entry uniformly, or a unique name by summed weights."""
    key = stream_key(seed)
    out = []
    if weights is None:
        for i in range(n):
            out.append(destinations[draw(key, first + i) % len(destinations)])
        return out
    names, per_name = [], []
    for d, w in zip(destinations, weights):
        if d in names:
            per_name[names.index(d)] += float(w)
        else:
            names.append(d)
            per_name.append(float(w))
    cumulative, acc = [], 0.0
    for w in per_name:
        acc += w
        cumulative.append(acc)
    last_positive = max(k for k, w in enumerate(per_name) if w > 0)
    for i in range(n):
        target = (draw(key, first + i) >> 11) * (acc * 2.0 ** -53)
        pick = next((k for k, c in enumerate(cumulative) if c > target), last_positive)
        out.append(names[pick])
    return out


def murmur2_fixed_width(keys: np.ndarray) -> np.ndarray:
    """Java murmur2 of every row of a (n, L) uint8 matrix, as uint32, with numpy columns.

    The same steps as ``reference.murmur2``, applied to all rows at once.
    """
    n, length = keys.shape
    m = np.uint64(0x5BD1E995)
    mask = np.uint64(0xFFFFFFFF)
    h = np.full(n, (0x9747B28C ^ length) & 0xFFFFFFFF, np.uint64)
    full = length - length % 4
    blocks = np.ascontiguousarray(keys[:, :full]).view("<u4")  # the little-endian 4-byte blocks
    for b in range(blocks.shape[1]):
        k = blocks[:, b].astype(np.uint64)
        k = (k * m) & mask
        k ^= k >> np.uint64(24)
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = keys[:, full:].astype(np.uint64)
    t = length % 4
    if t == 3:
        h ^= tail[:, 2] << np.uint64(16)
    if t >= 2:
        h ^= tail[:, 1] << np.uint64(8)
    if t >= 1:
        h ^= tail[:, 0]
        h = (h * m) & mask
    h ^= h >> np.uint64(13)
    h = (h * m) & mask
    h ^= h >> np.uint64(15)
    return h.astype(np.uint32)


# --------------------------------------------------------------------------- RabbitMQ x-consistent-hash

M32 = 0xFFFFFFFF
PHASH2_MASK = (1 << 27) - 1


def hconst(n: int) -> int:
    """HCONST_n of erl_term_hashing.c: n times the golden ratio constant, mod 2^32."""
    return (n * 0x9E3779B9) & M32


def jenkins_mix(a: int, b: int, c: int):
    """Bob Jenkins' lookup2 MIX, mod 2^32 with logical right shifts."""
    a = (a - b - c) & M32; a ^= c >> 13
    b = (b - c - a) & M32; b ^= (a << 8) & M32
    c = (c - a - b) & M32; c ^= b >> 13
    a = (a - b - c) & M32; a ^= c >> 12
    b = (b - c - a) & M32; b ^= (a << 16) & M32
    c = (c - a - b) & M32; c ^= b >> 5
    a = (a - b - c) & M32; a ^= c >> 3
    b = (b - c - a) & M32; b ^= (a << 10) & M32
    c = (c - a - b) & M32; c ^= b >> 15
    return a, b, c


def h1(x: int, k: int, h: int) -> int:
    """UINT32_HASH_STEP: the c that MIX(K + x, K, h) leaves."""
    return jenkins_mix((k + x) & M32, k, h)[2]


def block_hash(data: bytes, init: int) -> int:
    a = b = 0x9E3779B9
    c = init
    i = 0
    while len(data) - i >= 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & M32
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & M32
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & M32
        a, b, c = jenkins_mix(a, b, c)
        i += 12
    c = (c + len(data)) & M32
    for j, byte in enumerate(data[i:]):
        if j < 4:
            a = (a + (byte << (8 * j))) & M32
        elif j < 8:
            b = (b + (byte << (8 * (j - 4)))) & M32
        else:
            c = (c + (byte << (8 * (j - 7)))) & M32
    return jenkins_mix(a, b, c)[2]


def atom_hash(name: str) -> int:
    """erts atom_hash: hashpjw over the UTF-8 name, folding Latin-1 pairs to one byte."""
    data = name.encode("utf-8")
    h = 0
    i = 0
    while i < len(data):
        v = data[i]
        if i + 1 < len(data) and v & 0xFE == 0xC2 and data[i + 1] & 0xC0 == 0x80:
            v = ((v << 6) | (data[i + 1] & 0x3F)) & 0xFF
            i += 1
        i += 1
        h = ((h << 4) + v) & M32
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


class Atom(str):
    """An Erlang atom (a str subclass so tests can write Atom("undefined"))."""


def make_hash2(term, h: int = 0) -> int:
    """erlang make_hash2 for binaries, atoms, tuples and lists of those (enough for §6)."""
    if isinstance(term, Atom):
        v = atom_hash(term)
        return v if h == 0 else h1(v, hconst(3), h)
    if isinstance(term, (bytes, bytearray)):
        con = (hconst(13) + h) & M32
        return con if not term else block_hash(bytes(term), con)
    if isinstance(term, tuple):
        h = h1(len(term), hconst(9), h)
        for item in term:
            h = make_hash2(item, h)
        return h
    if isinstance(term, list):
        if not term:
            return 0xCEC2C42E if h == 0 else h1(2, hconst(2), h)
        if any(isinstance(x, int) for x in term):
            raise NotImplementedError("byte lists are not needed here")
        return make_hash2(term[1:], make_hash2(term[0], h))
    raise NotImplementedError(type(term).__name__)


def phash2(term) -> int:
    return make_hash2(term) & PHASH2_MASK


class Exs1024:
    """Erlang rand's exs1024 as SEMANTICS §6.5 states it: a list L (newest first) and RL."""

    def __init__(self, a1: int, a2: int, a3: int):
        mask21 = (1 << 21) - 1
        m = (2097131, 2097133, 2097143)
        b = [(((x & mask21) + 1) * mi) & mask21 for x, mi in zip((a1, a2, a3), m)]
        r = (b[0] << 43) | (b[1] << 22) | (b[2] << 1) | 1
        outs = []
        for _ in range(16):
            r ^= r >> 12
            r ^= (r << 25) & M64
            r ^= r >> 27
            outs.append((r * 2685821657736338717) & M64)
        self.L = outs[::-1]
        self.RL = []

    def uniform(self) -> float:
        if len(self.L) == 1:
            self.L = self.L + self.RL[::-1]
            self.RL = []
        s0, s1 = self.L[0], self.L[1]
        s1 ^= (s1 << 31) & M64
        s1 ^= s1 >> 11
        ns = s0 ^ (s0 >> 30) ^ s1
        out = (ns * 1181783497276652981) & M64
        self.L = [ns] + self.L[2:]
        self.RL = [s0] + self.RL
        return out / 2.0 ** 64


def jump(k: int, n: int) -> int:
    """RabbitMQ's jump_consistent_hash: Lamping-Veach with exs1024 seeded (K, K, K)."""
    if n == 1:
        return 0
    rng = Exs1024(k, k, k)
    b, j = -1, 0
    while j < n:
        b = j
        r = rng.uniform()
        j = int((b + 1) / r)
    return b


def chx_ring(bindings) -> list:
    """Bucket -> destination for (destination, weight) pairs in ring order (first binding wins)."""
    ring, seen = [], set()
    for dest, weight in bindings:
        if dest in seen:
            continue
        seen.add(dest)
        ring += [dest] * int(weight)
    return ring


def chx_route(bindings, value) -> list:
    """Destinations of one message: [] for an empty ring, else ring[jump(value, buckets)].

    ``value`` is an int (a seed, used directly) or a term to phash2.
    """
    ring = chx_ring(bindings)
    if not ring:
        return []
    k = value if isinstance(value, int) else phash2(value)
    return [ring[jump(k, len(ring))]]


def header_term(value):
    """The Erlang term RabbitMQ >= 3.13's x-consistent-hash hashes for an untyped header value
    (ConsistentHashRouter's docstring): undefined, atoms for booleans, ints as they are, str
    as its UTF-8 bytes, [] for an empty array, else the typed pair of its head."""
    if value is None:
        return Atom("undefined")
    if isinstance(value, bool):
        return Atom("true" if value else "false")
    if isinstance(value, (int, bytes)):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if not value:
        return []
    head = value[0]
    if isinstance(head, bool):
        return (Atom("bool"), Atom("true" if head else "false"))
    return (Atom("longstr"), head.encode("utf-8"))

