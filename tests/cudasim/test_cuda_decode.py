"""decode_frame on the device (kernels/cuda_frame_check.py) and crc32c of device buffers: the
CPU decoder's batch and the CPU decoder's errors, message and offset, for the same bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import cuda

import fastroute as fr
from _sim import SIM
from fastroute import _device, codec
from fastroute.kernels import _codes as C
from fastroute.kernels import cuda_crc32c as GC
from fastroute.kernels import cuda_frame_check as K
from fastroute.kernels import cuda_launch
from fastroute.kernels import frame as F
from fastroute.kernels import frame_check
from reference_codec import FRAME_HEADER, _nested, batches, crc32c_bitwise
from test_codec_errors import _frame, _good_columns, _header_column_start, _i64s, _nested_frame
from test_cuda_frame import routed_batches


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Blocks of 8 threads, grids of at most 4 blocks (the simulator runs every thread as a
    Python thread), 16-byte CRC chunks so that even a small frame's CRC spans many threads;
    tests taking ``launch_shape`` override the block shape."""
    monkeypatch.setattr(cuda_launch, "THREADS_PER_BLOCK", 8)
    monkeypatch.setattr(cuda_launch, "MAX_BLOCKS", 4)
    monkeypatch.setattr(GC, "CHUNK", 16)


def on_device(data) -> object:
    """A device copy of a bytes-like frame."""
    return cuda.to_device(np.frombuffer(bytes(data), np.uint8).copy())


def full_batch(value_bytes: int = 20):
    return fr.MessageBatch.from_pylist(
        keys=[b"k1", None, b"", b"k4"], values=[b"v" * value_bytes, b"", None, "значение"],
        headers=[{"a": 1, "s": "x", "l": [1, [2.5, "é", None], {"d": b"q", "t": True}]}, None, {},
                 {"b": 2.5, "n": None}],
        partition=[3, 4, 5, 6], offset=[10, 11, 12, 13], timestamp=[-1, 2, 3, 1 << 40])


def device_arrays(batch) -> list:
    h = batch.headers
    arrays = [batch.keys.offsets, batch.keys.data, batch.values.offsets, batch.values.data]
    arrays += [c.validity for c in (batch.keys, batch.values) if c.validity is not None]
    if h is not None:
        arrays += [h.offsets, h.name_ids, h.types, h.ints, h.floats, h.blob_offsets, h.blob_data]
    return arrays + [a for a in (batch.partition, batch.offset, batch.timestamp) if a is not None]


def decode_both(data: bytes, verify_crc: bool = True):
    """(CPU result, GPU result) of decoding ``data``: a batch (the GPU's copied to the host)
    or the FrameError raised."""
    results = []
    for backend, buf in (("cpu", data), ("gpu", on_device(data))):
        try:
            batch = codec.decode_frame(buf, verify_crc=verify_crc, backend=backend)
        except fr.FrameError as exc:
            results.append(exc)
        else:
            assert batch.device == backend
            results.append(batch.to_host())
    return results


def assert_same_outcome(data: bytes, verify_crc: bool = True):
    """Both backends accept ``data`` with equal batches, or raise the same error at the same
    offset; returns the error (or None)."""
    cpu, gpu = decode_both(data, verify_crc)
    if isinstance(cpu, fr.FrameError):
        assert isinstance(gpu, fr.FrameError), f"the device accepted a frame the CPU refuses: {cpu}"
        assert str(gpu) == str(cpu) and gpu.offset == cpu.offset
        return cpu
    assert not isinstance(gpu, fr.FrameError), f"the device refused a frame the CPU accepts: {gpu}"
    assert gpu.equals(cpu)
    return None


def faults_of(data: bytes, verify_crc: bool = True) -> int:
    """The device check mask of a frame whose header is valid."""
    frame = on_device(data)
    head = np.frombuffer(bytes(data[:FRAME_HEADER]), np.uint8)
    flags, n, m, k, sizes, starts, _ = codec._parse_header(head, len(data))
    stored = struct.unpack_from("<I", data, 4)[0]
    return K.frame_faults(frame, flags, n, m, k, sizes, starts, stored if verify_crc else None)


# --------------------------------------------------------------------------- round trips

@settings(SIM, max_examples=15)
@given(batch=batches(max_size=10))
def test_device_decode_equals_cpu_decode(launch_shape, batch):
    """Random batches (nulls, empties, headers of every type, metadata), encoded on the host
    and on the device: the device decode is a device batch equal to the CPU decode."""
    host_frame = codec.encode_frame(batch, backend="cpu")
    device_frame = codec.encode_frame(batch.to_device(), backend="gpu")
    expected = codec.decode_frame(host_frame)
    for frame in (device_frame, on_device(host_frame)):
        back = codec.decode_frame(frame)
        assert back.device == "gpu"
        assert all(_device.is_device_array(a) for a in device_arrays(back))
        assert back.to_host().equals(expected) and back.to_host().equals(batch)


