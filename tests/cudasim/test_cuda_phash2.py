"""kernels/cuda_phash2.py and ConsistentHashRouter's GPU path: bit for bit the CPU's seeds,
buckets, tabulated picks and errors, and the readable reference exchange."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

import fastroute as fr
import reference_hashing as rh
from _sim import SIM, dev, host, keys
from fastroute import _consistent_hash
from fastroute._consistent_hash import ConsistentHashRouter
from fastroute.kernels import cuda_phash2 as G
from fastroute.kernels import phash2 as P
from reference_hashing import Atom

BINDINGS = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e", 9]), st.integers(1, 40)), max_size=8)
#: Header values the router hashes: every kind its docstring lists (long strings reach
#: phash2's 12-byte blocks).
HASHABLE = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1) | st.text(max_size=20)
            | st.binary(max_size=30) | st.lists(st.text(max_size=14), max_size=3)
            | st.lists(st.booleans(), min_size=1, max_size=3))
#: Values it cannot hash, each with the phrase its BatchError uses.
UNHASHABLE = [(1.5, "a float"), ({"k": 1}, "a table"), ([1, 2], "an array whose first element"),
              ([None], "an array whose first element"), ([{"k": 1}], "an array whose first element")]
#: A message's headers: absent, or h (possibly twice: the last wins) among other names.
MESSAGE = st.one_of(
    st.none(),
    st.builds(lambda v: {"x": 1, "h": v}, HASHABLE),
    st.builds(lambda v: {"x": v}, HASHABLE),
    st.builds(lambda a, b: [("h", a), ("y", "z"), ("h", b)], HASHABLE, HASHABLE))


def hashed_value(headers):
    """The reference term of one message's headers (as MESSAGE builds them) for header h."""
    pairs = [] if headers is None else list(headers.items()) if isinstance(headers, dict) else headers
    values = [v for name, v in pairs if name == "h"]
    return rh.header_term(values[-1]) if values else Atom("undefined")


def reference_seed(term) -> int:
    return term if isinstance(term, int) else rh.phash2(term)


def header_arrays(table):
    """The HeaderTable arrays header_seeds takes, in order."""
    return (table.offsets, table.name_ids, table.types, table.ints, table.blob_offsets, table.blob_data)


def device(arrays):
    """Device copies of host arrays."""
    return [dev(a) for a in arrays]


def header_batch(messages):
    return fr.MessageBatch.from_pylist(keys=[b"k"] * len(messages), headers=messages)


def assert_gpu_equals_cpu(router, batch):
    """backend='gpu' on the host batch and on its device copy give the CPU's Routes."""
    want = router.route(batch, backend="cpu")
    got = router.route(batch, backend="gpu")
    assert got.device == "cpu" and got == want
    on_device = router.route(batch.to_device(), backend="gpu")
    assert on_device.device == "gpu" and on_device.to_host() == want
    return want


# --------------------------------------------------------------- one body, two targets

def test_device_builds_call_device_helpers():
    """Every *_cpu helper a device build calls is rebound to that helper's device build."""
    device_builds = {P.jenkins_mix: G.jenkins_mix_gpu, P.read_u32le: G.read_u32le_gpu,
                     P.phash2_binary: G.phash2_binary_gpu}
    by_name = {f"{fn.__name__}_cpu": build for fn, build in device_builds.items()}
    for build in (G.phash2_binary_gpu, G.jump_gpu, G.key_seed_gpu, G.header_seed_gpu):
        fn = build.py_func
        called = [name for name in fn.__code__.co_names if name.endswith("_cpu")]
        for name in called:
            assert fn.__globals__[name] is by_name[name], (fn.__name__, name)
    assert set(G.header_seed_gpu.py_func.__code__.co_names) >= {"phash2_binary_cpu", "read_u32le_cpu"}


_key_seed = njit(P.key_seed)
_header_seed = njit(P.header_seed)


@njit
def _key_seeds_via_body(offsets, data):
    out = np.empty(offsets.shape[0] - 1, np.int64)
    for i in range(out.shape[0]):
        out[i] = _key_seed(offsets, data, i)
    return out


@njit
def _header_seeds_via_body(offsets, name_ids, types, ints, blob_offsets, blob_data, name_id):
    n = offsets.shape[0] - 1
    seeds = np.empty(n, np.int64)
    status = np.empty(n, np.int8)
    for i in range(n):
        seed, why = _header_seed(offsets, name_ids, types, ints, blob_offsets, blob_data, i, name_id)
        seeds[i] = seed
        status[i] = why
    return seeds, status


@SIM
@given(items=keys, messages=st.lists(MESSAGE | st.sampled_from([{"h": v} for v, _ in UNHASHABLE]), max_size=30))
def test_per_message_bodies_compiled_for_the_cpu_equal_the_drivers(items, messages):
    """key_seed and header_seed, compiled alone with njit, equal key_seeds and header_seeds."""
    col = fr.BinaryColumn.from_pylist(items)
    assert np.array_equal(_key_seeds_via_body(col.offsets, col.data), P.key_seeds(col.offsets, col.data))
    table = header_batch(messages).headers
    if table is None:
        return
    for name in ("h", "x"):
        args = header_arrays(table) + (table.name_id(name),)
        seeds, status = _header_seeds_via_body(*args)
        cpu_seeds, cpu_status = P.header_seeds(*args)
        assert np.array_equal(seeds, cpu_seeds) and np.array_equal(status, cpu_status)


