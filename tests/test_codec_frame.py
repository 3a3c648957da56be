"""fastroute frames: exact bytes, round trips, zero-copy decoding, one frame per destination."""

from __future__ import annotations

import mmap

import crc32c as crc32c_pkg
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
from fastroute import codec
from fastroute._routes import Routes
from fastroute.kernels import frame as F
from reference_codec import FRAME_HEADER, batches, decode_frame_ref
from reference_codec import encode_frame_ref as _encode_frame_ref


def encode_frame_ref(batch):
    """The reference frame, its CRC from the crc32c package (test_crc32c checks that one against
    the bitwise reference; it is much faster on long frames)."""
    return _encode_frame_ref(batch, checksum=crc32c_pkg.crc32c)


def _as_pairs(batch):
    """Every message as plain values, headers as their ordered (name, value) pairs."""
    h = batch.headers
    return [(m.key, m.value, None if h is None else h.row_pairs(i), m.partition, m.offset, m.timestamp)
            for i, m in enumerate(batch)]


def _ref_messages(batch):
    """What decode_frame_ref reads back for each message of ``batch``."""
    out = []
    h = batch.headers
    for i, m in enumerate(batch):
        headers = None
        if h is not None:
            lo, hi = int(h.offsets[i]), int(h.offsets[i + 1])
            headers = [(h.names[int(h.name_ids[j])], int(h.types[j]), int(h.ints[j]), float(h.floats[j]),
                        bytes(h.blob_data[int(h.blob_offsets[j]):int(h.blob_offsets[j + 1])]))
                       for j in range(lo, hi)] or None
        out.append((m.key, m.value, headers, m.partition, m.offset, m.timestamp))
    return out


@given(batches())
def test_frame_bytes_match_reference(batch):
    """encode_frame writes exactly the bytes the format document describes."""
    assert codec.encode_frame(batch).tobytes() == encode_frame_ref(batch)


@given(batches())
def test_round_trip(batch):
    """decode_frame(encode_frame(b)) holds the same messages, headers and metadata as b."""
    frame = codec.encode_frame(batch)
    back = codec.decode_frame(frame)
    assert back.equals(batch)
    assert _as_pairs(back) == _as_pairs(batch)


@given(batches())
def test_reference_reader_reads_our_frames(batch):
    """An independent reader following the document gets every field back."""
    assert decode_frame_ref(codec.encode_frame(batch)) == _ref_messages(batch)


def test_frame_layout_is_aligned_and_counted():
    """Frames are multiples of 8 bytes and every column starts on an 8-byte boundary."""
    batch = fr.MessageBatch.from_pylist(keys=[b"abc", None], values=[b"v" * 13, b""],
                                        headers=[{"h": "x"}, None], partition=[1, 2])
    frame = codec.encode_frame(batch).tobytes()
    assert len(frame) % 8 == 0
    assert frame[:4] == b"FRTF" and codec.frame_size(frame) == len(frame)
    sizes = np.frombuffer(frame, "<u8", F.NCOLS, 48)
    pos = FRAME_HEADER
    for size in sizes.tolist():
        assert pos % 8 == 0
        pos += size + (-size % 8)
    assert pos == len(frame)


def _buffer_array(buffer):
    return np.frombuffer(buffer, np.uint8)


def test_decode_is_zero_copy():
    """Every array of the decoded batch is a view into the frame buffer."""
    batch = fr.MessageBatch.from_pylist(keys=[b"k1", None, b"k3"], values=[b"v1", b"v2", None],
                                        headers=[{"a": 1, "b": "s"}, None, {"c": [1, 2]}],
                                        partition=[0, 1, 2], offset=[5, 6, 7], timestamp=[1, 2, 3])
    frame = codec.encode_frame(batch)
    back = codec.decode_frame(frame)
    h = back.headers
    arrays = [back.keys.offsets, back.keys.data, back.keys.validity, back.values.offsets,
              back.values.data, back.values.validity, h.offsets, h.name_ids, h.types, h.ints, h.floats,
              h.blob_offsets, h.blob_data, back.partition, back.offset, back.timestamp]
    for arr in arrays:
        assert np.shares_memory(arr, frame)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "ndarray", "mmap"])
