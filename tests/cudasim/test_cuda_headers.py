"""kernels/cuda_headers.py and HeadersRouter's GPU path: SEMANTICS.md §3's vectors, the slow
reference, and the CPU answer bit for bit, in both compat modes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastroute as fr
import reference as R
from _sim import SIM
from fastroute import _device
from fastroute.kernels import cuda_headers as G
from fastroute.kernels import cuda_topic as T
from fastroute.kernels import headers as K
from fastroute.kernels.cuda_topic import MAX_DEST, upload_table
from test_cuda_frame import small_launches  # noqa: F401  (autouse: small blocks, poisoned allocations)
from test_headers_router import COMPATS, POOL, VECTORS, bindings_list, headers_row




def assert_same(gpu: fr.Routes, cpu: fr.Routes) -> None:
    gpu = gpu.to_host()
    assert gpu.offsets.tolist() == cpu.offsets.tolist()
    assert gpu.destinations.tolist() == cpu.destinations.tolist()
    assert gpu.names == cpu.names


def batch_of(rows) -> fr.MessageBatch:
    return fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)


def body_routes(router, batch, cap):
    """Per message, the ids the device's per-message body (compiled for the CPU) returns,
    re-run with a bitmap row when its local set overflows."""
    table = batch.headers
    name_map = np.array([router._name_index.get(nm, -1) for nm in table.names], np.int32)
    cols = K.HeaderColumns(table.offsets, name_map, table.name_ids, table.types, table.ints, table.floats,
                           table.blob_offsets, table.blob_data)
    tab = router._tables
    dest = np.empty(MAX_DEST, np.int32)
    bm = np.zeros((1, max(1, (tab.n_dest + 63) // 64)), np.uint64)
    out = []
    for i in range(len(batch)):
        nd = G.route_message_cpu(cols, tab, i, dest, cap, bm, 0, False)
        if nd < 0:
            bm[:] = 0
            G.route_message_cpu(cols, tab, i, dest, cap, bm, 0, True)
            out.append([w * 64 + b for w in range(bm.shape[1]) for b in range(64) if int(bm[0, w]) >> b & 1])
        else:
            out.append(dest[:nd].tolist())
    return out


@settings(max_examples=200, deadline=None)
@given(bindings=bindings_list, rows=st.lists(headers_row, min_size=1, max_size=12),
       compat=st.sampled_from(COMPATS), cap=st.sampled_from([1, 3, MAX_DEST]))
def test_device_body_equals_cpu_router(bindings, rows, compat, cap):
    """The device's per-message body (compiled for the CPU) gives every message the CPU
    router's ids, through the local set or the wide pass, for random bindings and headers
    (every value type, repeated names, x- names)."""
    router = fr.HeadersRouter(bindings, compat=compat)
    batch = batch_of(rows)
    cpu = router.route(batch, backend="cpu")
    assert body_routes(router, batch, cap) == [cpu.ids(i).tolist() for i in range(len(rows))]


@pytest.mark.parametrize("compat", COMPATS)
def test_semantics_vectors_on_the_device(compat, launch_shape):
    """Every §3 vector's binding in one router, every vector's headers in one batch: each
    message gets exactly the reference's destinations, and the CPU's ids."""
    bindings = [(args, f"b{k}") for k, (args, *_rest) in enumerate(VECTORS)]
    rows = [headers for _, headers, *_rest in VECTORS]
    router = fr.HeadersRouter(bindings, compat=compat)
    gpu = router.route(batch_of(rows), backend="gpu")
    for i, row in enumerate(rows):
        assert set(gpu[i]) == R.headers_route(bindings, row, compat), row
    assert_same(gpu, router.route(batch_of(rows), backend="cpu"))


@SIM
@given(bindings=bindings_list, rows=st.lists(headers_row, min_size=1, max_size=16),
       compat=st.sampled_from(COMPATS))
def test_headers_router_gpu_equals_cpu(bindings, rows, compat):
    """Random bindings and header tables: the GPU routes equal the CPU's bit for bit."""
    router = fr.HeadersRouter(bindings, compat=compat)
    assert_same(router.route(batch_of(rows), backend="gpu"), router.route(batch_of(rows), backend="cpu"))


@settings(SIM, max_examples=10)
@pytest.mark.parametrize("width", [0, 1, None])
@given(bindings=bindings_list, rows=st.lists(headers_row, min_size=1, max_size=16),
       compat=st.sampled_from(COMPATS))
