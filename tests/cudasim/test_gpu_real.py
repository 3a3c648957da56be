"""GPU path on a real CUDA device at realistic sizes (marker ``gpu``): skipped without one.

The simulator tests prove the kernels on tiny inputs; these check the same equalities on
millions of items, where real scheduling, many blocks and real atomics are in play, and the
CuPy interop that only exists on a real device.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastroute as fr
from fastroute import _device
from fastroute._backend import gpu_status

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _real_gpu():
    if numba.config.ENABLE_CUDASIM:
        pytest.skip("needs a real CUDA GPU (this run uses numba's CUDA simulator)")
    reason = gpu_status()
    if reason is not None:
        pytest.skip(f"needs a real CUDA GPU: {reason}")


def random_keys(n: int, seed: int = 0) -> fr.MessageBatch:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 41, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    return fr.MessageBatch.from_buffers(offsets, data, key_validity=rng.random(n) > 0.05)


@pytest.mark.parametrize("algorithm", ["murmur2", "consistent", "fnv1a", "murmur2_random", "consistent_random",
                                       "fnv1a_random"])
def test_million_keys_partition_like_the_cpu(algorithm):
    """1M keys of 0..40 bytes with 5% nulls: GPU partitions equal the CPU's, host and device batches."""
    batch = random_keys(1_000_000)
    cpu = fr.Partitioner(1009, algorithm, seed=3).route(batch, backend="cpu")
    assert fr.Partitioner(1009, algorithm, seed=3).route(batch, backend="gpu") == cpu
    on_device = fr.Partitioner(1009, algorithm, seed=3).route(batch.to_device(), backend="gpu")
    assert on_device.device == "gpu" and on_device.to_host() == cpu


@pytest.mark.parametrize("tabulated", [False, True], ids=["jumping", "tabulated"])
def test_million_keys_consistent_hash_like_the_cpu(monkeypatch, tabulated):
    """1M keys (5% null) through a 1,000-binding ring: GPU picks equal the CPU's, host and device
    batches, whether the router jumps or reads its seed table."""
    from fastroute import _consistent_hash

    batch = random_keys(1_000_000, seed=5)
    rng = np.random.default_rng(5)
    router = fr.ConsistentHashRouter([(f"q{k}", int(w)) for k, w in enumerate(rng.integers(1, 100, 1000))])
    cpu = router.route(batch, backend="cpu")
    if tabulated:
        monkeypatch.setattr(_consistent_hash, "TABULATE_AFTER", 1)
        router.route(batch.take([0]), backend="cpu")
        assert router.tabulated
    assert router.route(batch, backend="gpu") == cpu
    on_device = router.route(batch.to_device(), backend="gpu")
    assert on_device.device == "gpu" and on_device.to_host() == cpu


def test_consistent_hash_on_headers_like_the_cpu():
    """200k messages hashed on a header of every kind (and none): GPU picks equal the CPU's."""
    rng = np.random.default_rng(6)
    kinds = rng.integers(0, 6, 200_000).tolist()
    values = rng.integers(-(2 ** 62), 2 ** 62, 200_000).tolist()
    make = [lambda v: None, lambda v: {"h": v}, lambda v: {"h": f"key-{v}"}, lambda v: {"h": v % 2 == 0},
            lambda v: {"h": [f"{v}"]}, lambda v: {"other": v}]
    headers = [make[k](v) for k, v in zip(kinds, values)]
    batch = fr.MessageBatch.from_pylist(keys=[b""] * len(headers), headers=headers)
    router = fr.ConsistentHashRouter([(f"q{k}", k % 7 + 1) for k in range(300)], hash_header="h")
    cpu = router.route(batch, backend="cpu")
    assert router.route(batch, backend="gpu") == cpu
    assert router.route(batch.to_device(), backend="gpu").to_host() == cpu


def test_million_message_fanout_groups_like_the_cpu():
    """Grouping 1M messages x 3 destinations on the device equals the CPU counting sort."""
    batch = random_keys(1_000_000, seed=1)
    router = fr.FanoutRouter(["a", "b", "c"])
    cpu = router.route(batch, backend="cpu")
    go, gi = _device.device_groups(router.route(batch.to_device(), backend="gpu"))
    assert np.array_equal(go.copy_to_host(), cpu.group_offsets)
    assert np.array_equal(gi.copy_to_host(), cpu.group_indices)


def test_grouping_ten_thousand_destinations_like_the_cpu():
    """2M deliveries to 10,000 ids (4 radix passes) group exactly as on the CPU."""
    from fastroute.kernels import cuda_group, group

    rng = np.random.default_rng(2)
    n = 2_000_000
    offsets = np.arange(n + 1, dtype=np.int64)
    dest = rng.integers(0, 10_000, n).astype(np.int32)
    go, gi = cuda_group.group_by_destination(_device.to_device_array(offsets), _device.to_device_array(dest),
                                             10_000)
    cpu_go, cpu_gi = group.group_by_destination(offsets, dest, 10_000)
    assert np.array_equal(go.copy_to_host(), cpu_go) and np.array_equal(gi.copy_to_host(), cpu_gi)


