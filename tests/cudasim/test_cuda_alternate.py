"""``alternate=`` on device batches (kernels/cuda_splice.py, Router._alternate_on_device): the
device rows, gathers and splice equal their CPU twins, routers give device Routes equal to the
CPU path bit for bit, and the name and keys-only router cases copy nothing to the host."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
from _sim import SIM, dev, host, random_routes
from fastroute import _device
from fastroute.kernels import cuda_splice as K
from fastroute.kernels import group as C
from test_cuda_frame import small_launches  # noqa: F401  (autouse: small blocks, poisoned allocations)

# --------------------------------------------------------------------------- kernels


def with_empty_routes(rng, n, n_names, share):
    """Random CSR routes where about ``share`` of the messages route nowhere."""
    offsets, dest = random_routes(rng, n, n_names)
    keep = rng.random(n) >= share
    fan = np.where(keep, np.diff(offsets), 0)
    new_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(fan, out=new_offsets[1:])
    parts = [dest[offsets[i]:offsets[i + 1]] for i in range(n) if keep[i]]
    return new_offsets, (np.concatenate(parts) if parts else np.zeros(0, np.int32)).astype(np.int32)


@SIM
@given(n=st.integers(0, 40), share=st.sampled_from([0.0, 0.3, 1.0]), seed=st.integers(0, 2 ** 32 - 1))
def test_unroutable_rows_equal_numpy(launch_shape, n, share, seed):
    """The compacted empty routes are numpy's flatnonzero: none, some or all messages."""
    offsets, _ = with_empty_routes(np.random.default_rng(seed), n, 5, share)
    rows = K.unroutable_rows(dev(offsets))
    expected = np.flatnonzero(offsets[1:] == offsets[:-1])
    assert rows.dtype == np.int64 and host(rows).tolist() == expected.tolist()


