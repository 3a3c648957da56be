"""x-consistent-hash: phash2 and jump vectors of SEMANTICS §6.7, reference properties, headers, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
import reference_hashing as rh
from fastroute import _consistent_hash
from fastroute._consistent_hash import MAX_WEIGHT, ConsistentHashRouter
from fastroute.kernels import phash2 as K
from reference_hashing import Atom

COUNTS = [1, 2, 3, 4, 5, 8, 10, 16, 100, 1000]

# §6.7: input as hashed, phash2, bucket for each N in COUNTS.
PHASH2_ROWS = [
    (b"", 13708901, [0, 0, 0, 0, 0, 6, 9, 9, 45, 161]),
    (b"a", 112802447, [0, 1, 1, 1, 1, 6, 6, 15, 47, 47]),
    (b"abc", 98228475, [0, 1, 1, 1, 4, 5, 5, 10, 88, 543]),
    (b"foo", 27750904, [0, 0, 0, 0, 0, 0, 8, 15, 36, 379]),
    (b"hello world", 33550279, [0, 1, 1, 1, 1, 1, 1, 1, 78, 342]),
    (b"0123456789ab", 115360506, [0, 1, 1, 1, 4, 5, 5, 5, 5, 563]),
    (b"0123456789abc", 67923675, [0, 1, 2, 2, 2, 7, 7, 7, 58, 836]),
    (b"order-42", 74888420, [0, 1, 1, 1, 1, 1, 8, 10, 31, 945]),
    ("传感器".encode("utf-8"), 84473116, [0, 1, 2, 3, 3, 3, 3, 3, 92, 291]),
]
UNDEFINED_ROW = (45914356, [0, 1, 1, 1, 1, 1, 1, 1, 39, 491])
INTEGER_ROWS = [
    (0, [0, 0, 0, 3, 4, 4, 4, 15, 47, 807]),
    (1, [0, 0, 2, 3, 3, 3, 3, 3, 29, 856]),
    (42, [0, 1, 1, 3, 3, 6, 6, 6, 6, 6]),
    (-7, [0, 1, 1, 1, 1, 1, 1, 1, 45, 408]),
    (1234567890123, [0, 1, 2, 2, 2, 6, 6, 6, 64, 219]),
]
WORKED = [("q0", 1), ("q1", 1), ("q2", 2), ("q3", 2)]


def jump_kernel(seed: int, n: int) -> int:
    return int(K.jump_cpu(np.int64(seed), n, np.empty(16, np.uint64)))


def one_per_bucket(n: int) -> ConsistentHashRouter:
    """A ring of n weight-1 destinations named by their bucket number."""
    return ConsistentHashRouter([(b, 1) for b in range(n)])


def only(routes: fr.Routes) -> list:
    lists = routes.to_lists()
    assert all(len(x) == 1 for x in lists)
    return [x[0] for x in lists]


# ----------------------------------------------------------------------------- §6.7 vectors

@pytest.mark.parametrize("key, hashed, buckets", PHASH2_ROWS, ids=[repr(r[0])[:16] for r in PHASH2_ROWS])
def test_binary_vectors(key, hashed, buckets):
    """phash2 of each binary and its bucket at every N of the §6.7 table, through the router."""
    assert rh.phash2(key) == hashed
    assert ConsistentHashRouter(WORKED).seeds([key]).tolist() == [hashed]
    for n, expected in zip(COUNTS, buckets):
        assert jump_kernel(hashed, n) == expected
        assert only(one_per_bucket(n).route([key])) == [expected]


@pytest.mark.parametrize("seed, buckets", INTEGER_ROWS, ids=[str(r[0]) for r in INTEGER_ROWS])
def test_integer_vectors(seed, buckets):
    """An integer header is the seed itself; its buckets match the §6.7 table."""
    batch = fr.MessageBatch.from_pylist(keys=[b"k"], headers=[{"h": seed}])
    for n, expected in zip(COUNTS, buckets):
        assert jump_kernel(seed, n) == expected
        assert rh.jump(seed, n) == expected
        router = ConsistentHashRouter([(b, 1) for b in range(n)], hash_header="h")
        assert only(router.route(batch)) == [expected]


def test_missing_header_vector():
    """A missing header hashes phash2(undefined) = 45914356 with the table's buckets."""
    hashed, buckets = UNDEFINED_ROW
    assert rh.phash2(Atom("undefined")) == hashed == K.PHASH2_UNDEFINED
    batch = fr.MessageBatch.from_pylist(keys=[b"k", b"j"], headers=[None, {"other": 1}])
    for n, expected in zip(COUNTS, buckets):
        router = ConsistentHashRouter([(b, 1) for b in range(n)], hash_header="h")
        assert only(router.route(batch)) == [expected, expected]