# --------------------------------------------------------------- kernels equal the CPU kernels

@SIM
@given(items=keys)
def test_key_seeds_kernel_equals_cpu_and_reference(launch_shape, items):
    """phash2 of every key on the device, nulls as the empty binary, as the CPU and the reference."""
    col = fr.BinaryColumn.from_pylist(items)
    offsets, data = device([col.offsets, col.data])
    got = host(G.key_seeds(offsets, data, None if col.validity is None else dev(col.validity)))
    want = ConsistentHashRouter([("a", 1)]).seeds(fr.MessageBatch.from_keys(items))
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert got.tolist() == [rh.phash2(b"" if k is None else k) for k in items]


@SIM
@given(messages=st.lists(MESSAGE, max_size=30),
       bad=st.lists(st.tuples(st.integers(0, 29), st.sampled_from(UNHASHABLE)), max_size=3))
def test_header_seeds_kernel_equals_cpu(launch_shape, messages, bad):
    """Seeds, status codes and the first bad message on the device equal the CPU's."""
    messages = list(messages)
    for i, (value, _) in bad:
        if i < len(messages):
            messages[i] = {"h": value}
    table = header_batch(messages).headers
    if table is None:
        return
    name_id = table.name_id("h")
    cpu_seeds, cpu_status = P.header_seeds(*header_arrays(table), name_id)
    seeds, status, first = G.header_seeds(*device(header_arrays(table)), name_id)
    assert np.array_equal(host(seeds), cpu_seeds) and np.array_equal(host(status), cpu_status)
    flagged = np.flatnonzero(cpu_status)
    assert first == (int(flagged[0]) if flagged.size else -1)
    if not flagged.size and name_id >= 0:
        assert host(seeds).tolist() == [reference_seed(hashed_value(m)) for m in messages]


SEEDS = st.lists(st.integers(-(2 ** 63), 2 ** 63 - 1)
                 | st.sampled_from([0, 1, -1, 2 ** 21, 2 ** 63 - 1, -(2 ** 63)]), max_size=40)


@SIM
@given(seeds=SEEDS, ring=st.lists(st.integers(0, 9), min_size=1, max_size=300))
def test_jump_ring_kernel_equals_cpu(launch_shape, seeds, ring):
    """ring[jump(seed, len(ring))] on the device equals the CPU kernel for any int64 seed."""
    seeds = np.array(seeds, np.int64)
    ring = np.array(ring, np.int32)
    got = host(G.jump_ring(dev(seeds), dev(ring)))
    assert got.dtype == np.int32 and np.array_equal(got, P.jump_ring(seeds, ring))


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_lookup_kernel_equals_jumps(launch_shape, dtype):
    """A seed table read on the device gives what jumping gives, for negative and large seeds too."""
    rng = np.random.default_rng(3)
    ring = rng.integers(0, 50, 77).astype(np.int32)
    table = P.jump_ring(np.arange(1 << _consistent_hash.SEED_BITS, dtype=np.int64), ring).astype(dtype)
    seeds = np.concatenate([rng.integers(-(2 ** 63), 2 ** 63 - 1, 60, dtype=np.int64),
                            np.array([0, -1, 2 ** 21 - 1, 2 ** 21, -(2 ** 63), 2 ** 63 - 1], np.int64)])
    got = host(G.lookup(dev(seeds), dev(table)))
    assert got.dtype == np.int32 and np.array_equal(got, P.jump_ring(seeds, ring))


# --------------------------------------------------------------- the router: backend="gpu" == "cpu"

@SIM
@given(bindings=BINDINGS, items=keys)
def test_router_by_key_gpu_equals_cpu_and_reference(launch_shape, bindings, items):
    """Any ring (repeats, empty) and keys (nulls, empties): host and device batches, as the reference."""
    want = assert_gpu_equals_cpu(ConsistentHashRouter(bindings), fr.MessageBatch.from_keys(items))
    assert want.to_lists() == [rh.chx_route(bindings, b"" if k is None else k) for k in items]


@SIM
@given(bindings=BINDINGS, messages=st.lists(MESSAGE, max_size=25))
def test_router_by_header_gpu_equals_cpu_and_reference(launch_shape, bindings, messages):
    """Every hashable header kind, missing and repeated headers: the CPU's Routes and the reference's."""
    want = assert_gpu_equals_cpu(ConsistentHashRouter(bindings, hash_header="h"), header_batch(messages))
    assert want.to_lists() == [rh.chx_route(bindings, reference_seed(hashed_value(m))) for m in messages]