def test_scan_of_ten_million_counts():
    """The device prefix sum equals numpy's cumsum over 10M counts."""
    from fastroute.kernels.cuda_scan import exclusive_scan

    values = np.random.default_rng(4).integers(0, 1000, 10_000_000).astype(np.int32)
    out = exclusive_scan(_device.to_device_array(values)).copy_to_host()
    assert out[0] == 0 and np.array_equal(out[1:], np.cumsum(values, dtype=np.int64))


def test_auto_uses_the_gpu_above_the_threshold(monkeypatch):
    """backend="auto" on a batch above FASTROUTE_GPU_MIN_BATCH gives the CPU's answer (on the GPU)."""
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "1000")
    batch = random_keys(5000)
    calls = []
    router = fr.Partitioner(12)
    original = type(router)._route_gpu
    monkeypatch.setattr(type(router), "_route_gpu", lambda self, b: calls.append(1) or original(self, b))
    assert router.route(batch) == fr.Partitioner(12).route(batch, backend="cpu")
    assert calls == [1]


def test_cupy_arrays_in_and_out():
    """CuPy buffers make a device batch without a copy; device Routes view as CuPy arrays."""
    cupy = pytest.importorskip("cupy")
    keys = [b"a", b"bb", b"", b"dddd"]
    host = fr.MessageBatch.from_keys(keys)
    offsets, data = cupy.asarray(host.keys.offsets), cupy.asarray(host.keys.data)
    batch = _device.batch_from_device_buffers(offsets, data)
    routes = fr.Partitioner(5).route(batch, backend="gpu")
    as_cupy = cupy.asarray(routes.destinations)
    assert as_cupy.data.ptr == routes.destinations.__cuda_array_interface__["data"][0]
    assert cupy.asnumpy(as_cupy).tolist() == fr.Partitioner(5).route(keys, backend="cpu").destinations.tolist()


def test_alternate_splice_of_a_million_messages_like_the_cpu():
    """1M keys through a topic router whose bindings miss about half of them, with a router
    alternate and a name alternate: the device splice equals the CPU's."""
    rng = np.random.default_rng(6)
    words = np.array(["a", "b", "c", "d"])
    keys = [".".join(words[rng.integers(0, 4, 3)]) for _ in range(1_000_000)]
    batch = fr.MessageBatch.from_keys(keys)
    bindings = [("a.#", "qa"), ("*.b.*", "qb"), ("#.c", "qc")]
    for alternate in (fr.DirectRouter([("d.d.d", "dd"), ("b.a.a", "ba")], alternate="dead"), "dead"):
        router = fr.TopicRouter(bindings, alternate=alternate)
        cpu = router.route(batch, backend="cpu")
        on_device = router.route(batch.to_device(), backend="gpu")
        assert on_device.device == "gpu" and on_device.to_host() == cpu


def test_device_take_of_a_million_rows_like_the_host():
    """MessageBatch.take of 1M random rows (repeats, any order) of a device batch with headers
    equals the host take."""
    rng = np.random.default_rng(7)
    n = 200_000
    batch = fr.MessageBatch.from_pylist(keys=[b"k%d" % i for i in range(n)], values=[b"v" * (i % 50) for i in range(n)],
                                        headers=[{"i": i, "s": "x" * (i % 7)} if i % 3 else None for i in range(n)])
    rows = rng.integers(0, n, 1_000_000)
    assert batch.to_device().take(rows).to_host().equals(batch.take(rows))


def test_frames_of_ten_million_bytes_decode_on_the_device_like_the_cpu():
    """encode_frames on the device, then decode_frame of every frame on the device: the batches
    equal the CPU decode of the CPU's frames; a corrupted frame raises the CPU's error."""
    from fastroute import codec

    batch = random_keys(500_000, seed=8)
    values = fr.BinaryColumn(np.arange(500_001, dtype=np.int64) * 20,
                             np.random.default_rng(8).integers(0, 256, 10_000_000, dtype=np.uint8))
    batch = fr.MessageBatch(batch.keys, values)
    routes = fr.Partitioner(16).route(batch, backend="cpu")
    cpu_frames = codec.encode_frames(batch, routes, backend="cpu")
    gpu_frames = codec.encode_frames(batch.to_device(), routes.to_device(), backend="gpu")
    for name, frame in gpu_frames.items():
        decoded = codec.decode_frame(frame)
        assert decoded.device == "gpu" and decoded.equals(codec.decode_frame(cpu_frames[name]))
    name, frame = next(iter(cpu_frames.items()))
    bad = frame.copy()
    bad[-1] ^= 1
    with pytest.raises(fr.FrameError) as on_cpu:
        codec.decode_frame(bad)
    with pytest.raises(fr.FrameError) as on_gpu:
        codec.decode_frame(_device.to_device_array(bad))
    assert str(on_gpu.value) == str(on_cpu.value) and on_gpu.value.offset == on_cpu.value.offset
    assert codec.crc32c(gpu_frames[name]) == codec.crc32c(frame)