def test_term_vectors():
    """phash2([]), phash2({longstr,<<"x">>}) and phash2([<<"a">>,<<"b">>]) as published."""
    assert rh.phash2([]) == 113427502 == K.PHASH2_NIL
    assert rh.phash2((Atom("longstr"), b"x")) == 14442427
    assert rh.phash2([b"a", b"b"]) == 3094894
    router = ConsistentHashRouter(WORKED, hash_header="h")
    batch = fr.MessageBatch.from_pylist(keys=[b"", b""], headers=[{"h": []}, {"h": ["x"]}])
    assert router.seeds(batch).tolist() == [113427502, 14442427]


def test_exs1024_first_uniform():
    """The reference generator seeded (1,1,1) starts at 0.35999833001572473."""
    assert rh.Exs1024(1, 1, 1).uniform() == 0.35999833001572473


def test_only_21_bits_of_the_seed_matter():
    """Seeds 1, 1+2^21 and 1+5*2^21 all land in bucket 856 of 1000."""
    assert [jump_kernel(s, 1000) for s in (1, 1 + 2**21, 1 + 5 * 2**21)] == [856, 856, 856]


def test_worked_example():
    """q0 w1, q1 w1, q2 w2, q3 w2: the ring and the picks of SEMANTICS §6.7."""
    router = ConsistentHashRouter(WORKED)
    assert router.ring() == ["q0", "q1", "q2", "q2", "q3", "q3"]
    assert router.bucket_count == 6
    assert only(router.route([b"foo", b"bar", b"order-1", b"order-2", b"order-3"])) == ["q0", "q1", "q0", "q1", "q2"]
    by_header = ConsistentHashRouter(WORKED, hash_header="h")
    batch = fr.MessageBatch.from_pylist(keys=[b""] * 4, headers=[None, {"h": 42}, {"h": "abc"}, {"h": ["abc"]}])
    # missing -> bucket 1, 42 -> 3, "abc" (>= 3.13) -> 5, and {longstr,"abc"} (an array head) -> 4
    assert only(by_header.route(batch)) == ["q1", "q2", "q3", "q3"]
    assert [jump_kernel(s, 6) for s in by_header.seeds(batch).tolist()] == [1, 3, 5, 4]


# ----------------------------------------------------------------------------- properties

@given(key=st.binary(max_size=300))
def test_phash2_of_binaries_matches_reference(key):
    """The batch kernel's phash2 equals the readable make_hash2 on arbitrary binaries."""
    assert ConsistentHashRouter(WORKED).seeds([key]).tolist() == [rh.phash2(key)]


@given(blob=st.binary(min_size=1, max_size=100), data=st.data())
def test_phash2_at_any_offset(blob, data):
    """A binary read from the middle of a buffer hashes like the binary alone."""
    start = data.draw(st.integers(0, len(blob)))
    end = data.draw(st.integers(start, len(blob)))
    buf = np.frombuffer(blob, np.uint8)
    got = int(K.phash2_binary_cpu(buf, start, end, np.uint32(0))) & int(K.PHASH2_MASK)
    assert got == rh.phash2(blob[start:end])


@given(seed=st.integers(-(2**63), 2**63 - 1), n=st.integers(1, 50_000))
def test_jump_matches_reference(seed, n):
    """The compiled jump equals the readable exs1024 jump for any int64 seed and ring size."""
    assert jump_kernel(seed, n) == rh.jump(seed, n)


BINDINGS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e", 9]), st.integers(1, 40)), max_size=8)


@given(bindings=BINDINGS, keys=st.lists(st.none() | st.binary(max_size=40) | st.text(max_size=12), max_size=30))
def test_router_matches_reference(bindings, keys):
    """Any bindings (repeats included) and keys route as the reference exchange does."""
    got = ConsistentHashRouter(bindings).route(keys).to_lists()
    expected = [rh.chx_route(bindings, b"" if k is None else (k.encode() if isinstance(k, str) else k))
                for k in keys]
    assert got == expected


