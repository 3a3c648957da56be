"""kernels/cuda_crc32c.py, kernels/cuda_frame.py and the GPU path of encode_frame /
encode_frames: the CRC-32C check value, the slow references in reference_codec.py, and the
CPU encoder's bytes, identical."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

import fastroute as fr
from _sim import SIM, random_routes
from fastroute import _backend, _device, codec
from fastroute.kernels import crc32c as CPU_CRC
from fastroute.kernels import cuda_crc32c as GC
from fastroute.kernels import cuda_frame, cuda_launch
from reference_codec import batches, crc32c_bitwise, encode_frame_ref


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Blocks of 8 threads, grids of at most 4 blocks, 16-byte CRC chunks (a frame then spans
    many threads); tests taking ``launch_shape`` override the block shape. Under the
    simulator, new device arrays are filled with 0xA5 bytes, as real device memory holds
    whatever was there before: a byte the kernels forget to write shows."""
    monkeypatch.setattr(cuda_launch, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(cuda_launch, "MAX_BLOCKS", 4)
    monkeypatch.setattr(GC, "CHUNK", 16)
    if numba.config.ENABLE_CUDASIM:
        real = cuda.device_array

        def poisoned(shape, dtype=np.float64, *args, **kwargs):
            arr = real(shape, dtype, *args, **kwargs)
            arr._ary.reshape(-1).view(np.uint8)[:] = 0xA5
            return arr

        monkeypatch.setattr(cuda, "device_array", poisoned)


def padded(data: bytes):
    """A device copy of ``data`` padded to a multiple of 8 bytes, and its uint64 view."""
    buf = np.zeros(len(data) + (-len(data)) % 8, np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    d = _device.to_device_array(buf)
    return d, d.view(np.uint64)


# --------------------------------------------------------------------------- CRC-32C

@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), min_size=2, max_size=2))
def test_chunk_body_on_the_cpu_gives_the_crc(data, cuts):
    """The per-chunk body (compiled for the CPU) over any unaligned range, finished as the
    device finishes it, is the CRC-32C of the reference."""
    a, b = sorted(min(c, len(data)) for c in cuts)
    buf = np.zeros(len(data) + 8 - len(data) % 8, np.uint8)
    buf[:len(data)] = np.frombuffer(data, np.uint8)
    raw = GC.crc_raw_cpu(CPU_CRC._SLICE8, buf, buf.view(np.uint64), a, b)
    crc = int(CPU_CRC.crc32c_combine(0xFFFFFFFF, raw, b - a)) ^ 0xFFFFFFFF
    assert crc == crc32c_bitwise(data[a:b])


def test_device_crc_check_value(launch_shape):
    """crc32c("123456789") = 0xE3069283 on the device, whole and as pieces of any chunking."""
    d, w = padded(b"123456789")
    for chunk in (8, 16, 2048):
        got = GC.crc32c_ranges(d, w, np.array([0]), np.array([9]), chunk=chunk).copy_to_host()
        assert got.tolist() == [0xE3069283]


@SIM
@given(data=st.binary(max_size=400), ranges=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 400)),
                                                     max_size=8), chunk=st.sampled_from([8, 16, 24, 64]))
def test_device_crc_of_many_ranges(data, ranges, chunk):
    """Random (overlapping, empty, unaligned) ranges of one buffer, any chunk size: each CRC
    equals the bitwise reference."""
    bounds = [tuple(sorted((min(a, len(data)), min(b, len(data))))) for a, b in ranges]
    d, w = padded(data)
    starts = np.array([a for a, _ in bounds], np.int64)
    stops = np.array([b for _, b in bounds], np.int64)
    got = GC.crc32c_ranges(d, w, starts, stops, chunk=chunk).copy_to_host().tolist()
    assert got == [crc32c_bitwise(data[a:b]) for a, b in bounds]


# --------------------------------------------------------------------------- encode_frame

@SIM
@given(batch=batches(max_size=24))
def test_encode_frame_gpu_equals_cpu_and_reference(launch_shape, batch):
    """Random batches (nulls, headers of every type, metadata): the GPU frame is byte for
    byte the CPU frame and the reference frame, and decodes back to the batch."""
    gpu = codec.encode_frame(batch, backend="gpu")
    assert isinstance(gpu, np.ndarray)
    cpu = codec.encode_frame(batch, backend="cpu")
    assert bytes(gpu) == bytes(cpu) == encode_frame_ref(batch)
    assert codec.decode_frame(gpu).equals(batch)


def test_encode_frame_of_an_empty_batch_and_a_device_batch():
    """An empty batch gives the CPU's 0-message frame; a device batch gives a device frame."""
    empty = fr.MessageBatch.from_pylist(keys=[])
    assert bytes(codec.encode_frame(empty, backend="gpu")) == bytes(codec.encode_frame(empty, backend="cpu"))
    batch = fr.MessageBatch.from_pylist(keys=[b"k", None], values=[b"v" * 20, b""], headers=[{"a": 1}, None],
                                        partition=[3, 4])
    frame = codec.encode_frame(batch.to_device(), backend="gpu")
    assert _device.where(frame) == "gpu"
    assert bytes(frame.copy_to_host()) == bytes(codec.encode_frame(batch, backend="cpu"))


