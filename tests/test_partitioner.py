"""Kafka partitioners: the published hash and partition vectors, reference properties, randomness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
import reference as ref
import reference_hashing as rh
from fastroute import _partitioner as P
from fastroute.kernels import hashing as H

ALGORITHMS = ["murmur2", "consistent", "fnv1a", "murmur2_random", "consistent_random", "fnv1a_random"]
LKJH = b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"
PREAMBLE = b"PreAmbleWillBeRemoved,ThePrePartThatIs"


def kernel_hash(fn, key: bytes) -> int:
    data = np.frombuffer(key, np.uint8)
    return int(fn(data, 0, data.shape[0]))


# ----------------------------------------------------------------------------- §8 vectors

# UtilsTest.testMurmur2 (Kafka Java client), signed int32.
JAVA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (LKJH, -58897971),
    (b"abc", 479470107),
]

# librdkafka rdmurmur2.c unittest_murmur2, unsigned.
RDK_MURMUR2 = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (PREAMBLE, 0x78424F1C),
    (PREAMBLE[1:], 0x4A62B377),
    (PREAMBLE[2:], 0xE0E4E09E),
    (PREAMBLE[3:], 0x62B8B43F),
    (b"", 0x106E08D9),
]

# SEMANTICS §8 partition table: key, murmur2, then partitions for these counts.
COUNTS = [2, 3, 6, 10, 12, 16, 100]
PARTITION_TABLE = [
    (b"", 275646681, [1, 0, 3, 1, 9, 9, 81]),
    (b"21", -973932308, [0, 0, 0, 0, 0, 12, 40]),
    (b"abc", 479470107, [1, 0, 3, 7, 3, 11, 7]),
    (b"foobar", -790332482, [0, 0, 0, 6, 6, 14, 66]),
    (b"kafka", -798503068, [0, 1, 4, 0, 4, 4, 80]),
    (b"a-little-bit-long-string", -985981536, [0, 2, 2, 2, 8, 0, 12]),
    (b"a-little-bit-longer-string", -1486304829, [1, 2, 5, 9, 11, 3, 19]),
    (LKJH, -58897971, [1, 2, 5, 7, 5, 13, 77]),
    ("ключ".encode("utf-8"), 2122343024, [0, 2, 2, 4, 8, 0, 24]),
]


@pytest.mark.parametrize("key, expected", JAVA_MURMUR2, ids=[k.decode()[:20] for k, _ in JAVA_MURMUR2])
def test_murmur2_matches_the_java_client_vectors(key, expected):
    """murmur2 returns Java's signed Utils.murmur2 value for UtilsTest's keys."""
    assert P.murmur2(key) == expected
    assert P.murmur2(key.decode("ascii")) == expected
    assert kernel_hash(H.murmur2_cpu, key) == expected & 0xFFFFFFFF


@pytest.mark.parametrize("key, expected", RDK_MURMUR2, ids=[k.decode()[:20] or "empty" for k, _ in RDK_MURMUR2])
def test_murmur2_matches_the_librdkafka_vectors(key, expected):
    """murmur2 agrees with librdkafka's Java-compatible unit-test vectors (unsigned)."""
    assert P.murmur2(key) & 0xFFFFFFFF == expected
    assert kernel_hash(H.murmur2_cpu, key) == expected


@pytest.mark.parametrize("key, hashed, parts", PARTITION_TABLE, ids=[str(k[:12]) for k, _, _ in PARTITION_TABLE])
def test_murmur2_partition_table(key, hashed, parts):
    """Every row of the §8 partition table, one-key helper and batch router alike."""
    assert P.murmur2(key) == hashed
    for n, expected in zip(COUNTS, parts):
        assert P.murmur2_partition(key, n) == expected
        assert fr.Partitioner(n).partitions([key]).tolist() == [expected]
        assert expected == (hashed & 0x7FFFFFFF) % n  # the table is self-consistent


def test_murmur2_partition_table_as_one_batch():
    """The whole §8 table routed as one batch per partition count."""
    keys = [k for k, _, _ in PARTITION_TABLE]
    for j, n in enumerate(COUNTS):
        assert fr.Partitioner(n).partitions(keys).tolist() == [row[2][j] for row in PARTITION_TABLE]


# ----------------------------------------------------------------------------- §9 vectors