@settings(max_examples=8, deadline=None)
@given(case=routed_batches())
def test_device_frames_of_encode_frames_decode_on_the_device(case):
    """Each device frame of encode_frames (slices of one device buffer) decodes on the device
    to what the CPU decodes from the host frames."""
    batch, routes = case
    host = codec.encode_frames(batch, routes, backend="cpu")
    frames = codec.encode_frames(batch.to_device(), routes.to_device(), backend="gpu")
    assert list(frames) == list(host)
    for name, frame in frames.items():
        back = codec.decode_frame(frame)
        assert back.device == "gpu" and back.to_host().equals(codec.decode_frame(host[name]))


def test_columns_are_views_of_the_device_frame():
    """Every column of the device batch starts inside the frame, at its column's offset; a
    byte written into the frame shows in the batch."""
    batch = full_batch()
    frame = codec.encode_frame(batch.to_device(), backend="gpu")
    back = codec.decode_frame(frame)
    base = codec._device_address(frame)
    _, _, _, _, sizes, starts, _ = codec._parse_header(frame.copy_to_host())
    assert codec._device_address(back.values.data) == base + starts[F.VALUE_DATA]
    assert codec._device_address(back.headers.blob_offsets) == base + starts[F.HDR_BLOB_OFFSETS]
    for arr in device_arrays(back):
        assert base <= codec._device_address(arr) <= base + frame.shape[0] - arr.nbytes
    frame[starts[F.VALUE_DATA]] = ord("w")
    assert back.values.data.copy_to_host()[0] == ord("w")


def test_only_the_header_and_the_names_cross_the_bus(monkeypatch):
    """Decoding a device frame of 20 KB copies to the host the 192 header bytes, the name
    offsets and bytes, and the check word: a few hundred bytes."""
    monkeypatch.setattr(GC, "CHUNK", 2048)
    batch = full_batch(value_bytes=20_000)
    frame = on_device(codec.encode_frame(batch, backend="cpu"))
    copied = []
    real = type(frame).copy_to_host

    def counting(self, *args, **kwargs):
        copied.append(self.nbytes)
        return real(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(type(frame), "copy_to_host", counting)
        back = codec.decode_frame(frame)
    names = sum(len(name.encode()) for name in batch.headers.names)
    assert sum(copied) <= F.HEADER_BYTES + 8 * (len(batch.headers.names) + 1) + names + 8
    assert back.to_host().equals(batch)


def test_a_misaligned_device_frame_is_copied_once_on_the_device():
    """A device frame 3 bytes past an aligned address decodes from a device copy."""
    batch = full_batch()
    frame = codec.encode_frame(batch, backend="cpu")
    holder = cuda.to_device(np.zeros(frame.shape[0] + 8, np.uint8))
    holder[3:3 + frame.shape[0]] = frame
    view = holder[3:3 + frame.shape[0]]
    assert codec._device_address(view) % 8 == 3
    back = codec.decode_frame(view)
    assert back.device == "gpu" and back.to_host().equals(batch)
    assert codec._device_address(back.keys.offsets) % 8 == 0


def test_deeply_nested_headers_fit_the_device_stacks():
    """A list nested 60 deep (and one dict per level) passes the device checks."""
    value = None
    for depth in range(60):
        value = [value, {"k": depth}] if depth % 2 else {"d": value}
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"x", b"y"],
                                        headers=[{"deep": value}, {"v": [value]}])
    back = codec.decode_frame(on_device(codec.encode_frame(batch)))
    assert back.to_host().equals(batch) and back.to_host()[1].headers == {"v": [value]}


def test_backends_and_where_the_batch_lives():
    """"auto" decodes where the frame lives; "cpu" copies a device frame to the host, "gpu"
    a host frame to the device; the batches are equal; unknown names are refused."""
    batch = full_batch()
    host = codec.encode_frame(batch, backend="cpu")
    dev = on_device(host)
    assert codec.decode_frame(host).device == "cpu"
    assert codec.decode_frame(bytes(host), backend="auto").device == "cpu"
    assert codec.decode_frame(dev).device == "gpu"
    from_device = codec.decode_frame(dev, backend="cpu")
    assert from_device.device == "cpu" and from_device.equals(batch)
    uploaded = codec.decode_frame(bytes(host), backend="gpu")
    assert uploaded.device == "gpu" and uploaded.to_host().equals(batch)
    with pytest.raises(ValueError, match="got 'cuda'"):
        codec.decode_frame(dev, backend="cuda")
    with pytest.raises(fr.FrameError, match="bytes-like"):
        codec.decode_frame(12345, backend="gpu")