def test_decode_accepts_any_bytes_like(kind):
    """bytes, bytearray, memoryview, uint8 arrays and mmaps all decode, without copying."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"x" * 100, None])
    frame = codec.encode_frame(batch)
    if kind == "mmap":
        buf = mmap.mmap(-1, len(frame))
        buf[:] = frame.tobytes()
    else:
        buf = {"bytes": bytes, "bytearray": bytearray, "memoryview": memoryview,
               "ndarray": np.array}[kind](frame.tobytes() if kind != "ndarray" else frame)
    back = codec.decode_frame(buf)
    assert back.equals(batch)
    assert np.shares_memory(back.values.data, _buffer_array(buf))


def test_misaligned_buffer_is_copied_once():
    """A frame at an address that is not 8-byte aligned still decodes (from a private copy)."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"], timestamp=[9])
    frame = codec.encode_frame(batch).tobytes()
    holder = np.zeros(len(frame) + 16, np.uint8)
    start = (8 - holder.ctypes.data % 8) % 8 + 3  # 3 bytes past an aligned address
    holder[start:start + len(frame)] = np.frombuffer(frame, np.uint8)
    view = holder[start:start + len(frame)]
    back = codec.decode_frame(view)
    assert back.equals(batch)
    assert not np.shares_memory(back.values.data, holder)


def test_empty_batch_round_trips():
    """A batch of no messages makes a valid frame of 0 messages."""
    batch = fr.MessageBatch.from_pylist(keys=[], values=[])
    frame = codec.encode_frame(batch)
    assert frame.tobytes() == encode_frame_ref(batch)
    assert len(codec.decode_frame(frame)) == 0


def test_large_messages_and_many_segments():
    """Values of hundreds of KiB and batches spanning many segments round-trip exactly."""
    rng = np.random.default_rng(7)
    sizes = [0, 1, 300_000, 5, 1_100_000, 64 * 1024, 70_000]
    values = [rng.integers(0, 256, s, dtype=np.uint8).tobytes() for s in sizes]
    big = fr.MessageBatch.from_pylist(keys=[b"k%d" % i for i in range(len(values))], values=values)
    frame = codec.encode_frame(big)
    assert frame.tobytes() == encode_frame_ref(big)
    assert codec.decode_frame(frame).equals(big)
    n = 3 * F.SEGMENT_MAX + 17
    keys = [None if i % 7 == 0 else b"key-%d" % i for i in range(n)]
    many = fr.MessageBatch.from_pylist(keys=keys, values=[b"v" * (i % 50) for i in range(n)],
                                       headers=[{"i": i} if i % 3 else None for i in range(n)],
                                       offset=list(range(n)))
    frame = codec.encode_frame(many)
    assert frame.tobytes() == encode_frame_ref(many)
    assert codec.decode_frame(frame).equals(many)


def test_sliced_source_columns():
    """A batch whose columns start part-way into their buffers (offsets[0] > 0) encodes its items."""
    data = np.frombuffer(b"XXXXabcdefgh", np.uint8)
    col = fr.BinaryColumn(np.array([4, 6, 6, 12]), data, np.array([True, False, True]))
    batch = fr.MessageBatch(col, col)
    back = codec.decode_frame(codec.encode_frame(batch))
    assert back.keys.to_pylist() == [b"ab", None, b"cdefgh"]
    assert back.equals(batch)


# --------------------------------------------------------------------------- encode_frames