def test_null_keys_with_bytes_and_a_rebased_column(launch_shape):
    """A null key's bytes are ignored; a column starting inside a larger buffer hashes the same."""
    data = np.frombuffer(b"XXXXhelloworld-0123456789abcdefYY", np.uint8)
    offsets = np.array([4, 9, 14, 14, 31], np.int64)
    batch = fr.MessageBatch.from_buffers(offsets, data, key_validity=[True, False, True, True])
    assert_gpu_equals_cpu(ConsistentHashRouter([("a", 3), ("b", 5), ("c", 1)]), batch)


@pytest.mark.parametrize("messages", [[None, None, None], [{"x": 1}, {"y": "h"}, None]],
                         ids=["no-headers", "no-h"])
def test_header_nobody_has(launch_shape, messages):
    """No header table, or none with that name: every message takes undefined's bucket."""
    router = ConsistentHashRouter([(b, 1) for b in range(40)], hash_header="h")
    want = assert_gpu_equals_cpu(router, header_batch(messages))
    assert want.to_lists() == [rh.chx_route([(b, 1) for b in range(40)], Atom("undefined"))] * 3


@pytest.mark.parametrize("hash_header", [None, "h"])
def test_empty_batches(launch_shape, hash_header):
    """Zero messages route to zero-length Routes where the batch lives."""
    router = ConsistentHashRouter([("a", 2), ("b", 1)], hash_header=hash_header)
    empty = fr.MessageBatch.from_keys([])
    for batch in (empty, empty.to_device()):
        routes = router.route(batch, backend="gpu")
        assert len(routes) == 0 and routes.device == batch.device
        assert routes.to_host().offsets.tolist() == [0]


def test_empty_ring(launch_shape):
    """No bindings: nothing routed on either backend; with an alternate, everything goes there."""
    batch = fr.MessageBatch.from_keys([b"a", None, b""])
    assert_gpu_equals_cpu(ConsistentHashRouter([]), batch)
    assert ConsistentHashRouter([]).route(batch, backend="gpu").unroutable().tolist() == [0, 1, 2]
    router = ConsistentHashRouter([], alternate="dead")
    want = router.route(batch, backend="cpu")
    assert want.to_lists() == [["dead"]] * 3
    assert router.route(batch, backend="gpu") == want
    assert router.route(batch.to_device(), backend="gpu").to_host() == want


@pytest.mark.parametrize("value, why", UNHASHABLE, ids=[f"{type(v).__name__}-{k}" for k, (v, _) in enumerate(UNHASHABLE)])
def test_unhashable_headers_raise_the_cpu_error(launch_shape, value, why):
    """The first message the router cannot hash is named alike on both backends, host or device batch."""
    messages = [{"h": "ok"}] * 5 + [{"h": value}, {"h": 1}, {"h": 2.5}, None]
    batch = header_batch(messages)
    router = ConsistentHashRouter([("a", 1), ("b", 2)], hash_header="h")
    with pytest.raises(fr.BatchError, match=f"message 5: header 'h' holds {why}") as cpu:
        router.route(batch, backend="cpu")
    for b in (batch, batch.to_device()):
        with pytest.raises(fr.BatchError) as gpu:
            router.route(b, backend="gpu")
        assert str(gpu.value) == str(cpu.value) and gpu.value.index == cpu.value.index == 5


@pytest.mark.parametrize("n_destinations", [7, 40_000], ids=["int16-table", "int32-table"])
def test_tabulated_routing_on_the_gpu(launch_shape, monkeypatch, n_destinations):
    """Once the CPU path has built the seed table the GPU reads it (no jumps), with the same answers."""
    rng = np.random.default_rng(n_destinations)
    bindings = [(f"q{k}", int(w)) for k, w in enumerate(rng.integers(1, 4, n_destinations))]
    items = [rng.bytes(int(k)) for k in rng.integers(0, 30, 50)] + [None, b""]
    ints = rng.integers(-(2 ** 63), 2 ** 63 - 1, 30, dtype=np.int64).tolist() + [-1, 0, 2 ** 21]
    by_key = fr.MessageBatch.from_keys(items)
    by_header = header_batch([{"h": v} for v in ints] + [None, {"h": "abc"}, {"h": [True]}])
    routers = [ConsistentHashRouter(bindings), ConsistentHashRouter(bindings, hash_header="h")]
    direct = [r.route(b, backend="gpu") for r, b in zip(routers, (by_key, by_header))]  # ring cached first
    assert not any(r.tabulated for r in routers)
    monkeypatch.setattr(_consistent_hash, "TABULATE_AFTER", 1)
    for router, batch, want in zip(routers, (by_key, by_header), direct):
        assert router.route(batch.take([0]), backend="cpu").to_lists() == want.to_lists()[:1]  # builds the table
        assert router.tabulated
        assert router._table.dtype == (np.int16 if n_destinations < 2 ** 15 else np.int32)

    def no_jumps(*args):
        raise AssertionError("the GPU path jumped although the router has its table")

    monkeypatch.setattr(G, "jump_ring", no_jumps)
    for router, batch, want in zip(routers, (by_key, by_header), direct):
        assert router.route(batch, backend="gpu") == want
        assert router.route(batch.to_device(), backend="gpu").to_host() == want
        assert router.route(batch, backend="cpu") == want