def test_empty_and_header_only_frames():
    """A 0-message frame decodes on the device; an empty device buffer or one cut inside the
    header is refused as the CPU refuses it."""
    empty = codec.encode_frame(fr.MessageBatch.from_pylist(keys=[]), backend="cpu")
    assert len(codec.decode_frame(on_device(empty))) == 0
    for cut in (0, 5, FRAME_HEADER - 1):
        assert "truncated frame" in str(assert_same_outcome(bytes(empty)[:cut]))


# --------------------------------------------------------------------------- errors

def test_crc_corruption_and_truncation():
    """A flipped byte is a CRC mismatch, a cut frame a length mismatch: the CPU's errors."""
    frame = bytearray(codec.encode_frame(full_batch(), backend="cpu").tobytes())
    frame[FRAME_HEADER + 30] ^= 0x10
    error = assert_same_outcome(bytes(frame))
    assert "CRC-32C mismatch" in str(error) and error.offset == 4
    assert faults_of(bytes(frame)) & K.CRC
    assert "truncated" in str(assert_same_outcome(bytes(frame[:-8])))
    good = codec.encode_frame(full_batch(), backend="cpu").tobytes()
    assert faults_of(good) == 0 and faults_of(good, verify_crc=False) == 0


def _with_column(col: int, blob: bytes) -> bytes:
    cols = _good_columns()
    cols[col] = blob
    return _frame(cols)


#: Hand-built frames (tests/test_codec_errors.py) with one fault each, a valid CRC, and the
#: device check that must catch it.
BROKEN = {
    "key validity byte 2": (_with_column(1, bytes([1, 2])), K.VALIDITY),
    "key offsets not from 0": (_with_column(0, _i64s(1, 2, 2)), K.OFFSETS),
    "key offsets decrease": (_with_column(0, _i64s(0, 2, 1)), K.OFFSETS),
    "key offsets decrease to the right end": (_with_column(0, _i64s(0, 3, 2)), K.OFFSETS),
    "value offsets end short": (_with_column(3, _i64s(0, 1, 2)), K.OFFSETS),
    "header offsets decrease": (_with_column(6, _i64s(0, 1, 0)), K.OFFSETS),
    "name offsets past the names": (_with_column(13, _i64s(0, 3)), K.OFFSETS),
    "value offsets past the values": (_with_column(11, _i64s(0, 2)), K.OFFSETS),
    "name id 1 of 1": (_with_column(7, struct.pack("<i", 1)), K.NAME_IDS),
    "name id -5": (_with_column(7, struct.pack("<i", -5)), K.NAME_IDS),
    "type code 8": (_with_column(8, bytes([8])), K.TYPES),
    "type code 255": (_with_column(8, bytes([255])), K.TYPES),
    "str value not UTF-8": (_with_column(12, b"v\xffl"), K.VALUES),
    "header name not UTF-8": (_with_column(14, b"n\xc3(e"), 0),  # checked on the host
    "list cut short": (_nested_frame(bytes([7]) + struct.pack("<II", 8, 2) + bytes([0, 0]), C.LIST), K.VALUES),
    "list with an unknown tag": (_nested_frame(bytes([7]) + struct.pack("<II", 5, 1) + bytes([9]), C.LIST), K.VALUES),
    "dict name not UTF-8": (_nested_frame(bytes([8]) + struct.pack("<III", 11, 1, 2) + b"\xff\xfe" + bytes([0]),
                                          C.DICT), K.VALUES),
    "dict declared as list": (_nested_frame(bytes([8]) + struct.pack("<II", 4, 0), C.LIST), K.VALUES),
    "empty dict value": (_nested_frame(b"", C.DICT), K.VALUES),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_fault_is_caught_by_its_device_check(launch_shape, name):
    """Each broken frame trips exactly its device check, and decoding it on the device raises
    the CPU's FrameError (same message, same offset)."""
    data, bit = BROKEN[name]
    assert faults_of(data, verify_crc=False) == bit
    error = assert_same_outcome(data)
    assert error is not None and error.offset >= FRAME_HEADER


@st.composite
def corrupted(draw):
    """A random frame with one byte changed or the end cut off."""
    frame = codec.encode_frame(draw(batches(max_size=6)), backend="cpu").tobytes()
    if draw(st.booleans()):
        return frame[:draw(st.integers(0, len(frame)))]
    at = draw(st.integers(0, len(frame) - 1))
    data = bytearray(frame)
    data[at] ^= draw(st.integers(1, 255))
    return bytes(data)


@SIM
@given(data=corrupted(), verify_crc=st.booleans())
def test_random_corruption_gives_the_cpu_outcome(data, verify_crc):
    """A random frame with a byte changed or cut short: the device accepts exactly what the
    CPU accepts (the same batch), and otherwise raises the CPU's error, message and offset."""
    assert_same_outcome(data, verify_crc)


# --------------------------------------------------------------------------- value checks, CPU builds

@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=24))
def test_utf8_twin_agrees_with_the_cpu_check(raw):
    """The array-indexing UTF-8 check (CPU build) points at the CPU check's byte."""
    data = np.frombuffer(raw, np.uint8)
    assert K.utf8_fault_cpu(data, 0, len(raw)) == frame_check.first_bad_utf8(data, 0, len(raw))