# rdfnv1a.c unittest_fnv1a.
RDK_FNV1A = [
    (b"kafka", 0xD33C4E1),
    (b"giberish123456789", 0x77A58295),
    (b"1234", 0x23BDD03),
    (b"234", 0x2DEA3CD2),
    (b"34", 0x740FA83E),
    (b"4", 0x310CA263),
    (PREAMBLE, 0x65CBD69C),
    (PREAMBLE[1:], 0x6E49C79A),
    (PREAMBLE[2:], 0x69EED356),
    (PREAMBLE[3:], 0x6ABCC023),
    (b"", 0x7EE3623B),
]


@pytest.mark.parametrize("key, expected", RDK_FNV1A, ids=[k.decode()[:20] or "empty" for k, _ in RDK_FNV1A])
def test_fnv1a_matches_the_librdkafka_vectors(key, expected):
    """fnv1a returns librdkafka's sign-folded FNV-1a for its unit-test keys."""
    assert P.fnv1a(key) == expected
    assert kernel_hash(H.fnv1a_cpu, key) == expected


def test_fnv1a_folds_the_sign_bit():
    """A hash read as a negative int32 is negated; only INT32_MIN keeps its top bit."""
    rng = np.random.default_rng(5)
    keys = [rng.bytes(int(k)) for k in rng.integers(1, 12, 400)]
    raw = [ref.fnv1a(k) for k in keys]
    assert all(v <= 0x80000000 for v in raw)
    assert [P.fnv1a(k) for k in keys] == raw


@pytest.mark.parametrize("key, expected", [(b"123456789", 0xCBF43926), (b"", 0)])
def test_crc32_check_value(key, expected):
    """crc32 is CRC-32/ISO-HDLC: the catalogue check value and the empty input."""
    assert P.crc32(key) == expected
    assert kernel_hash(H.crc32_cpu, key) == expected


# 0048-partitioner.c: NULL, "", then three keys; hashes as published.
RDK_KEYS = [None, b"", b"23456", b"this is another string with more length to it perhaps", b"hejsan"]
RDK_HASHES = {
    "consistent": [0, 0, 0xB1B451D7, 0xB0150DF7, 0xD077037E],
    "murmur2": [0x106E08D9, 0x106E08D9, 0x058D780F, 0x4F7703DA, 0x5EC19395],
    "fnv1a": [0x7EE3623B, 0x7EE3623B, 0x27E6F469, 0x155E3E5F, 0x17B1E27A],
}
RDK_CNT17 = {
    "consistent": [0, 0, 7, 15, 14],
    "murmur2": [11, 11, 9, 11, 5],
    "fnv1a": [0, 0, 6, 0, 4],
}


@pytest.mark.parametrize("algorithm", ["consistent", "murmur2", "fnv1a"])
def test_librdkafka_partitioner_table_cnt17(algorithm):
    """The 0048-partitioner table at 17 partitions, NULL and empty keys included."""
    assert fr.Partitioner(17, algorithm).partitions(RDK_KEYS).tolist() == RDK_CNT17[algorithm]


@pytest.mark.parametrize("algorithm", ["consistent", "murmur2", "fnv1a"])
@pytest.mark.parametrize("count", [7, 17])
def test_librdkafka_partitioner_hashes_mod_count(algorithm, count):
    """0048-partitioner takes its published hashes % part_cnt, with cnt 7 and 17."""
    expected = [h % count for h in RDK_HASHES[algorithm]]
    assert fr.Partitioner(count, algorithm).partitions(RDK_KEYS).tolist() == expected
    helper = {"consistent": P.consistent_partition, "murmur2": P.murmur2_partition,
              "fnv1a": P.fnv1a_partition}[algorithm]
    assert [helper(k, count) for k in RDK_KEYS] == expected


@pytest.mark.parametrize("algorithm", ["consistent", "murmur2", "fnv1a"])
def test_librdkafka_table_hashes(algorithm):
    """The raw 0048 hash values, through the one-key helpers (murmur2 after toPositive)."""
    fn = {"consistent": P.crc32, "murmur2": lambda k: P.murmur2(k) & 0x7FFFFFFF, "fnv1a": P.fnv1a}[algorithm]
    assert [fn(k) for k in RDK_KEYS] == RDK_HASHES[algorithm]


@pytest.mark.parametrize("algorithm, random_rows", [
    ("murmur2_random", [0]), ("fnv1a_random", [0]), ("consistent_random", [0, 1])])