HEADER_VALUES = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20)
                 | st.binary(max_size=20) | st.lists(st.text(max_size=8), max_size=3)
                 | st.lists(st.booleans(), min_size=1, max_size=3))


@given(values=st.lists(st.tuples(st.booleans(), HEADER_VALUES), max_size=20), n=st.integers(1, 30))
def test_header_mode_matches_reference(values, n):
    """Header values of every supported kind (or no header) route as the reference says."""
    headers = [{"h": v, "x": 1} if present else {"x": 1} for present, v in values]
    batch = fr.MessageBatch.from_pylist(keys=[b"ignored"] * len(values), headers=headers)
    bindings = [(b, 1) for b in range(n)]
    got = ConsistentHashRouter(bindings, hash_header="h").route(batch).to_lists()
    expected = [rh.chx_route(bindings, rh.header_term(v) if present else Atom("undefined"))
                for present, v in values]
    assert got == expected


def test_large_batch_sample_matches_reference():
    """200k keys in one batch (many parallel chunks): a sample agrees with the reference."""
    rng = np.random.default_rng(6)
    lengths = rng.integers(0, 40, 200_000)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    batch = fr.MessageBatch.from_buffers(offsets, rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8))
    bindings = [(f"q{k}", int(w)) for k, w in enumerate(rng.integers(1, 100, 50))]
    routes = ConsistentHashRouter(bindings).route(batch)
    for i in rng.choice(len(batch), 500, replace=False).tolist():
        assert routes[i] == rh.chx_route(bindings, batch.keys[i])


def test_tabulated_routing_equals_direct_jumps(monkeypatch):
    """After the seed table is built, keys and integer headers (negative ones too) route the same."""
    rng = np.random.default_rng(8)
    keys = [rng.bytes(int(k)) for k in rng.integers(0, 30, 3000)]
    ints = rng.integers(-(2**62), 2**62, 3000).tolist() + [-1, -(2**63), 2**63 - 1, 0]
    bindings = [(f"q{k}", int(w)) for k, w in enumerate(rng.integers(1, 30, 40))]
    header_batch = fr.MessageBatch.from_pylist(keys=[b""] * len(ints), headers=[{"h": v} for v in ints])
    direct_keys = ConsistentHashRouter(bindings).route(keys)
    direct_headers = ConsistentHashRouter(bindings, hash_header="h").route(header_batch)
    monkeypatch.setattr(_consistent_hash, "TABULATE_AFTER", 1)
    by_key = ConsistentHashRouter(bindings)
    by_header = ConsistentHashRouter(bindings, hash_header="h")
    # the first batch is routed by jumps, then the table is built
    assert by_key.route(keys[:5]).destinations.tolist() == direct_keys.destinations[:5].tolist()
    assert not ConsistentHashRouter(bindings).tabulated
    by_header.route(header_batch.take([0]))
    assert by_key.tabulated and by_header.tabulated
    assert by_key.route(keys) == direct_keys
    assert by_header.route(header_batch) == direct_headers
    for i in rng.choice(len(ints), 200, replace=False).tolist():
        assert direct_headers[i] == rh.chx_route(bindings, ints[i])


# ----------------------------------------------------------------------------- behaviour

def test_first_binding_of_a_destination_counts():
    """A destination bound again keeps its first weight and place on the ring."""
    router = ConsistentHashRouter([("a", 2), ("b", 1), ("a", 5)])
    assert router.ring() == ["a", "a", "b"]
    assert router.names == ["a", "b"]


def test_weight_as_binding_key_string():
    """RabbitMQ's binding key is the weight in decimal; strings are read as such."""
    assert ConsistentHashRouter([("a", "3"), ("b", "10")]).bucket_count == 13


def test_header_details():
    """str and bytes hash alike; the last entry of a repeated name wins; None is undefined."""
    router = ConsistentHashRouter([(b, 1) for b in range(1000)], hash_header="h")
    batch = fr.MessageBatch.from_pylist(
        keys=[b""] * 5,
        headers=[{"h": "abc"}, {"h": b"abc"}, [("h", 1), ("h", "abc")], {"h": None}, None])
    seeds = router.seeds(batch).tolist()
    assert seeds[0] == seeds[1] == seeds[2] == 98228475
    assert seeds[3] == seeds[4] == 45914356