@st.composite
def nested_blobs(draw):
    """The encoding of a list or dict header value, sometimes with a byte changed or cut."""
    value = draw(st.one_of(st.lists(_nested, max_size=3), st.dictionaries(st.text(max_size=3), _nested, max_size=3)))
    table = fr.HeaderTable.from_pylist([{"h": value}], 1)
    blob = bytearray(table.blob_data.tobytes())
    mutation = draw(st.sampled_from(["none", "flip", "cut"]))
    if mutation == "flip" and blob:
        blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
    elif mutation == "cut":
        blob = blob[:draw(st.integers(0, len(blob)))]
    return int(table.types[0]), bytes(blob)


@settings(max_examples=300, deadline=None)
@given(case=nested_blobs())
def test_nested_twin_agrees_with_the_cpu_check(case):
    """The nested-value check with its stack in a slice of shared scratch (CPU build) finds
    the CPU check's fault, or none, on valid, flipped and cut encodings."""
    code, blob = case
    data = np.frombuffer(blob, np.uint8)
    types = np.array([code], np.uint8)
    offsets = np.array([0, len(blob)], np.int64)
    entry, want = frame_check.first_bad_blob(types, offsets, data)
    slots = K.stack_slots(len(blob), 1) + 5
    ends, left, is_dict = np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.zeros(slots, np.uint8)
    top = C.TAG_LIST if code == C.LIST else C.TAG_DICT
    got = K.nested_fault_cpu(data, 0, len(blob), top, ends, left, is_dict, 5, len(blob) // 9 + 2)
    assert got == want and (got >= 0) == (entry == 0)


# --------------------------------------------------------------------------- crc32c

@SIM
@given(data=st.binary(max_size=200), lo=st.integers(0, 200), hi=st.integers(0, 200),
       value=st.sampled_from([0, 1, 0xE3069283, 0xFFFFFFFF]))
def test_crc32c_of_device_buffers(launch_shape, data, lo, hi, value):
    """crc32c of a device buffer (any start and length, continuing from any value) is the
    CPU's, as a Python int."""
    lo, hi = sorted((min(lo, len(data)), min(hi, len(data))))
    dev = on_device(data)[lo:hi]
    got = codec.crc32c(dev, value)
    assert type(got) is int and got == codec.crc32c(data[lo:hi], value) == crc32c_bitwise(data[lo:hi], value)


def test_crc32c_of_other_device_dtypes_and_bad_arguments():
    """A device int32 array is checksummed as its bytes; a non-contiguous one and a value
    outside 32 bits are refused as on the CPU."""
    words = np.arange(7, dtype=np.int32)
    assert codec.crc32c(cuda.to_device(words)) == codec.crc32c(words)
    assert codec.crc32c(cuda.to_device(np.zeros(0, np.uint8)), 77) == 77
    with pytest.raises(ValueError, match="C-contiguous"):
        codec.crc32c(cuda.to_device(np.arange(16, dtype=np.uint8))[::2])
    with pytest.raises(ValueError, match="32-bit"):
        codec.crc32c(cuda.to_device(words), 1 << 32)


def test_host_only_codec_calls_take_device_input():
    """RecordBatch encoding and decoding, record_batch_header, split_record_batches and
    frame_size accept device batches and buffers (copied to the host) with the host answer."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", None, b"c"], values=[b"x", b"", None],
                                        headers=[{"h": b"1"}, None, {"h": "two"}])
    on_gpu = batch.to_device()
    record = codec.encode_record_batch(batch, base_timestamp=7)
    assert codec.encode_record_batch(on_gpu, base_timestamp=7) == record
    device_record = on_device(np.frombuffer(record, np.uint8))
    assert codec.decode_record_batch(device_record).equals(codec.decode_record_batch(record))
    assert codec.record_batch_header(device_record) == codec.record_batch_header(record)
    assert [bytes(v) for v in codec.split_record_batches(device_record)] == [record]
    frame = codec.encode_frame(batch, backend="cpu")
    assert codec.frame_size(on_device(frame)) == codec.frame_size(frame) == frame.nbytes
    with pytest.raises(fr.FrameError, match="truncated frame: 10 bytes"):
        codec.frame_size(on_device(frame[:10]))