@pytest.mark.parametrize("count", [7, 17])
def test_random_variants_hash_keys_and_draw_for_null(algorithm, random_rows, count):
    """*_random: keyed rows as the base algorithm; NULL (and "" under consistent_random) drawn."""
    base = algorithm.replace("_random", "")
    got = fr.Partitioner(count, algorithm, seed=11).partitions(RDK_KEYS * 50).tolist()
    for i, p in enumerate(got):
        row = i % len(RDK_KEYS)
        assert 0 <= p < count
        if row not in random_rows:
            assert p == RDK_HASHES[base][row] % count
    drawn = {got[i] for i in range(len(got)) if i % len(RDK_KEYS) == 0}
    assert len(drawn) > 1  # 50 null keys over 7+ partitions do not all agree


# ----------------------------------------------------------------------------- properties

KEYS = st.one_of(st.none(), st.binary(max_size=40), st.binary(min_size=100, max_size=600),
                 st.text(max_size=30))
KEY_LISTS = st.lists(KEYS, max_size=40)
COUNTS_ST = st.one_of(st.integers(1, 40), st.integers(1, 5000))
CODES = {"murmur2": (H.MURMUR2, H.NULL_HASHED), "consistent": (H.CRC32, H.NULL_HASHED),
         "fnv1a": (H.FNV1A, H.NULL_HASHED), "murmur2_random": (H.MURMUR2, H.NULL_RANDOM),
         "consistent_random": (H.CRC32, H.EMPTY_RANDOM), "fnv1a_random": (H.FNV1A, H.NULL_RANDOM)}


@given(key=st.binary(max_size=300))
def test_per_key_hashes_match_reference(key):
    """The three compiled per-key hashes equal the readable references on arbitrary bytes."""
    assert kernel_hash(H.murmur2_cpu, key) == ref.murmur2(key) & 0xFFFFFFFF
    assert kernel_hash(H.crc32_cpu, key) == ref.crc32(key)
    assert kernel_hash(H.fnv1a_cpu, key) == ref.fnv1a(key)


@given(blob=st.binary(min_size=1, max_size=200), data=st.data())
def test_per_key_hashes_at_any_offset(blob, data):
    """A key read from the middle of a buffer (any alignment) hashes like the key alone."""
    start = data.draw(st.integers(0, len(blob)))
    end = data.draw(st.integers(start, len(blob)))
    buf = np.frombuffer(blob, np.uint8)
    key = blob[start:end]
    assert int(H.murmur2_cpu(buf, start, end)) == ref.murmur2(key) & 0xFFFFFFFF
    assert int(H.crc32_cpu(buf, start, end)) == ref.crc32(key)
    assert int(H.fnv1a_cpu(buf, start, end)) == ref.fnv1a(key)


@given(key=st.binary(max_size=64))
def test_per_key_bodies_run_as_plain_python(key):
    """The uncompiled bodies (what a CUDA simulator runs) give the same hashes."""
    data = np.frombuffer(key, np.uint8)
    with np.errstate(over="ignore"):
        assert int(H.murmur2(data, 0, len(key))) == ref.murmur2(key) & 0xFFFFFFFF
        assert int(H.crc32(data, 0, len(key))) == ref.crc32(key)
        assert int(H.fnv1a(data, 0, len(key))) == ref.fnv1a(key)
        assert int(H.mix64(np.uint64(len(key)))) == rh.mix64(len(key))


@pytest.mark.parametrize("algorithm", ["murmur2", "consistent", "fnv1a"])
@given(keys=KEY_LISTS, count=COUNTS_ST)
def test_deterministic_partitions_match_reference(algorithm, keys, count):
    """Null, empty, long and non-ASCII keys partition as reference.partition says."""
    got = fr.Partitioner(count, algorithm).partitions(keys).tolist()
    assert got == [ref.partition(k, count, algorithm) for k in keys]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(keys=KEY_LISTS, count=st.integers(1, 2**31 - 1), seed=st.integers(0, 2**64), first=st.integers(0, 2**64 - 1))
def test_kernel_over_the_whole_int32_range(algorithm, keys, count, seed, first):
    """The batch kernel, called directly, matches the references for any int32 count and stream position."""
    col = fr.BinaryColumn.from_pylist(keys)
    validity = np.zeros(0, np.bool_) if col.validity is None else col.validity
    got = H.partitions(col.offsets, col.data, validity, count, *CODES[algorithm],
                       np.uint64(rh.stream_key(seed)), np.uint64(first))
    assert got.tolist() == rh.partition_stream(keys, count, algorithm, seed, first)