def test_batch_without_headers_uses_undefined():
    """hash_header on a batch with no headers at all sends everything to undefined's bucket."""
    router = ConsistentHashRouter([(b, 1) for b in range(100)], hash_header="h")
    assert only(router.route([b"a", b"b"])) == [39, 39]


def test_null_key_hashes_as_empty():
    """A null routing key is hashed as the empty binary, even if its buffer has bytes."""
    data = np.frombuffer(b"xyzabc", np.uint8)
    batch = fr.MessageBatch.from_buffers(np.array([0, 3, 6]), data, key_validity=np.array([False, True]))
    assert ConsistentHashRouter(WORKED).seeds(batch).tolist() == [13708901, 98228475]


def test_empty_ring_routes_nowhere():
    """No bindings: every message is unroutable, and goes to the alternate if set."""
    assert ConsistentHashRouter([]).route([b"a"]).unroutable().tolist() == [0]
    assert ConsistentHashRouter([], alternate="ae").route([b"a", b"b"]).to_lists() == [["ae"], ["ae"]]


def test_stateless_and_repr():
    """The exchange keeps no state between batches and shows its bindings."""
    router = ConsistentHashRouter([("a", 1), ("b", "2")], hash_header="h")
    assert not router.stateful
    assert repr(router) == "ConsistentHashRouter([('a', 1), ('b', 2)], hash_header='h')"


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("value, why", [(1.5, "a float"), ({"k": 1}, "a table"),
                                        ([1, 2], "an array whose first element"), ([None], "an array whose")])
def test_unhashable_header_values(value, why):
    """Values this router cannot hash raise BatchError naming the message."""
    batch = fr.MessageBatch.from_pylist(keys=[b"", b""], headers=[{"h": "ok"}, {"h": value}])
    with pytest.raises(fr.BatchError, match=f"message 1: header 'h' holds {why}"):
        ConsistentHashRouter(WORKED, hash_header="h").route(batch)


@pytest.mark.parametrize("weight", [0, -1, MAX_WEIGHT + 1, 1.5, "abc", "", "-1", True, None])
def test_bad_weights(weight):
    """A weight must be an int (or decimal string) from 1 to 10000; the error names the binding."""
    with pytest.raises(ValueError, match=r"binding 1 \('b'\) needs a weight from 1 to 10000"):
        ConsistentHashRouter([("a", 1), ("b", weight)])


@pytest.mark.parametrize("bindings", [[("a",)], [("a", 1, 2)], ["a"], [(["a"], 1)]])
def test_bad_binding_shapes(bindings):
    """Each binding must be a (hashable destination, weight) pair."""
    with pytest.raises(TypeError, match="binding 0"):
        ConsistentHashRouter(bindings)


@pytest.mark.parametrize("bad", ["a", {("a", 1)}, 5])
def test_bindings_must_be_an_ordered_sequence(bad):
    """A string, a set or a scalar is not a ring order."""
    with pytest.raises(TypeError, match="ordered sequence"):
        ConsistentHashRouter(bad)


@pytest.mark.parametrize("bad", ["", 5, b"h"])
def test_bad_header_name(bad):
    """hash_header must be a non-empty str."""
    with pytest.raises(TypeError, match="hash_header"):
        ConsistentHashRouter(WORKED, hash_header=bad)


# ----------------------------------------------------------------------------- GPU readiness

def test_per_key_bodies_compile_as_cuda_device_functions():
    """phash2_binary and jump compile with numba's CUDA target (PTX only, no device needed)."""
    cuda = pytest.importorskip("numba.cuda")
    from numba import types
    from numba.cuda.cudadrv.error import NvvmSupportError

    try:
        _, result = cuda.compile_ptx(K.phash2_binary, (types.uint8[::1], types.int64, types.int64, types.uint32),
                                     device=True, cc=(8, 0))
        assert result == types.uint32
        _, result = cuda.compile_ptx(K.jump, (types.int64, types.int64, types.uint64[::1]), device=True, cc=(8, 0))
        assert result == types.int64
    except NvvmSupportError as exc:
        pytest.skip(f"libNVVM is not installed: {exc}")
