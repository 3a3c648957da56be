"""fastroute/_device.py: batches and routes moved to and from the device, the table cache,
device buffers as input, and where each backend runs."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import cuda

import fastroute as fr
from _sim import SIM, dev, host, keys
from fastroute import _backend, _device


def full_batch():
    return fr.MessageBatch.from_pylist(
        keys=[b"a.b", None, "ключ", b""], values=[b"x", b"yy", None, b""],
        headers=[{"type": "pdf", "n": 3}, None, {"CC": ["a", "b"]}, {"f": 1.5, "b": True}],
        partition=[0, 1, 2, 3], offset=[10, 11, 12, 13], timestamp=[5, 6, 7, 8])


def test_round_trip_keeps_every_column():
    """to_device then to_host gives an equal batch: keys, values, nulls, headers, metadata."""
    batch = full_batch()
    on_device = batch.to_device()
    assert batch.device == "cpu" and on_device.device == "gpu"
    assert _device.is_device_array(on_device.keys.offsets) and _device.is_device_array(on_device.values.data)
    assert _device.is_device_array(on_device.headers.ints) and on_device.headers.names == batch.headers.names
    assert _device.is_device_array(on_device.timestamp)
    back = on_device.to_host()
    assert back.device == "cpu" and back.equals(batch)
    assert len(on_device) == len(batch) == 4


@SIM
@given(items=keys, values=st.lists(st.one_of(st.none(), st.binary(max_size=8)), max_size=60))
def test_round_trip_of_random_batches(items, values):
    """Any keys and values (nulls, empties) come back byte for byte."""
    values = (values + [None] * len(items))[:len(items)]
    batch = fr.MessageBatch.from_pylist(keys=items, values=values)
    assert batch.to_device().to_host().equals(batch)


def test_moves_of_a_resident_batch_return_it_unchanged():
    """to_device of a device batch and to_host of a host batch are the batch itself."""
    batch = full_batch()
    on_device = batch.to_device()
    assert on_device.to_device() is on_device and batch.to_host() is batch


def test_a_column_viewing_part_of_a_buffer_uploads_only_its_bytes():
    """Offsets starting past 0 are rebased; only the used bytes go to the device."""
    data = np.frombuffer(b"....abcdef....", np.uint8)
    batch = fr.MessageBatch.from_buffers(np.array([4, 6, 10], np.int64), data)
    keys_dev = batch.to_device().keys
    assert host(keys_dev.offsets).tolist() == [0, 2, 6] and keys_dev.data.shape[0] == 6
    assert batch.to_device().to_host().keys.to_pylist() == [b"ab", b"cdef"]


def test_upload_of_selected_parts():
    """parts=("keys",) uploads the keys only; values become device nulls, the rest None."""
    batch = full_batch()
    part = _device.batch_to_device(batch, ("keys",))
    assert part.device == "gpu" and part.headers is None and part.partition is None
    assert part.to_host().keys.to_pylist() == batch.keys.to_pylist()
    assert part.to_host().values.to_pylist() == [None] * 4
    with pytest.raises(ValueError, match="parts"):
        _device.batch_to_device(batch, ("keys", "bodies"))


def test_routes_round_trip():
    """Routes.to_device / to_host keep offsets, destinations and names."""
    routes = fr.FanoutRouter(["a", "b"]).route([b"x", b"y"], backend="cpu")
    on_device = routes.to_device()
    assert on_device.device == "gpu" and on_device.names == ["a", "b"]
    assert on_device.to_device() is on_device and routes.to_host() is routes
    assert on_device.to_host() == routes


def test_device_batch_from_device_buffers():
    """Device arrays are adopted without a copy; host arrays are uploaded; nulls kept."""
    offsets, data = dev(np.array([0, 2, 2, 5], np.int64)), dev(np.frombuffer(b"abcde", np.uint8))
    batch = _device.batch_from_device_buffers(offsets, data, key_validity=np.array([True, False, True]))
    assert batch.keys.offsets is offsets and batch.keys.data is data
    assert batch.to_host().keys.to_pylist() == [b"ab", None, b"cde"]
    assert batch.to_host().values.to_pylist() == [None, None, None]
    routes = fr.Partitioner(7).route(batch, backend="gpu")
    assert routes.to_host() == fr.Partitioner(7).route([b"ab", None, b"cde"], backend="cpu")


@pytest.mark.parametrize("offsets,data,match", [
    (np.array([0, 3, 2], np.int64), b"abc", "item 1"),
    (np.array([0, 2, 9], np.int64), b"abc", "within data"),
    (np.array([0, 1], np.int32), b"a", "dtype int64"),
    (np.zeros(0, np.int64), b"", "n\\+1"),
])
def test_device_buffers_are_checked(offsets, data, match):
    """Bad device offsets fail as BatchError naming what was wrong (and the item)."""
    with pytest.raises(fr.BatchError, match=match):
        _device.batch_from_device_buffers(dev(offsets), dev(np.frombuffer(data, np.uint8)) if data else
                                          dev(np.zeros(0, np.uint8)))


def test_device_buffers_need_keys_or_values():
    """Neither keys nor values is a BatchError, as for host batches."""
    with pytest.raises(fr.BatchError, match="keys or values"):
        _device.batch_from_device_buffers()


def test_device_buffers_lengths_must_agree():
    """Keys and values of different lengths are refused."""
    with pytest.raises(fr.BatchError, match="same length"):
        _device.batch_from_device_buffers(np.array([0, 1], np.int64), np.zeros(1, np.uint8),
                                          np.array([0, 1, 2], np.int64), np.zeros(2, np.uint8))


# --------------------------------------------------------------------------- table cache

class Table:
    """A stand-in for a compiled routing table."""


def test_upload_cached_uploads_once_per_owner_and_key():
    """The second request for the same (owner, key) returns the same device arrays."""
    owner = Table()
    first = _device.upload_cached(owner, "t", (np.arange(5), np.ones(3, np.uint8)))
    again = _device.upload_cached(owner, "t", (np.arange(5), np.ones(3, np.uint8)))
    assert again is first and host(first[0]).tolist() == [0, 1, 2, 3, 4]
    other = _device.upload_cached(owner, "u", {"a": np.arange(2)})
    assert set(other) == {"a"} and host(other["a"]).tolist() == [0, 1]
    _device.forget(owner)


def entries_of(owner) -> list:
    """The cache keys held for ``owner`` (the cache is keyed by (id, key, device))."""
    return [k for k in list(_device._cache) if k[0] == id(owner)]


def test_cache_entries_die_with_their_owner():
    """An owner that is garbage collected takes its device copies with it."""
    owner = Table()
    _device.upload_cached(owner, "t", (np.arange(3),))
    owner_id = id(owner)
    assert len(entries_of(owner)) == 1
    del owner
    gc.collect()
    assert [k for k in list(_device._cache) if k[0] == owner_id] == []


def test_owner_without_weak_references_is_kept_until_forgotten():
    """A tuple owner cannot be weakly referenced: it is held until forget()."""
    owner = (np.arange(3),)
    first = _device.upload_cached(owner, "t", owner)
    assert _device.upload_cached(owner, "t", owner) is first
    assert len(entries_of(owner)) == 1
    _device.forget(owner)
    assert entries_of(owner) == []


def test_routers_reuse_their_uploaded_tables():
    """A RandomRouter with weights uploads its table on the first GPU call only."""
    router = fr.RandomRouter(["a", "b", "c"], seed=1, weights=[1, 2, 3])
    router.route([b"x"] * 3, backend="gpu")
    first = dict((k, _device._cache[k][1]) for k in entries_of(router))
    router.route([b"x"] * 4, backend="gpu")
    assert len(first) == 1
    assert all(_device._cache[k][1] is v for k, v in first.items())


# --------------------------------------------------------------------------- where it runs

def test_auto_keeps_a_device_batch_on_the_gpu(monkeypatch):
    """A device batch stays on the GPU under "auto", even far below the host threshold."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", str(10 ** 9))
    batch = fr.MessageBatch.from_keys([b"a", b"b"]).to_device()
    assert _backend.place("auto", batch) == ("gpu", batch)