@pytest.mark.parametrize("algorithm", ["murmur2_random", "consistent_random", "fnv1a_random"])
@given(keys=KEY_LISTS, count=COUNTS_ST, seed=st.integers(0, 2**64))
def test_random_partitions_match_reference_stream(algorithm, keys, count, seed):
    """Keyed rows follow reference.partition; the others take the seeded stream's draw."""
    got = fr.Partitioner(count, algorithm, seed=seed).partitions(keys).tolist()
    assert got == rh.partition_stream(keys, count, algorithm, seed)
    for k, p in zip(keys, got):
        assert 0 <= p < count
        expected = ref.partition(k, count, algorithm)
        if expected is not None:
            assert p == expected


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(keys=KEY_LISTS, cut=st.integers(0, 40), count=st.integers(1, 50))
def test_batches_continue_the_stream(algorithm, keys, cut, count):
    """Routing A then B equals routing A+B on a fresh router with the same seed."""
    cut = min(cut, len(keys))
    split = fr.Partitioner(count, algorithm, seed=7)
    parts = split.partitions(keys[:cut]).tolist() + split.partitions(keys[cut:]).tolist()
    assert parts == fr.Partitioner(count, algorithm, seed=7).partitions(keys).tolist()


def test_keys_from_buffers_with_gaps_and_null_bytes():
    """Offsets need not start at 0 or be contiguous; a null key's bytes are ignored."""
    data = np.frombuffer(b"JUNKabcXXfoobar21ZZ", np.uint8)
    offsets = np.array([4, 7, 9, 15, 17], np.int64)  # abc | XX | foobar | 21
    validity = np.array([True, False, True, True])
    batch = fr.MessageBatch.from_buffers(offsets, data, key_validity=validity)
    for algorithm in ("murmur2", "consistent", "fnv1a"):
        expected = [ref.partition(k, 13, algorithm) for k in (b"abc", None, b"foobar", b"21")]
        assert fr.Partitioner(13, algorithm).partitions(batch).tolist() == expected


@pytest.mark.parametrize("width", range(13))
def test_numpy_reference_agrees_with_reference_murmur2(width):
    """The column-wise murmur2 used for big batches equals reference.murmur2 at every tail length."""
    matrix = np.random.default_rng(width).integers(0, 256, (40, width), dtype=np.uint8)
    assert rh.murmur2_fixed_width(matrix).tolist() == [ref.murmur2(r.tobytes()) & 0xFFFFFFFF for r in matrix]


def test_one_million_keys_match_numpy_reference():
    """1M 16-byte keys: every murmur2 partition equals a column-wise numpy murmur2."""
    n, width = 1_000_000, 16
    rng = np.random.default_rng(2024)
    matrix = rng.integers(0, 256, (n, width), dtype=np.uint8)
    batch = fr.MessageBatch.from_buffers(np.arange(n + 1, dtype=np.int64) * width, matrix.reshape(-1))
    got = fr.Partitioner(12).partitions(batch)
    expected = (rh.murmur2_fixed_width(matrix) & np.uint32(0x7FFFFFFF)) % np.uint32(12)
    np.testing.assert_array_equal(got, expected.astype(np.int32))
    sample = rng.choice(n, 300, replace=False)
    for algorithm in ("consistent", "fnv1a"):
        parts = fr.Partitioner(1000, algorithm).partitions(batch)
        assert [int(parts[i]) for i in sample] == [
            ref.partition(matrix[i].tobytes(), 1000, algorithm) for i in sample]


# ----------------------------------------------------------------------------- randomness