@st.composite
def routed(draw):
    batch = draw(batches(max_size=40))
    n_dest = draw(st.integers(1, 6))
    lists = [sorted(draw(st.sets(st.integers(0, n_dest - 1), max_size=n_dest))) for _ in range(len(batch))]
    offsets = np.zeros(len(batch) + 1, np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    dest = np.array([d for x in lists for d in x], np.int32)
    return batch, Routes(offsets, dest, [f"q{d}" for d in range(n_dest)]), lists


@given(routed())
def test_encode_frames_one_frame_per_destination(case):
    """Each destination's frame is exactly the frame of its messages, in batch order."""
    batch, routes, lists = case
    frames = codec.encode_frames(batch, routes)
    expected = {}
    for d, name in enumerate(routes.names):
        idx = [i for i, x in enumerate(lists) if d in x]
        if idx:
            expected[name] = idx
    assert list(frames) == list(expected)  # destinations with messages, in id order
    for name, idx in expected.items():
        sub = batch.take(np.array(idx, np.int64))
        assert frames[name].tobytes() == encode_frame_ref(sub)
        assert codec.decode_frame(frames[name]).equals(sub)


def test_encode_frames_share_one_buffer():
    """All frames are consecutive 8-byte-aligned slices of one buffer."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b", b"c", b"d"], values=[b"1", b"22", b"333", b""])
    routes = Routes(np.array([0, 1, 3, 3, 4]), np.array([2, 0, 2, 0], np.int32), ["x", "y", "z"])
    frames = codec.encode_frames(batch, routes)
    assert list(frames) == ["x", "z"]  # "y" receives nothing and is absent
    x, z = frames["x"], frames["z"]
    assert x.base is z.base
    assert x.ctypes.data % 8 == 0 and z.ctypes.data == x.ctypes.data + len(x)
    assert [m.key for m in codec.decode_frame(x)] == [b"b", b"d"]
    assert [m.key for m in codec.decode_frame(z)] == [b"a", b"b"]


def test_encode_frames_of_unroutable_batch_is_empty():
    """A batch routed nowhere gives no frames."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"])
    assert codec.encode_frames(batch, Routes.empty(1, ["q"])) == {}


def test_encode_frames_many_messages_to_few_destinations():
    """Thousands of messages per destination (many segments per frame) gather correctly."""
    n = 20_000
    rng = np.random.default_rng(3)
    keys = [b"k%d" % i for i in range(n)]
    values = [bytes(rng.integers(0, 256, int(s), dtype=np.uint8)) for s in rng.integers(0, 300, n)]
    batch = fr.MessageBatch.from_pylist(keys=keys, values=values, timestamp=list(range(n)))
    dest = rng.integers(0, 3, n).astype(np.int32)
    routes = Routes(np.arange(n + 1), dest, ["a", "b", "c"])
    frames = codec.encode_frames(batch, routes)
    for d, name in enumerate(routes.names):
        sub = batch.take(np.flatnonzero(dest == d))
        assert frames[name].tobytes() == encode_frame_ref(sub)


def test_encode_frames_checks_its_arguments():
    """Routes of another length, or arguments of the wrong type, raise BatchError."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"1", b"2"])
    with pytest.raises(fr.BatchError, match="routes cover 1 messages but the batch has 2"):
        codec.encode_frames(batch, Routes.empty(1, ["q"]))
    with pytest.raises(fr.BatchError, match="takes Routes"):
        codec.encode_frames(batch, [["q"], ["q"]])
    with pytest.raises(fr.BatchError, match="takes a MessageBatch"):
        codec.encode_frame([b"a"])


def test_frame_size_reads_the_header():
    """frame_size needs only the first 24 bytes and refuses what is not a frame."""
    frame = codec.encode_frame(fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"]))
    assert codec.frame_size(frame[:24]) == len(frame)
    with pytest.raises(fr.FrameError, match="truncated") as err:
        codec.frame_size(frame[:10])
    assert err.value.offset == 10
    with pytest.raises(fr.FrameError, match="magic"):
        codec.frame_size(b"XXXX" + frame[4:].tobytes())


def test_encode_frames_fanout_with_every_column():
    """Many blocks, messages with several destinations, nulls, headers and metadata: each
    frame is the reference frame of its destination's messages."""
    rng = np.random.default_rng(9)
    n, n_dest = 12_000, 40
    keys = [None if i % 11 == 0 else b"k%d" % i for i in range(n)]
    values = [None if i % 13 == 0 else bytes(rng.integers(0, 256, int(rng.integers(0, 90)), dtype=np.uint8))
              for i in range(n)]
    headers = [None if i % 3 else [("a", i), ("b", "x" * (i % 5)), ("a", [i, None])] for i in range(n)]
    batch = fr.MessageBatch.from_pylist(keys=keys, values=values, headers=headers,
                                        partition=[i % 7 for i in range(n)], timestamp=list(range(n)))
    lists = [sorted(set(rng.integers(0, n_dest, int(rng.integers(0, 4))).tolist())) for _ in range(n)]
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(x) for x in lists])
    routes = Routes(offsets, np.array([d for x in lists for d in x], np.int32), [f"d{d}" for d in range(n_dest)])
    frames = codec.encode_frames(batch, routes)
    assert len(frames) == n_dest
    for d in (0, 17, 39):
        sub = batch.take(np.array([i for i, x in enumerate(lists) if d in x], np.int64))
        assert frames[f"d{d}"].tobytes() == encode_frame_ref(sub)