def test_cpu_backend_moves_a_device_batch_to_the_host():
    """place("cpu", device batch) hands back its host copy, so a CPU kernel can read it."""
    batch = fr.MessageBatch.from_keys([b"a", None])
    where, moved = _backend.place("cpu", batch.to_device())
    assert where == "cpu" and moved.device == "cpu" and moved.equals(batch)


def test_auto_sends_large_host_batches_to_the_gpu(monkeypatch):
    """With a usable GPU, "auto" picks it at and above the threshold, the CPU below."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "4")
    assert _backend.resolve("auto", 3) == "cpu"
    assert _backend.resolve("auto", 4) == "gpu"
    batch = fr.MessageBatch.from_keys([b"a", b"b", b"c", b"d"])
    assert fr.Partitioner(5).route(batch) == fr.Partitioner(5).route(batch, backend="cpu")


def test_gpu_routes_runs_where_the_data_lives():
    """gpu_routes returns host Routes for a host batch and device Routes for a device batch."""
    seen = []

    def compute(b):
        seen.append(b)
        return _device.empty_routes(len(b), ["q"], True)

    batch = full_batch()
    assert _device.gpu_routes(batch, compute).device == "cpu"
    assert seen[-1].device == "gpu" and seen[-1].headers is None  # only the keys went up
    on_device = batch.to_device()
    assert _device.gpu_routes(on_device, compute).device == "gpu"
    assert seen[-1] is on_device


def test_current_device_id_is_an_int():
    """The cache key's device id is the current device's."""
    assert isinstance(_device.current_device_id(), int)
    assert _device.where(cuda.to_device(np.zeros(1))) == "gpu" and _device.where(np.zeros(1)) == "cpu"


def test_router_auto_keeps_a_small_device_batch_on_the_gpu():
    """A device batch below the threshold is routed on the GPU under "auto"."""
    batch = fr.MessageBatch.from_keys([b"a", b"b"])
    routes = fr.Partitioner(3).route(batch.to_device())
    assert routes.device == "gpu" and routes.to_host() == fr.Partitioner(3).route(batch, backend="cpu")


def test_router_cpu_backend_copies_a_device_batch_to_the_host():
    """backend="cpu" on a device batch routes its host copy."""
    batch = fr.MessageBatch.from_keys([b"a", None])
    routes = fr.Partitioner(3).route(batch.to_device(), backend="cpu")
    assert routes == fr.Partitioner(3).route(batch, backend="cpu")


def test_equals_takes_device_batches():
    """A device batch compares equal to its host twin, from either side."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", None, b""], values=[b"x", None, b"yz"])
    on_gpu = batch.to_device()
    assert on_gpu.equals(batch) and batch.equals(on_gpu) and on_gpu.equals(on_gpu)
    assert not on_gpu.equals(batch.take([2, 1, 0]))


def test_the_ring_copies_a_device_batch_in():
    """push_batch of a device batch copies it to the host on the way in."""
    # a GPU machine may run these tests from a checkout without the built extension; the
    # ring itself is tested in the main run, which requires it
    pytest.importorskip("fastroute._ring", reason="the ring's cffi extension is not built in this checkout")
    on_gpu = fr.MessageBatch.from_pylist(keys=[b"a", None, b""], values=[b"x", None, b"yz"]).to_device()
    ring = fr.Ring(1 << 16)
    try:
        assert ring.push_batch(on_gpu) == 3
        out = ring.pop_batch(10)
        assert out.keys.to_pylist() == [b"a", None, b""] and out.values.to_pylist() == [b"x", None, b"yz"]
    finally:
        ring.close()