def chi_square(values: np.ndarray, bins: int) -> float:
    observed = np.bincount(values, minlength=bins)
    expected = values.shape[0] / bins
    return float(((observed - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("algorithm", ["murmur2_random", "consistent_random", "fnv1a_random"])
@pytest.mark.parametrize("count", [7, 10, 1000])
def test_null_keys_spread_uniformly(algorithm, count):
    """1M null keys with a fixed seed: every partition used, chi-square within 6 sigma."""
    batch = fr.MessageBatch(fr.BinaryColumn.nulls(1_000_000))
    parts = fr.Partitioner(count, algorithm, seed=2024).partitions(batch)
    assert parts.min() >= 0 and parts.max() < count
    df = count - 1
    assert chi_square(parts, count) < df + 6 * (2 * df) ** 0.5


def test_empty_keys_draw_only_under_consistent_random():
    """Empty keys are hashed by murmur2_random / fnv1a_random and drawn by consistent_random."""
    keys = [b""] * 2000
    assert set(fr.Partitioner(10, "murmur2_random", seed=1).partitions(keys).tolist()) == {0x106E08D9 % 10}
    assert set(fr.Partitioner(10, "fnv1a_random", seed=1).partitions(keys).tolist()) == {0x7EE3623B % 10}
    assert set(fr.Partitioner(10, "consistent_random", seed=1).partitions(keys).tolist()) == set(range(10))


def test_same_seed_same_picks_other_seed_other_picks():
    """A seed fixes the draws; another seed (or fresh entropy) gives different ones."""
    keys = [None] * 1000
    a = fr.Partitioner(1000, "murmur2_random", seed=99).partitions(keys)
    b = fr.Partitioner(1000, "murmur2_random", seed=99).partitions(keys)
    c = fr.Partitioner(1000, "murmur2_random", seed=100).partitions(keys)
    d = fr.Partitioner(1000, "murmur2_random").partitions(keys)
    e = fr.Partitioner(1000, "murmur2_random").partitions(keys)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(d, e)


def test_state_carries_across_batches():
    """A second batch continues the stream instead of repeating the first batch's picks."""
    p = fr.Partitioner(1000, "fnv1a_random", seed=3)
    first = p.partitions([None] * 500)
    second = p.partitions([None] * 500)
    assert not np.array_equal(first, second)
    whole = fr.Partitioner(1000, "fnv1a_random", seed=3).partitions([None] * 1000)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_stream_is_splitmix64():
    """mix64 over the SplitMix64 state sequence reproduces splitmix64.c's outputs for seed 1234567."""
    published = [6457827717110365317, 3203168211198807973, 9817491932198370423,
                 4593380528125082431, 16408922859458223821]
    states = [np.uint64((1234567 + k * int(H.GOLDEN)) % 2**64) for k in range(1, 6)]
    got = [int(H.mix64_cpu(state)) for state in states]
    assert got == published
    assert [rh.draw(1234567, k) for k in range(1, 6)] == published


def test_stateful_flag():
    """Only the *_random algorithms carry state between batches."""
    assert {a: fr.Partitioner(3, a).stateful for a in ALGORITHMS} == {
        a: a.endswith("_random") for a in ALGORITHMS}


# ----------------------------------------------------------------------------- routes & API

def test_routes_shape():
    """names are 0..n-1, each message has one destination, offsets are arange(n+1)."""
    keys = [b"a", None, b"", "ключ", b"x" * 1000]
    routes = fr.Partitioner(5).route(keys)
    assert list(routes.names) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(routes.offsets, np.arange(len(keys) + 1))
    assert routes.to_lists() == [[ref.partition(k, 5, "murmur2")] for k in keys]
    assert routes.unroutable().size == 0
    assert sum(routes.counts().values()) == len(keys)


def test_empty_batch():
    """An empty batch routes to an empty Routes and does not move the random stream."""
    p = fr.Partitioner(4, "murmur2_random", seed=1)
    routes = p.route([])
    assert len(routes) == 0 and routes.offsets.tolist() == [0]
    np.testing.assert_array_equal(p.partitions([None] * 50),
                                  fr.Partitioner(4, "murmur2_random", seed=1).partitions([None] * 50))


def test_single_partition():
    """n = 1 sends everything, null keys included, to partition 0."""
    for algorithm in ALGORITHMS:
        assert fr.Partitioner(1, algorithm, seed=0).partitions([None, b"", b"k"]).tolist() == [0, 0, 0]


def test_largest_partition_count():
    """n = MAX_PARTITIONS is accepted and partitions stay below it."""
    top = P.MAX_PARTITIONS
    p = fr.Partitioner(top, "murmur2_random", seed=5)
    parts = p.partitions([b"21", None] * 3)
    assert parts[0] == (ref.murmur2(b"21") & 0x7FFFFFFF) % top
    assert (parts >= 0).all() and (parts < top).all()


def test_one_key_helpers_take_any_int32_count():
    """The one-key helpers need no names list, so any count up to 2^31-1 works."""
    top = 2**31 - 1
    assert P.murmur2_partition(b"21", top) == 1173551340 % top
    assert P.consistent_partition(b"123456789", top) == 0xCBF43926 % top
    assert P.fnv1a_partition(b"kafka", top) == 0xD33C4E1 % top


def test_alternate_is_never_used():
    """Every message has a partition, so an alternate destination receives nothing."""
    routes = fr.Partitioner(3, alternate="dead-letter").route([None, b"a", b""])
    assert routes.counts().get("dead-letter", 0) == 0
    assert all(len(d) == 1 and d[0] in (0, 1, 2) for d in routes.to_lists())


def test_gpu_backend_without_a_device_is_reported_unavailable():
    """Where no CUDA device is usable, backend='gpu' raises BackendUnavailable."""
    from fastroute._backend import gpu_status

    if gpu_status() is None:
        pytest.skip("a CUDA device (or the simulator) is usable here; tests/cudasim covers the GPU path")
    with pytest.raises(fr.BackendUnavailable):
        fr.Partitioner(3).route([b"a"], backend="gpu")


def test_repr():
    """repr names the count, the algorithm and a given seed."""
    assert repr(fr.Partitioner(12)) == "Partitioner(12, algorithm='murmur2')"
    assert repr(fr.Partitioner(3, "fnv1a_random", seed=4)) == "Partitioner(3, algorithm='fnv1a_random', seed=4)"


# ----------------------------------------------------------------------------- errors

def test_unknown_algorithm_lists_the_valid_names():
    """An unknown algorithm raises ValueError naming it and every valid name."""
    with pytest.raises(ValueError) as info:
        fr.Partitioner(3, "murmur3")
    message = str(info.value)
    assert "'murmur3'" in message
    assert all(f"'{a}'" in message for a in ALGORITHMS)


@pytest.mark.parametrize("bad", [0, -1, 2**31, 1.0, 2.5, "3", True, None])
def test_bad_partition_count(bad):
    """n must be an int from 1 to MAX_PARTITIONS; the error shows what was received."""
    with pytest.raises(ValueError, match="partition count") as info:
        fr.Partitioner(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 2**31, 1.0, "3", False, None])
def test_one_key_helpers_reject_a_bad_count(bad):
    """The one-key helpers take counts from 1 to 2^31-1."""
    for helper in (P.murmur2_partition, P.consistent_partition, P.fnv1a_partition):
        with pytest.raises(ValueError, match="partition count"):
            helper(b"k", bad)


def test_numpy_integer_partition_count():
    """A numpy integer count is accepted."""
    assert fr.Partitioner(np.int64(6)).partitions([b"abc"]).tolist() == [3]


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_bad_seed(bad):
    """A seed must be None or a non-negative int."""
    with pytest.raises(ValueError, match="seed"):
        fr.Partitioner(3, "murmur2_random", seed=bad)


@pytest.mark.parametrize("fn", [P.murmur2, P.crc32, P.fnv1a])
def test_one_key_helpers_reject_other_types(fn):
    """The one-key helpers take bytes, str or None only."""
    with pytest.raises(TypeError, match="bytes, str or None"):
        fn(42)


def test_one_key_helpers_treat_none_as_empty():
    """None hashes as the empty key, as the non-random algorithms do."""
    assert P.murmur2(None) == P.murmur2(b"") == 0x106E08D9
    assert P.fnv1a(None) == 0x7EE3623B and P.crc32(None) == 0


def test_bad_batch_item_is_a_batch_error():
    """A key of another type fails as BatchError naming its index."""
    with pytest.raises(fr.BatchError, match="key 1"):
        fr.Partitioner(3).route([b"a", 5])


# ----------------------------------------------------------------------------- GPU readiness

def test_per_key_bodies_compile_as_cuda_device_functions():
    """murmur2, crc32, fnv1a and mix64 compile unchanged with numba's CUDA target (PTX only)."""
    cuda = pytest.importorskip("numba.cuda")
    from numba import types
    from numba.cuda.cudadrv.error import NvvmSupportError

    key_sig = (types.uint8[::1], types.int64, types.int64)
    try:
        for fn in (H.murmur2, H.crc32, H.fnv1a):
            _, result = cuda.compile_ptx(fn, key_sig, device=True, cc=(8, 0))
            assert result == types.uint32
        _, result = cuda.compile_ptx(H.mix64, (types.uint64,), device=True, cc=(8, 0))
        assert result == types.uint64
    except NvvmSupportError as exc:
        pytest.skip(f"libNVVM is not installed: {exc}")