def _big_batch(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    return fr.MessageBatch.from_buffers(np.arange(n + 1, dtype=np.int64) * 16,
                                        rng.integers(0, 256, 16 * n, dtype=np.uint8),
                                        np.arange(n + 1, dtype=np.int64) * 100,
                                        rng.integers(0, 256, 100 * n, dtype=np.uint8))


def test_encode_buffers_are_recycled_only_when_released():
    """A frame's buffer is reused by a later call only once no frame, view, memoryview or
    decoded batch of it is alive; a frame that is still held keeps its bytes."""
    first, second = _big_batch(1), _big_batch(2)
    frame = codec.encode_frame(first)
    address = frame.ctypes.data
    kept = [codec.decode_frame(frame), memoryview(frame), frame[100:200]]
    del frame
    for holder in kept:
        other = codec.encode_frame(second)
        assert other.ctypes.data != address  # the first buffer is still referenced
        del other
    assert kept[0].equals(first)
    del kept, holder
    again = codec.encode_frame(second)
    assert again.ctypes.data == address  # released, so reused
    assert codec.decode_frame(again).equals(second)


def test_encode_frames_refuses_unchecked_routes_that_point_nowhere():
    """Routes built without their own checks cannot make encode_frames write out of bounds."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"1", b"2"])
    bad_id = Routes(np.array([0, 1, 2]), np.array([0, 5], np.int32), ["q"], check=False)
    with pytest.raises(fr.BatchError, match="must index the 1 names"):
        codec.encode_frames(batch, bad_id)
    bad_offsets = Routes(np.array([0, 1, 3]), np.array([0, 0], np.int32), ["q"], check=False)
    with pytest.raises(fr.BatchError, match="offsets must run from 0 to the 2"):
        codec.encode_frames(batch, bad_offsets)


# --------------------------------------------------------------------------- decode_frame backends

def test_decode_frame_backends_on_host_bytes(monkeypatch):
    """On host bytes "auto" and "cpu" decode on the CPU as before (same read-only views);
    "gpu" where no GPU is usable raises BackendUnavailable with the reason; a misspelt
    backend is refused naming the valid ones."""
    from fastroute import _backend

    batch = fr.MessageBatch.from_pylist(keys=[b"a", None], values=[b"x", b"yz"], headers=[{"h": [1, "s"]}, None],
                                        timestamp=[1, 2])
    frame = codec.encode_frame(batch)
    for backend in ("auto", "cpu"):
        back = codec.decode_frame(frame, backend=backend)
        assert back.device == "cpu" and back.equals(batch)
        assert np.shares_memory(back.values.data, frame) and not back.values.data.flags.writeable
    broken = bytearray(frame.tobytes())
    broken[-1] ^= 1
    for backend in ("auto", "cpu"):
        with pytest.raises(fr.FrameError, match="CRC-32C mismatch"):
            codec.decode_frame(bytes(broken), backend=backend)
    monkeypatch.setattr(_backend, "gpu_status", lambda: "no CUDA device found (the driver sees none)")
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        codec.decode_frame(frame, backend="gpu")
    with pytest.raises(ValueError, match="'auto', 'cpu', 'gpu', got 'cuda'"):
        codec.decode_frame(frame, backend="cuda")


def test_decoding_host_frames_never_loads_cuda():
    """decode_frame and crc32c on host bytes never import numba.cuda."""
    import subprocess
    import sys

    code = ("import sys; from fastroute import codec; import fastroute as fr; "
            "f = codec.encode_frame(fr.MessageBatch.from_pylist(keys=[b'a'])); "
            "codec.decode_frame(f); codec.decode_frame(bytes(f), backend='cpu'); codec.crc32c(f); "
            "print('numba.cuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