@SIM
@given(n=st.integers(0, 30), n_names=st.sampled_from([1, 3, 70]), max_sub=st.sampled_from([0, 3, 60]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_splice_equals_cpu(launch_shape, n, n_names, max_sub, seed):
    """Any ascending rows (empty routes or not), sub-routes of 0..60 ids (past the CPU's
    insertion-sort limit) and a one-to-one id map that scrambles their order: the CPU's answer."""
    rng = np.random.default_rng(seed)
    offsets, dest = random_routes(rng, n, n_names)
    rows = np.flatnonzero(rng.random(n) < 0.5).astype(np.int64)
    n_sub = 80
    fan = rng.integers(0, max_sub + 1, rows.size)
    sub_offsets = np.zeros(rows.size + 1, np.int64)
    np.cumsum(fan, out=sub_offsets[1:])
    parts = [np.sort(rng.choice(n_sub, f, replace=False)) for f in fan]
    sub_dest = (np.concatenate(parts) if parts else np.zeros(0)).astype(np.int32)
    id_map = rng.permutation(n_sub + 20)[:n_sub].astype(np.int32)
    got = K.splice_routes(dev(offsets), dev(dest), dev(rows), dev(sub_offsets), dev(sub_dest), dev(id_map))
    want = C.splice_routes(offsets, dest, rows, sub_offsets, sub_dest, id_map)
    assert got[0].dtype == np.int64 and got[1].dtype == np.int32
    assert host(got[0]).tolist() == want[0].tolist() and host(got[1]).tolist() == want[1].tolist()


def full_batch():
    return fr.MessageBatch.from_pylist(
        keys=[b"a.b", None, "ключ", b"", b"x" * 40],
        values=[b"x", b"yy", None, b"", b"zzz"],
        headers=[{"type": "pdf", "n": 3}, None, {"CC": ["a", "b"], "blob": b"\x00\x01"}, {"f": 1.5, "b": True},
                 {"l": [1, "two", {"d": None}]}],
        partition=[0, 1, 2, 3, 4], offset=[10, 11, 12, 13, 14], timestamp=[5, 6, 7, 8, 9])


@pytest.mark.parametrize("rows", [[], [1], [4, 0, 2], [2, 2, 2, 3], [0, 1, 2, 3, 4], [3, 1, 1, 4, 0, 0]])
def test_batch_take_equals_host_take(launch_shape, rows):
    """Keys, values, nulls, headers (blobs, nested values) and metadata of any rows, in any
    order, repeats included, equal MessageBatch.take."""
    batch = full_batch()
    idx = np.array(rows, np.int64)
    taken = _device.batch_take(batch.to_device(), dev(idx))
    assert taken.device == "gpu" and _device.is_device_array(taken.headers.blob_data)
    assert taken.to_host().equals(batch.take(idx))


def test_device_batch_take_method(launch_shape):
    """MessageBatch.take on a device batch: host indices (negative ones, a boolean mask) are
    checked and gathered on the device; device indices are used as they are."""
    batch = full_batch()
    on_gpu = batch.to_device()
    for idx in ([4, -1, 0], np.array([True, False, True, False, True]), []):
        taken = on_gpu.take(idx)
        assert taken.device == "gpu"
        assert taken.to_host().equals(batch.take(idx))
    assert on_gpu.take(dev(np.array([3, 1], np.int64))).to_host().equals(batch.take([3, 1]))
    with pytest.raises(IndexError, match=r"\[-5, 5\)"):
        on_gpu.take([5])


def test_batch_take_reads_columns_that_start_past_zero(launch_shape):
    """A device column whose offsets start inside its buffer is gathered from the right bytes."""
    data = np.frombuffer(b"....abcdefgh", np.uint8)
    batch = _device.batch_from_device_buffers(dev(np.array([4, 6, 6, 12], np.int64)), dev(data),
                                              key_validity=dev(np.array([True, False, True])))
    taken = _device.batch_take(batch, dev(np.array([2, 1, 0], np.int64)))
    assert taken.to_host().keys.to_pylist() == [b"cdefgh", None, b"ab"]


# --------------------------------------------------------------------------- routers

WORDS = ["a", "b", "c", ""]
keys_strategy = st.lists(st.one_of(st.none(), st.lists(st.sampled_from(WORDS), max_size=3).map(".".join)),
                         max_size=24)
bindings_strategy = st.lists(st.tuples(st.sampled_from(["a.*", "a.#", "b", "#.c", "a", "*"]),
                                       st.sampled_from(["q0", "q1", "q2"])), max_size=4)


def alternates():
    """Name alternates (new or already a destination) and router alternates: direct, fanout
    (whose names map out of order into the merged names), a chain, one that routes nothing."""
    return {
        "name": lambda: "dead-letters",
        "name-known": lambda: "q1",
        "direct": lambda: fr.DirectRouter([("b", "d1"), ("", "d0"), ("c", "q2")]),
        "fanout": lambda: fr.FanoutRouter(["f1", "q2", "f0", "q0"]),
        "chain": lambda: fr.DirectRouter([("a.c", "d1")],
                                         alternate=fr.TopicRouter([("#.c", "t")], alternate="last")),
        "fanout-none": lambda: fr.FanoutRouter([], alternate="ae"),
    }


def assert_same(gpu: fr.Routes, cpu: fr.Routes) -> None:
    """Device Routes equal to the CPU's bit for bit: offsets, ids in order, names."""
    assert gpu.device == "gpu"
    gpu = gpu.to_host()
    assert gpu.offsets.tolist() == cpu.offsets.tolist()
    assert gpu.destinations.tolist() == cpu.destinations.tolist()
    assert gpu.names == cpu.names


@SIM
@given(bindings=bindings_strategy, keys=keys_strategy, alt=st.sampled_from(sorted(alternates())))
def test_device_alternate_equals_cpu(launch_shape, bindings, keys, alt):
    """Random bindings and keys (nulls, no match, all or none unroutable, empty batches):
    a device batch gives device Routes equal to the CPU path on the host batch."""
    make = alternates()[alt]
    batch = fr.MessageBatch.from_pylist(keys=keys)
    device = fr.TopicRouter(bindings, alternate=make()).route(batch.to_device())
    assert_same(device, fr.TopicRouter(bindings, alternate=make()).route(batch, backend="cpu"))


@pytest.mark.parametrize("alt", sorted(alternates()))
@pytest.mark.parametrize("keys", [[], ["zz", None, "b.b"], ["a.a", "a.b.c"], ["a.x", None, "b", "", "c.c", "a.y"]],
                         ids=["empty", "all-unroutable", "none-unroutable", "mixed"])
def test_device_alternate_edge_batches(launch_shape, keys, alt):
    """The empty batch, every message unroutable, none unroutable, a mix: the CPU's answer."""
    make = alternates()[alt]
    batch = fr.MessageBatch.from_pylist(keys=keys)
    bindings = [("a.*", "q0"), ("a.#", "q1")]
    device = fr.TopicRouter(bindings, alternate=make()).route(batch.to_device(), backend="gpu")
    assert_same(device, fr.TopicRouter(bindings, alternate=make()).route(batch, backend="cpu"))


def test_headers_alternate_gets_the_gathered_headers(launch_shape):
    """A HeadersRouter alternate routes the unroutable messages by their own headers."""
    batch = full_batch()

    def make():
        return fr.TopicRouter([("a.b", "q")], alternate=fr.HeadersRouter(
            [({"x-match": "any", "b": True, "n": 3}, "h1"), ({"blob": b"\x00\x01"}, "h2")], alternate="ae"))

    assert_same(make().route(batch.to_device()), make().route(batch, backend="cpu"))


class KeyLength(fr.Router):
    """A router with no GPU path: message i goes to "len<k>" for its key of k bytes."""

    def __init__(self):
        super().__init__()
        self._names = [f"len{k}" for k in range(4)]

    def _route_cpu(self, batch):
        lengths = np.minimum(batch.keys.lengths(), 3)
        return fr.Routes(np.arange(len(batch) + 1), lengths.astype(np.int32), self._names)


def test_alternate_without_a_gpu_path_splices_on_the_host(launch_shape):
    """An alternate router with no GPU path: the host splice, moved back to the device."""
    batch = fr.MessageBatch.from_pylist(keys=["a.x", "bb", None, "cccc", "a.y"])
    router = fr.TopicRouter([("a.*", "qa")], alternate=KeyLength())
    assert_same(router.route(batch.to_device()), router.route(batch, backend="cpu"))


def test_fanout_with_no_destinations_on_a_device_batch(launch_shape):
    """A router that hands back host Routes for a device batch still gets a device splice
    (name and router alternates)."""
    batch = fr.MessageBatch.from_pylist(keys=["a", None, "b"])
    for alt in ("ae", fr.DirectRouter([("a", "qa")], alternate="ae")):
        router = fr.FanoutRouter([], alternate=alt)
        assert_same(router.route(batch.to_device()), router.route(batch, backend="cpu"))


def test_host_batch_on_the_gpu_backend_gets_host_routes():
    """backend="gpu" on a host batch: host Routes, the CPU's answer."""
    batch = fr.MessageBatch.from_pylist(keys=["a.x", "zz", None])
    router = fr.TopicRouter([("a.*", "qa")], alternate=fr.DirectRouter([("zz", "z")], alternate="ae"))
    routes = router.route(batch, backend="gpu")
    assert routes.device == "cpu" and routes.to_lists() == [["qa"], ["z"], ["ae"]]
    assert routes == router.route(batch, backend="cpu")


def no_host_copies(patch: pytest.MonkeyPatch) -> None:
    """Make every way a batch, Routes or device array is copied to the host raise."""
    def refuse(*args, **kwargs):
        raise AssertionError("copied to the host")

    for name in ("batch_to_host", "host_batch", "routes_to_host", "to_host_array"):
        patch.setattr(_device, name, refuse)
    for cls, name in ((fr.Routes, "to_host"), (fr.Routes, "unroutable"), (fr.MessageBatch, "to_host")):
        patch.setattr(cls, name, refuse)


@pytest.mark.parametrize("alt", ["name", "name-known", "direct", "fanout", "chain"])
def test_device_alternate_copies_nothing_to_the_host(launch_shape, alt):
    """Name alternates and keys-only router alternates stay on the device from start to end."""
    make = alternates()[alt]
    batch = fr.MessageBatch.from_pylist(keys=["a.x", "zz", None, "b", "", "a.c", "a.y"])
    on_device = batch.to_device()
    bindings = [("a.*", "q0"), ("a.#", "q1")]
    expected = fr.TopicRouter(bindings, alternate=make()).route(batch, backend="cpu")
    router = fr.TopicRouter(bindings, alternate=make())
    with pytest.MonkeyPatch.context() as patch:
        no_host_copies(patch)
        routes = router.route(on_device)
    assert_same(routes, expected)


def test_the_no_copy_guard_catches_a_host_splice(launch_shape):
    """The guard above fails the host path: an alternate without a GPU path copies."""
    on_device = fr.MessageBatch.from_pylist(keys=["zz"]).to_device()
    with pytest.MonkeyPatch.context() as patch:
        no_host_copies(patch)
        with pytest.raises(AssertionError, match="copied to the host"):
            fr.TopicRouter([("a", "q")], alternate=KeyLength()).route(on_device)