def test_stash_width_does_not_change_the_answer(monkeypatch, width, bindings, rows, compat):
    """Messages whose ids fit the stash are copied by the fill pass, the others routed again:
    with no stash, a one-id stash or the default, the GPU routes equal the CPU's."""
    if width is not None:
        monkeypatch.setattr(T, "STASH_BYTES", 4 * len(rows) * width)
    router = fr.HeadersRouter(bindings, compat=compat)
    assert_same(router.route(batch_of(rows), backend="gpu"), router.route(batch_of(rows), backend="cpu"))


@pytest.mark.parametrize("compat", COMPATS)
def test_pooled_values_on_the_device(compat):
    """Every pooled binding value (1 / 1.0 / True / "1", -0.0, NaN, nested) against every
    pooled header value: the GPU decides as the CPU."""
    bindings = [({"a": v}, f"q{k}") for k, v in enumerate(POOL)]
    bindings += [({"x-match": "any", "a": v, "z": 0}, f"any{k}") for k, v in enumerate(POOL)]
    rows = [{"a": v} for v in POOL] + [[("a", 1), ("a", v)] for v in POOL[:6]]
    router = fr.HeadersRouter(bindings, compat=compat)
    assert_same(router.route(batch_of(rows), backend="gpu"), router.route(batch_of(rows), backend="cpu"))


def test_wide_messages_take_the_bitmap_pass(launch_shape):
    """Messages reaching more destinations than the local set (cap lowered to 2): same ids."""
    bindings = [({"a": None} if d % 3 else {}, f"q{(d * 37) % 60}") for d in range(80)]
    bindings += [({"k": d % 5}, f"k{d}") for d in range(200)]
    rows = [{"a": 1}, None, {"k": 3}, {"a": 0, "k": 1}, [("k", 2), ("k", 4)]]
    router = fr.HeadersRouter(bindings)
    batch = batch_of(rows)
    table = batch.headers
    name_map = np.array([router._name_index.get(nm, -1) for nm in table.names], np.int32)
    dev = batch.to_device().headers
    cols = K.HeaderColumns(dev.offsets, _device.to_device_array(name_map), dev.name_ids, dev.types, dev.ints,
                           dev.floats, dev.blob_offsets, dev.blob_data)
    tab = upload_table(router._tables, lambda a: _device.upload_cached(router, "headers", a))
    offsets, dest = G.route(cols, tab, cap=2)
    cpu = router.route(batch, backend="cpu")
    assert offsets.copy_to_host().tolist() == cpu.offsets.tolist()
    assert dest.copy_to_host().tolist() == cpu.destinations.tolist()


def test_batches_without_headers_and_empty_routers_on_the_device():
    """No header table, empty tables, no bindings, no messages: the CPU's answers."""
    bindings = [({}, "all"), ({"x-match": "any"}, "never"), ({"a": None}, "needs_a")]
    for router in (fr.HeadersRouter(bindings), fr.HeadersRouter([])):
        for batch in (batch_of([None, {}, []]), fr.MessageBatch.from_pylist(values=[b""] * 3),
                      fr.MessageBatch.from_pylist(values=[]), batch_of([{"zzz": 1}])):
            assert_same(router.route(batch, backend="gpu"), router.route(batch, backend="cpu"))


def test_device_batch_gives_device_routes():
    """A device batch routes to device Routes equal to the CPU's, the tables uploaded once."""
    router = fr.HeadersRouter([({"a": 1}, "q1"), ({"x-match": "any", "b": "x", "c": 2.5}, "q2")])
    rows = [{"a": 1}, {"b": "x"}, {"c": 2.5, "a": 2}, None]
    routes = router.route(batch_of(rows).to_device(), backend="gpu")
    assert routes.device == "gpu"
    assert_same(routes, router.route(batch_of(rows), backend="cpu"))
    count = _device.cached_count()
    router.route(batch_of(rows).to_device(), backend="gpu")
    assert _device.cached_count() == count


@pytest.mark.gpu
def test_a_hundred_thousand_messages_on_a_real_gpu():
    """On a real GPU: 100,000 messages through 1,000 bindings equal the CPU."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("sized for a real GPU")
    rng = np.random.default_rng(4)
    bindings = [({"type": f"t{k % 50}", "region": f"r{k % 7}"}, f"q{k % 97}") for k in range(1000)]
    bindings += [({"x-match": "any", "prio": int(p), "type": "t3"}, f"p{p}") for p in range(10)]
    rows = [{"type": f"t{rng.integers(60)}", "region": f"r{rng.integers(8)}", "prio": int(rng.integers(12))}
            for _ in range(100_000)]
    router = fr.HeadersRouter(bindings)
    batch = batch_of(rows)
    cpu = router.route(batch, backend="cpu")
    assert_same(router.route(batch, backend="gpu"), cpu)
    assert_same(router.route(batch.to_device(), backend="gpu"), cpu)