# --------------------------------------------------------------------------- encode_frames

@st.composite
def routed_batches(draw):
    batch = draw(batches(max_size=20))
    n_names = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    offsets, dest = random_routes(rng, len(batch), n_names)
    return batch, fr.Routes(offsets, dest, [f"d{k}" for k in range(n_names)])


@SIM
@given(case=routed_batches())
def test_encode_frames_gpu_equals_cpu(launch_shape, case):
    """Random batches and routes (destinations that receive nothing, messages that go
    nowhere): the same frames, in the same order, byte for byte; each equals the reference
    frame of its destination's messages."""
    batch, routes = case
    gpu = codec.encode_frames(batch, routes, backend="gpu")
    cpu = codec.encode_frames(batch, routes, backend="cpu")
    assert list(gpu) == list(cpu)
    for name, frame in cpu.items():
        assert bytes(gpu[name]) == bytes(frame)
    for name, rows in routes.groups().items():
        assert (name in gpu) == (len(rows) > 0)
        if len(rows):
            assert bytes(gpu[name]) == encode_frame_ref(batch.take(rows))


def test_encode_frames_on_device_batches_and_routes():
    """Device batch and device routes give device frames with the CPU's bytes; routes going
    nowhere give no frames."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"bb", None, b"c"], values=[b"1", None, b"333", b""],
                                        headers=[{"h": "x"}, None, {"h": [1, 2.5]}, {}])
    routes = fr.Routes([0, 2, 2, 3, 5], [0, 2, 1, 0, 1], ["x", "y", "z"])
    cpu = codec.encode_frames(batch, routes, backend="cpu")
    gpu = codec.encode_frames(batch.to_device(), routes.to_device(), backend="gpu")
    assert list(gpu) == list(cpu)
    for name in cpu:
        assert _device.where(gpu[name]) == "gpu"
        assert bytes(gpu[name].copy_to_host()) == bytes(cpu[name])
    nowhere = fr.Routes([0, 0, 0, 0, 0], [], ["x"])
    assert codec.encode_frames(batch, nowhere, backend="gpu") == {}


def test_bad_routes_are_refused_like_the_cpu():
    """Routes whose offsets or ids do not fit the batch raise the CPU path's BatchError."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"])
    for offsets, dest in (([0, 1, 3], [0, 0]), ([1, 1, 2], [0, 0]), ([0, 1, 2], [0, 5]), ([0, 1, 2], [-1, 0])):
        bad = fr.Routes(offsets, dest, ["x", "y"], check=False)
        with pytest.raises(fr.BatchError) as cpu_error:
            codec.encode_frames(batch, bad, backend="cpu")
        with pytest.raises(fr.BatchError) as gpu_error:
            codec.encode_frames(batch, bad, backend="gpu")
        assert str(gpu_error.value) == str(cpu_error.value)


# --------------------------------------------------------------------------- backend choice

def test_backend_choice_for_encoding(monkeypatch):
    """"auto" encodes small host batches on the CPU and device batches (or batches past the
    threshold) on the GPU; "gpu" without a device raises BackendUnavailable with the reason."""
    calls = []
    real = cuda_frame.encode
    monkeypatch.setattr(cuda_frame, "encode", lambda *a, **k: calls.append(1) or real(*a, **k))
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"x", b"y"])
    codec.encode_frame(batch)
    assert calls == []
    codec.encode_frame(batch.to_device())
    assert calls == [1]
    monkeypatch.setenv("FASTROUTE_GPU_MIN_BATCH", "2")
    codec.encode_frame(batch)
    assert calls == [1, 1]
    monkeypatch.setattr(_backend, "gpu_status", lambda: "no CUDA device found (the driver sees none)")
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        codec.encode_frame(batch, backend="gpu")
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        codec.encode_frames(batch, fr.Routes([0, 1, 2], [0, 0], ["x"]), backend="gpu")
    assert bytes(codec.encode_frame(batch)) == bytes(codec.encode_frame(batch, backend="cpu"))


@pytest.mark.gpu
def test_a_million_deliveries_on_a_real_gpu():
    """On a real GPU: 500,000 messages to 1.5M deliveries over 100 destinations, every frame
    byte for byte the CPU's; one frame of the whole batch too."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("sized for a real GPU")
    rng = np.random.default_rng(9)
    n = 500_000
    lengths = rng.integers(0, 64, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = rng.integers(0, 256, int(offsets[-1]), dtype=np.uint8)
    batch = fr.MessageBatch.from_buffers(offsets, data, offsets, data, key_validity=rng.random(n) > 0.01)
    route_off, dest = random_routes(rng, n, 100, max_fanout=5)
    routes = fr.Routes(route_off, dest, [f"q{k}" for k in range(100)])
    cpu = codec.encode_frames(batch, routes, backend="cpu")
    gpu = codec.encode_frames(batch, routes, backend="gpu")
    assert list(gpu) == list(cpu) and all(bytes(gpu[k]) == bytes(cpu[k]) for k in cpu)
    assert bytes(codec.encode_frame(batch, backend="gpu")) == bytes(codec.encode_frame(batch, backend="cpu"))
