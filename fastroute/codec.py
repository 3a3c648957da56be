"""Batch codecs: CRC-32C-checked fastroute frames and Kafka RecordBatch v2.

Frames (layout in ``docs/frame-format.md``) carry a whole :class:`MessageBatch` (keys,
values, null flags, typed headers, partition / offset / timestamp) as 8-byte-aligned
little-endian columns, so :func:`decode_frame` returns a batch whose arrays are views into the
buffer, and one CRC-32C covers everything after the checksum field.

* :func:`encode_frame` (one batch, one frame) and :func:`encode_frames` (one frame per
  destination of a :class:`Routes`, all carved from one buffer);
* :func:`decode_frame`, :func:`frame_size` (read a frame's length from its header);
* :func:`encode_record_batch` / :func:`decode_record_batch`: Kafka's RecordBatch v2 (magic 2),
  uncompressed, byte-compatible with the Java client and kafka-python;
* :func:`crc32c`, with :data:`CRC32C_IMPLEMENTATION` naming the code that computes it.

Every decoder treats its input as hostile: a truncated, corrupted or crafted buffer raises
:class:`FrameError` naming the fault and its byte offset, and nothing is read outside the
buffer. Encoding and decoding run in numba kernels on all cores and release the GIL; with a
CUDA GPU, frames are also encoded and decoded, and CRC-32C computed, on the device
(``backend=``; device buffers stay on the device).
"""

from __future__ import annotations

import ctypes
import platform
import struct
import sys
import threading
import time
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np

from ._batch import BinaryColumn, MessageBatch
from ._errors import BatchError, FrameError
from ._headers import HeaderTable
from ._routes import Routes
from .kernels import _codes as C
from .kernels import crc32c as _crc
from .kernels import frame as _fr
from .kernels import frame_check as _chk
from .kernels import recordbatch as _rb

__all__ = ["CRC32C_IMPLEMENTATION", "crc32c", "decode_frame", "decode_record_batch",
           "encode_frame", "encode_frames", "encode_record_batch", "frame_size",
           "record_batch_header", "RecordBatchHeader", "split_record_batches"]

#: What computes CRC-32C here: "hardware (sse4.2)", "hardware (armv8-crc)" or "software (slicing-by-8)".
CRC32C_IMPLEMENTATION = _crc.IMPLEMENTATION

_ro = _crc.read_only
# Placeholders for absent columns, read-only like every array handed to a kernel.
_EMPTY_U8 = _ro(np.zeros(0, np.uint8))
_EMPTY_BOOL = _ro(np.zeros(0, np.bool_))
_EMPTY_I64 = _ro(np.zeros(0, np.int64))
_EMPTY_I32 = _ro(np.zeros(0, np.int32))
_EMPTY_F64 = _ro(np.zeros(0, np.float64))
_NO_HEADERS = _fr.Headers(_EMPTY_I64, _EMPTY_I32, _EMPTY_U8, _EMPTY_I64, _EMPTY_F64, _EMPTY_I64,
                          _EMPTY_U8, _ro(np.zeros(1, np.int64)), _EMPTY_U8)
_FIXED = struct.Struct("<4sIHHIQQQQ")


#: Work (payload bytes plus 24 per message) below which the kernels run on one thread. On an
#: idle machine a second thread pays off from about a megabyte, but while another process keeps
#: a core busy each parallel region waits a scheduler time slice for its second thread
#: (measured: about 10 ms on the 2-core development machine), so only work that takes a few
#: milliseconds on one thread is shared.
_PARALLEL_MIN_WORK = 8 << 20


@contextmanager
def _threads(messages: int, nbytes: int):
    """Run the enclosed kernels on one thread when the work is too small to share."""
    if nbytes + 24 * messages >= _PARALLEL_MIN_WORK:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def crc32c(buffer, value: int = 0) -> int:
    """CRC-32C (Castagnoli) of a bytes-like object, continuing from ``value``.

    ``crc32c(b"123456789") == 0xE3069283``. Uses the CPU's CRC instructions when it has them
    (see :data:`CRC32C_IMPLEMENTATION`); buffers over 8 MiB are split across all cores.

    A device buffer (a numba device array, or anything with ``__cuda_array_interface__``) is
    checksummed on the device (``kernels/cuda_crc32c.py``), with the same result; only the
    4-byte answer crosses the bus. One whose start is not 8-byte aligned or whose length is
    not a multiple of 8 is copied once on the device first.

    Raises:
        ValueError: a buffer that is not C-contiguous, or ``value`` outside 32 bits.
        BackendUnavailable: a device buffer where no GPU is usable (says why).
    """
    from ._device import is_device_array

    if is_device_array(buffer):
        return _crc32c_gpu(buffer, value)
    return _crc.crc32c(buffer, value)


def _crc32c_gpu(buffer, value: int) -> int:
    from .kernels import cuda_crc32c as _gcrc

    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"value must be a 32-bit CRC, got {value}")
    data, size = _device_bytes(buffer, pad=True)
    if size == 0:
        return int(value)
    whole = int(_gcrc.crc32c_ranges(data, data.view(np.uint64), np.array([0], np.int64),
                                    np.array([size], np.int64)).copy_to_host()[0])
    return int(_crc.crc32c_combine(value, whole, size)) if value else whole


# ----------------------------------------------------------------------------- frame encoding

def _column(col: BinaryColumn) -> _fr.Column:
    return _fr.Column(_ro(col.offsets), _ro(col.data), _EMPTY_BOOL if col.validity is None else _ro(col.validity))


def _headers(table: HeaderTable | None):
    """The kernels' view of a HeaderTable, with its names as UTF-8 offsets + bytes."""
    if table is None:
        return _NO_HEADERS, 0, 0
    encoded = [name.encode("utf-8") for name in table.names]
    name_offsets = np.zeros(len(encoded) + 1, np.int64)
    if encoded:
        np.cumsum([len(e) for e in encoded], out=name_offsets[1:])
    name_data = np.frombuffer(b"".join(encoded), np.uint8) if encoded else _EMPTY_U8
    h = _fr.Headers(*(_ro(a) for a in (table.offsets, table.name_ids, table.types, table.ints,
                                        table.floats, table.blob_offsets, table.blob_data,
                                        name_offsets, name_data)))
    return h, len(encoded), int(name_offsets[-1])


def _meta(batch: MessageBatch):
    flags = 0
    cols = []
    for attr, flag, empty in (("partition", _fr.F_PARTITION, _EMPTY_I32),
                              ("offset", _fr.F_OFFSET, _EMPTY_I64),
                              ("timestamp", _fr.F_TIMESTAMP, _EMPTY_I64)):
        arr = getattr(batch, attr)
        if arr is None:
            cols.append(empty)
        else:
            flags |= flag
            cols.append(_ro(arr))
    return _fr.Meta(*cols), flags


class _Recycler:
    """Hands out encode buffers, reusing a recent one once nothing references it any more.

    A fresh buffer pays a page fault per page on first write, which measured about a fifth of
    the time of ``encode_frames`` (1M messages, 100 destinations); a buffer whose frames have
    all been released (sent, copied into the ring, dropped) is already mapped. The recycler keeps the buffers of the last
    ``slots`` encode calls; one is reused only when its reference count shows that no frame,
    view or decoded batch of it is alive (numpy views keep their base array referenced), and
    only for a request between half its size and its size. Buffers under ``min_bytes`` (the
    allocator recycles those itself) or over ``max_bytes`` are not kept.
    """

    def __init__(self, slots: int = 2, min_bytes: int = 1 << 20, max_bytes: int = 1 << 30):
        self._lock = threading.Lock()
        self._buffers: list = []
        self._slots = slots
        self._min = min_bytes
        self._max = max_bytes

    def take(self, nbytes: int) -> np.ndarray:
        if not self._min <= nbytes <= self._max:
            return np.empty(nbytes, np.uint8)
        with self._lock:
            for k in range(len(self._buffers)):
                # two references when idle: the list's and getrefcount's argument
                if sys.getrefcount(self._buffers[k]) == 2 and nbytes <= self._buffers[k].shape[0] <= 2 * nbytes:
                    return self._buffers[k][:nbytes]
            fresh = np.empty(nbytes, np.uint8)
            self._buffers.append(fresh)
            if len(self._buffers) > self._slots:
                self._buffers.pop(0)
            return fresh[:nbytes]


_RECYCLER = _Recycler()


def _sources(batch: MessageBatch):
    """The kernels' view of a batch: (keys, values, headers, name count, name bytes, metadata,
    flags of the columns present)."""
    headers, name_count, name_bytes = _headers(batch.headers)
    meta, flags = _meta(batch)
    if batch.headers is not None:
        flags |= _fr.F_HEADERS
    return _column(batch.keys), _column(batch.values), headers, name_count, name_bytes, meta, flags


def _encode_one(batch: MessageBatch) -> np.ndarray:
    """Write a whole batch as one frame."""
    keys, values, headers, name_count, name_bytes, meta, flags = _sources(batch)
    hw = _crc.HARDWARE
    n = len(batch)
    nbytes = batch.keys.nbytes + batch.values.nbytes
    with _threads(n, nbytes):
        seg_frame, seg_lo, seg_hi = _fr.segment_plan(n, _fr.segment_size(n, nbytes))
        sums = _fr.segment_sums(seg_lo, seg_hi, keys, values, headers)
        fflags, counts, sizes, col_start, frame_start, seg_base = _fr.frame_layout(
            np.array([0, n], np.int64), seg_frame, sums, flags, name_count, name_bytes)
        out = _RECYCLER.take(int(frame_start[-1]))
        out64 = out.view(np.int64)
        crcs = _fr.write_frame(out, out.view(np.int32), out64, out.view(np.float64), seg_lo, seg_hi,
                               sums, seg_base, fflags, counts, sizes, col_start, keys, values, headers,
                               meta, hw)
        gap_starts, gap_stops = _fr.gap_ranges(sizes, col_start, frame_start)
        gap_crcs = _crc.crc32c_ranges(_ro(out), gap_starts, gap_stops, hw)
        _fr.finish_crcs(out.view(np.uint32), seg_frame, sums, crcs, gap_crcs, gap_starts, gap_stops,
                        frame_start)
    return out


#: encode_frames splits the messages into at most this many blocks (the unit of parallel work),
#: of at least _SCATTER_MIN deliveries each, and keeps blocks x destinations under _SCATTER_CELLS
#: (its per-block tables take 56 bytes a cell: 14 MiB at most, 350 KiB for 100 destinations).
_SCATTER_BLOCKS = 64
_SCATTER_MIN = 2048
_SCATTER_CELLS = 1 << 18


def _as_batch(batch, what: str) -> MessageBatch:
    if not isinstance(batch, MessageBatch):
        raise BatchError(f"{what} takes a MessageBatch, got {type(batch).__name__}")
    return batch


def encode_frame(batch: MessageBatch, *, backend: str = "auto") -> np.ndarray:
    """Encode a whole batch as one frame.

    Returns a uint8 array (any bytes-like consumer accepts it; ``bytes(frame)`` copies) whose
    length is a multiple of 8. Its memory may be recycled from an earlier call, but only once
    nothing from that call (frame, view, decoded batch) is referenced any more. An empty batch
    gives a valid frame of 0 messages.
    Cost: one pass over the batch's bytes, copy and CRC-32C fused, on all cores.

    ``backend``: "cpu", "gpu" or "auto" (the GPU for a device batch, or for a host batch of
    at least ``FASTROUTE_GPU_MIN_BATCH`` messages when one is usable). Both write the same
    bytes. A device batch encoded on the GPU gives a device array (numba; ``cupy.asarray``
    views it), a host batch a host array.

    Raises:
        BatchError: ``batch`` is not a MessageBatch.
        BackendUnavailable: backend="gpu" where no GPU is usable (says why).
    """
    batch = _as_batch(batch, "encode_frame")
    if _encode_where(backend, batch, None) == "gpu":
        return _encode_gpu(batch, None)
    return _encode_one(_host(batch))


def encode_frames(batch: MessageBatch, routes: Routes, *, backend: str = "auto") -> dict:
    """Encode one frame per destination, holding that destination's messages in batch order.

    Args:
        batch: the messages.
        routes: where each message goes (``router.route(batch)``); a message with several
            destinations is copied into each of their frames.
        backend: "cpu", "gpu" or "auto", as for :func:`encode_frame` (the batch or the routes
            being on the device counts as a device call). Both write the same bytes; on the GPU
            with a device batch the frames are device arrays.

    Returns:
        ``{destination name: frame}`` for every destination that receives at least one
        message, in destination-id order; destinations that receive nothing are absent. The
        frames are consecutive slices of one uint8 buffer (8-byte aligned), so they stay
        valid as long as any of them is referenced.

    Raises:
        BatchError: ``routes`` does not have one entry per message of ``batch``.
        BackendUnavailable: backend="gpu" where no GPU is usable (says why).

    Cost: one parallel pass over the messages to size every frame, a prefix sum, one
    parallel pass that appends each message to its destinations' frames (reading the batch in
    order), then the CRC-32C of every frame, on all cores.
    """
    batch = _as_batch(batch, "encode_frames")
    if not isinstance(routes, Routes):
        raise BatchError(f"encode_frames takes Routes, got {type(routes).__name__}")
    if len(routes) != len(batch):
        raise BatchError(f"routes cover {len(routes)} messages but the batch has {len(batch)}")
    if _encode_where(backend, batch, routes) == "gpu":
        return _encode_gpu(batch, routes)
    batch = _host(batch)
    routes = routes.to_host() if routes.device == "gpu" else routes
    n_dest = len(routes.names)
    route_offsets, route_dests = _ro(routes.offsets), _ro(routes.destinations)
    deliveries = route_dests.shape[0]
    # Routes built with check=False skip their own validation; the kernels index by these.
    if route_offsets[0] != 0 or route_offsets[-1] != deliveries:
        raise BatchError(f"routes: offsets must run from 0 to the {deliveries} destinations")
    if deliveries and (int(route_dests.min()) < 0 or int(route_dests.max()) >= n_dest):
        raise BatchError(f"routes: destination ids must index the {n_dest} names")
    keys, values, headers, name_count, name_bytes, meta, flags = _sources(batch)
    nblocks = int(max(1, min(_SCATTER_BLOCKS, deliveries // _SCATTER_MIN, _SCATTER_CELLS // max(1, n_dest))))
    with _threads(deliveries, batch.keys.nbytes + batch.values.nbytes):
        counts, sums = _fr.scatter_sums(route_offsets, route_dests, n_dest, nblocks, keys, values, headers)
        used, frame_of, group_offsets, piece_frame, piece_sums, piece_first = _fr.scatter_pieces(counts, sums)
        if used.shape[0] == 0:
            return {}
        fflags, fcounts, sizes, col_start, frame_start, piece_base = _fr.frame_layout(
            group_offsets, piece_frame, piece_sums, flags, name_count, name_bytes)
        out = _RECYCLER.take(int(frame_start[-1]))
        _fr.scatter_frames(out, out.view(np.int32), out.view(np.int64), out.view(np.float64),
                           route_offsets, route_dests, frame_of, nblocks, piece_base, piece_first,
                           fflags, fcounts, sizes, col_start, frame_start, keys, values, headers, meta)
        crcs = _crc.crc32c_ranges(_ro(out), frame_start[:-1] + 8, frame_start[1:], _crc.HARDWARE)
    out.view(np.uint32)[frame_start[:-1] // 4 + 1] = crcs
    bounds = frame_start.tolist()
    names = routes.names
    return {names[d]: out[bounds[k]:bounds[k + 1]] for k, d in enumerate(used.tolist())}


def _host(batch: MessageBatch) -> MessageBatch:
    return batch.to_host() if batch.device == "gpu" else batch


def _encode_where(backend: str, batch: MessageBatch, routes) -> str:
    """"cpu" or "gpu" for an encode call (see encode_frame's ``backend``)."""
    from ._backend import resolve

    on_device = batch.device == "gpu" or (routes is not None and routes.device == "gpu")
    return resolve(backend, len(batch), on_device)


def _encode_gpu(batch: MessageBatch, routes):
    """encode_frame (routes None) or encode_frames on the GPU (kernels/cuda_frame.py)."""
    from ._device import batch_to_device, device_groups, routes_to_device, to_device_array
    from .kernels import cuda_frame as _gfr
    from .kernels.cuda_scan import iota

    on_device = batch.device == "gpu"
    dbatch = batch_to_device(batch)
    n = len(batch)
    if routes is None:
        msg_off = np.array([0, n], np.int64)
        msgs = iota(n)
    else:
        droutes = routes_to_device(routes)
        deliveries = droutes.destinations.shape[0]
        first, last = (int(to_device_array(droutes.offsets[k:k + 1]).copy_to_host()[0]) for k in (0, n))
        if first != 0 or last != deliveries:
            raise BatchError(f"routes: offsets must run from 0 to the {deliveries} destinations")
        n_dest = len(routes.names)
        if deliveries:
            lo, hi = _gfr.id_range(droutes.destinations)
            if lo < 0 or hi >= n_dest:
                raise BatchError(f"routes: destination ids must index the {n_dest} names")
        group_offsets, msgs = device_groups(droutes)
        go = group_offsets.copy_to_host()
        used = np.flatnonzero(go[1:] > go[:-1])
        if used.shape[0] == 0:
            return {}
        msg_off = np.append(go[used], go[-1]).astype(np.int64)
    keys, values, headers, name_count, name_bytes, meta, flags = _device_sources(dbatch)
    out, frame_start = _gfr.encode(msg_off, msgs, keys, values, headers, meta, flags, name_count, name_bytes)
    if not on_device:
        out = out.copy_to_host()
    if routes is None:
        return out
    bounds = frame_start.tolist()
    names = routes.names
    return {names[d]: out[bounds[k]:bounds[k + 1]] for k, d in enumerate(used.tolist())}


def _device_sources(batch: MessageBatch):
    """:func:`_sources` for a device batch: the kernels' tuples of device arrays."""
    from ._device import to_device_array

    def empty(dtype):
        return to_device_array(np.zeros(0, dtype))

    def column(col):
        return _fr.Column(col.offsets, col.data, empty(np.bool_) if col.validity is None else col.validity)

    h = batch.headers
    flags = 0
    if h is None:
        headers = _fr.Headers(empty(np.int64), empty(np.int32), empty(np.uint8), empty(np.int64),
                              empty(np.float64), empty(np.int64), empty(np.uint8),
                              to_device_array(np.zeros(1, np.int64)), empty(np.uint8))
        name_count = name_bytes = 0
    else:
        flags |= _fr.F_HEADERS
        encoded = [name.encode("utf-8") for name in h.names]
        name_offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=name_offsets[1:])
        name_data = np.frombuffer(b"".join(encoded), np.uint8)
        headers = _fr.Headers(h.offsets, h.name_ids, h.types, h.ints, h.floats, h.blob_offsets, h.blob_data,
                              to_device_array(name_offsets), to_device_array(name_data))
        name_count, name_bytes = len(encoded), int(name_offsets[-1])
    meta = []
    for attr, flag, dtype in (("partition", _fr.F_PARTITION, np.int32), ("offset", _fr.F_OFFSET, np.int64),
                              ("timestamp", _fr.F_TIMESTAMP, np.int64)):
        arr = getattr(batch, attr)
        if arr is None:
            meta.append(empty(dtype))
        else:
            flags |= flag
            meta.append(arr)
    return (column(batch.keys), column(batch.values), headers, name_count, name_bytes, _fr.Meta(*meta),
            flags)


# ----------------------------------------------------------------------------- frame decoding

def _host_buffer(buffer):
    """``buffer``, or a host copy of it when it lives in GPU memory (for the host-only readers)."""
    from ._device import is_device_array, to_host_array

    return to_host_array(buffer) if is_device_array(buffer) else buffer


def _bytes_of(buffer) -> np.ndarray:
    try:
        return _crc.as_bytes_array(_host_buffer(buffer))
    except (TypeError, ValueError) as exc:
        raise FrameError(f"expected a bytes-like buffer, got {type(buffer).__name__} ({exc})") from None


def _aligned(buffer) -> np.ndarray:
    data = _bytes_of(buffer)
    if data.ctypes.data % 8:
        # Column views need 8-byte alignment; a misaligned buffer costs one copy.
        copy = np.empty(data.shape[0], np.uint8)
        copy[:] = data
        data = _ro(copy)
    return data


def frame_size(buffer) -> int:
    """The total length in bytes of the frame that starts ``buffer``, read from its header.

    Needs the first 24 bytes only, so a reader of a byte stream can tell how much to read;
    of a buffer in GPU memory only those bytes are copied to the host.

    Raises:
        FrameError: fewer than 24 bytes, or not a fastroute frame.
    """
    from ._device import is_device_array

    if is_device_array(buffer):
        device_bytes, size = _device_bytes(buffer)
        buffer = device_bytes[:min(size, 24)].copy_to_host()
    data = _bytes_of(buffer)
    if data.shape[0] < 24:
        raise FrameError(f"truncated frame: {data.shape[0]} bytes, the frame length field ends at byte 24",
                         data.shape[0])
    if bytes(data[:4]) != _fr.MAGIC:
        raise FrameError(f"not a fastroute frame: magic {bytes(data[:4])!r}, expected {_fr.MAGIC!r}", 0)
    return int.from_bytes(bytes(data[16:24]), "little")


def _parse_header(data: np.ndarray, size: int | None = None):
    """Check the fixed header and directory; return (flags, n, m, k, sizes, starts, length).

    ``data`` holds the frame's first bytes: all of them, or (for a frame in device memory)
    its first :data:`~fastroute.kernels.frame.HEADER_BYTES`, or all of a shorter one, with
    ``size`` the whole frame's length (default: ``data``'s). Nothing past the directory is read.
    """
    size = data.shape[0] if size is None else size
    if size < _fr.HEADER_BYTES:
        raise FrameError(f"truncated frame: {size} bytes, the header alone needs {_fr.HEADER_BYTES}", size)
    magic, _, version, flags, ncols, length, n, m, k = _FIXED.unpack_from(data, 0)
    if magic != _fr.MAGIC:
        raise FrameError(f"not a fastroute frame: magic {magic!r}, expected {_fr.MAGIC!r}", 0)
    if version != _fr.VERSION:
        raise FrameError(f"unsupported frame version {version}, this reader knows version {_fr.VERSION}", 8)
    if flags & ~_fr.F_ALL:
        raise FrameError(f"unknown flag bits 0x{flags & ~_fr.F_ALL:04x} in flags 0x{flags:04x}", 10)
    if ncols != _fr.NCOLS:
        raise FrameError(f"frame version 1 has {_fr.NCOLS} columns, the header says {ncols}", 12)
    if length != size:
        raise FrameError(f"the frame says it is {length} bytes long but the buffer holds {size}"
                         + (" (truncated)" if length > size else " (trailing bytes)"), 16)
    sizes = list(struct.unpack_from(f"<{_fr.NCOLS}Q", data, _fr.FIXED_BYTES))
    has_h = bool(flags & _fr.F_HEADERS)
    if not has_h and (m or k):
        raise FrameError(f"header counts {m} entries / {k} names without the headers flag", 32)
    expect = {
        _fr.KEY_OFFSETS: 8 * (n + 1),
        _fr.KEY_VALIDITY: n if flags & _fr.F_KEY_VALIDITY else 0,
        _fr.VALUE_OFFSETS: 8 * (n + 1),
        _fr.VALUE_VALIDITY: n if flags & _fr.F_VALUE_VALIDITY else 0,
        _fr.HDR_OFFSETS: 8 * (n + 1) if has_h else 0,
        _fr.HDR_NAME_IDS: 4 * m,
        _fr.HDR_TYPES: m,
        _fr.HDR_INTS: 8 * m,
        _fr.HDR_FLOATS: 8 * m,
        _fr.HDR_BLOB_OFFSETS: 8 * (m + 1) if has_h else 0,
        _fr.HDR_NAME_OFFSETS: 8 * (k + 1) if has_h else 0,
        _fr.PARTITION: 4 * n if flags & _fr.F_PARTITION else 0,
        _fr.OFFSET: 8 * n if flags & _fr.F_OFFSET else 0,
        _fr.TIMESTAMP: 8 * n if flags & _fr.F_TIMESTAMP else 0,
    }
    if not has_h:
        expect[_fr.HDR_BLOB_DATA] = 0
        expect[_fr.HDR_NAME_DATA] = 0
    starts = []
    pos = _fr.HEADER_BYTES
    for col, sz in enumerate(sizes):
        want = expect.get(col)
        if want is not None and sz != want:
            raise FrameError(f"column {_fr.COLUMN_NAMES[col]} is {sz} bytes, expected {want} "
                             f"for {n} messages / {m} header entries / {k} names",
                             _fr.FIXED_BYTES + 8 * col)
        if sz > size:
            raise FrameError(f"column {_fr.COLUMN_NAMES[col]} is {sz} bytes, more than the whole "
                             f"{size}-byte frame", _fr.FIXED_BYTES + 8 * col)
        starts.append(pos)
        pos += (sz + 7) & ~7
    if pos != length:
        raise FrameError(f"the columns end at byte {pos} but the frame is {length} bytes long", 16)
    return flags, n, m, k, sizes, starts, length


def _check_offsets(data, start, count, limit, what: str):
    view = data[start:start + 8 * count].view(np.int64)
    bad = int(_chk.first_bad_offset(view, limit))
    if bad >= 0:
        raise FrameError(f"{what}[{bad}] = {int(view[bad])} breaks the offsets (they must rise "
                         f"from 0 to {limit})", start + 8 * bad)
    return view


def decode_frame(buffer, *, verify_crc: bool = True, backend: str = "auto") -> MessageBatch:
    """Decode one frame into a MessageBatch whose arrays are views into ``buffer``.

    Args:
        buffer: the frame, exactly as long as its header says: host memory (bytes,
            bytearray, memoryview, mmap, uint8 array...) or device memory (a numba device
            array, or anything with ``__cuda_array_interface__``: CuPy, PyTorch). Keep it
            alive and unchanged while the batch is used. A buffer not aligned to 8 bytes is
            copied once (numpy allocations, ``bytes`` objects, device allocations and every
            slice returned by :func:`encode_frames` are aligned).
        verify_crc: check the CRC-32C (on by default; skipping it trusts the bytes' integrity
            but every structural check still runs).
        backend: "auto" (the default: the GPU for a device buffer when one is usable, the
            CPU otherwise), "cpu" (a device buffer is copied to the host first) or "gpu" (a
            host buffer is copied to the device first).

    Returns:
        On the CPU, a host batch of read-only numpy views. On the GPU, a device batch (as
        :meth:`MessageBatch.to_device` gives) whose columns are numba device views of the
        frame (writable: device arrays have no read-only flag); header names are Python
        strings, as on every batch. From a device frame, only the 192 bytes of header and
        directory, the header names' offsets and bytes, and one word of check results cross
        the bus; the columns stay on the device. A faulty frame is copied to the host whole.

    Raises:
        FrameError: a truncated, corrupted or malformed frame, with the byte offset of the
            fault. Both backends make the same checks and raise the same error, message and
            offset, for the same bytes: the device finds whether something is wrong, then
            the CPU decoder, on a host copy of the faulty frame, says what and where.
        BackendUnavailable: backend="gpu" where no GPU is usable (says why).
        ValueError: an unknown backend name.

    Cost: the CRC pass (on all cores, or on the device, for large frames) plus one pass over
    the offsets, validity, name id and type columns and the str, list and dict header values;
    no copy of the columns.
    """
    from ._device import is_device_array

    on_device = is_device_array(buffer)
    if backend == "auto" and not on_device:
        where = "cpu"  # a host frame is decoded in place: a device copy would cost more
    else:
        from ._backend import resolve

        where = resolve(backend, 0, on_device)
    if where == "gpu":
        if not on_device:
            from ._device import to_device_array

            buffer = to_device_array(_bytes_of(buffer))
        return _decode_frame_gpu(buffer, verify_crc)
    if on_device:
        from ._device import to_host_array

        buffer = to_host_array(buffer)
    data = _aligned(buffer)
    with _threads(0, data.shape[0]):
        return _decode_frame(data, verify_crc)


def _decode_frame(data: np.ndarray, verify_crc: bool) -> MessageBatch:
    flags, n, m, k, sizes, starts, length = _parse_header(data)
    if verify_crc:
        stored = int(data[4:8].view("<u4")[0])
        got = int(_crc.crc32c_ranges(data, np.array([8], np.int64), np.array([length], np.int64),
                                     _crc.HARDWARE)[0])
        if got != stored:
            raise FrameError(f"CRC-32C mismatch: the frame stores 0x{stored:08x}, its bytes 8..{length} "
                             f"give 0x{got:08x}", 4)

    def region(col):
        return data[starts[col]:starts[col] + sizes[col]]

    def binary(off_col, valid_col, data_col, flag, what):
        offsets = _check_offsets(data, starts[off_col], n + 1, sizes[data_col], f"{what} offsets")
        validity = None
        if flags & flag:
            validity = region(valid_col)
            bad = int(_chk.first_non_bool(validity))
            if bad >= 0:
                raise FrameError(f"{what} validity byte {bad} is {int(validity[bad])}, expected 0 or 1",
                                 starts[valid_col] + bad)
            validity = validity.view(np.bool_)
        return BinaryColumn(offsets, region(data_col), validity)

    keys = binary(_fr.KEY_OFFSETS, _fr.KEY_VALIDITY, _fr.KEY_DATA, _fr.F_KEY_VALIDITY, "key")
    values = binary(_fr.VALUE_OFFSETS, _fr.VALUE_VALIDITY, _fr.VALUE_DATA, _fr.F_VALUE_VALIDITY, "value")
    headers = _decode_headers(data, n, m, k, sizes, starts) if flags & _fr.F_HEADERS else None
    meta = {}
    for attr, flag, col, dtype in (("partition", _fr.F_PARTITION, _fr.PARTITION, np.int32),
                                   ("offset", _fr.F_OFFSET, _fr.OFFSET, np.int64),
                                   ("timestamp", _fr.F_TIMESTAMP, _fr.TIMESTAMP, np.int64)):
        if flags & flag:
            meta[attr] = region(col).view(dtype)
    return MessageBatch(keys, values, headers, **meta)


def _decode_headers(data, n, m, k, sizes, starts) -> HeaderTable:
    def region(col):
        return data[starts[col]:starts[col] + sizes[col]]

    offsets = _check_offsets(data, starts[_fr.HDR_OFFSETS], n + 1, m, "header offsets")
    name_offsets = _check_offsets(data, starts[_fr.HDR_NAME_OFFSETS], k + 1,
                                  sizes[_fr.HDR_NAME_DATA], "header name offsets")
    blob_offsets = _check_offsets(data, starts[_fr.HDR_BLOB_OFFSETS], m + 1,
                                  sizes[_fr.HDR_BLOB_DATA], "header value offsets")
    name_ids = region(_fr.HDR_NAME_IDS).view(np.int32)
    bad = int(_chk.first_above(name_ids, k - 1))
    if bad >= 0:
        raise FrameError(f"header entry {bad} has name id {int(name_ids[bad])}, but there are {k} names",
                         starts[_fr.HDR_NAME_IDS] + 4 * bad)
    types = region(_fr.HDR_TYPES)
    bad = int(_chk.first_above(types, C.DICT))
    if bad >= 0:
        raise FrameError(f"header entry {bad} has unknown type code {int(types[bad])}",
                         starts[_fr.HDR_TYPES] + bad)
    blob_data = region(_fr.HDR_BLOB_DATA)
    entry, pos = (int(x) for x in _chk.first_bad_blob(types, blob_offsets, blob_data))
    if entry >= 0:
        kind = {C.STR: "str value is not UTF-8", C.LIST: "list value is malformed",
                C.DICT: "dict value is malformed"}[int(types[entry])]
        raise FrameError(f"header entry {entry}: {kind}", starts[_fr.HDR_BLOB_DATA] + pos)
    names = _header_names(region(_fr.HDR_NAME_DATA).tobytes(), name_offsets.tolist(), starts[_fr.HDR_NAME_DATA])
    return HeaderTable(offsets, names, name_ids, types, region(_fr.HDR_INTS).view(np.int64),
                       region(_fr.HDR_FLOATS).view(np.float64), blob_offsets, blob_data)


def _header_names(name_data: bytes, bounds: list, at: int) -> list:
    """The header names of a frame from its checked name offsets ``bounds`` and name bytes,
    which start at byte ``at`` of the frame. Raises FrameError for a name that is not UTF-8."""
    names = []
    for j in range(len(bounds) - 1):
        try:
            names.append(name_data[bounds[j]:bounds[j + 1]].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise FrameError(f"header name {j} is not UTF-8", at + bounds[j] + exc.start) from None
    return names


# ----------------------------------------------------------------------------- frame decoding on a GPU

def _device_address(arr) -> int:
    iface = getattr(arr, "__cuda_array_interface__", None)
    if iface is not None:
        return int(iface["data"][0])
    return int(arr._ary.ctypes.data)  # numba's simulator: a numpy array stands in for device memory


def _device_bytes(buffer, pad: bool = False):
    """(a 1-D uint8 numba device array of ``buffer``'s bytes starting 8-byte aligned, their
    count). A misaligned buffer (or with ``pad``, one whose length is not a multiple of 8) is
    copied once on the device into a fresh one, padded to a multiple of 8 with ``pad``.

    Raises ValueError for a buffer that is not C-contiguous; BackendUnavailable without a GPU.
    """
    from ._backend import require_gpu

    cuda = require_gpu()
    arr = buffer if getattr(buffer, "__cuda_ndarray__", False) else cuda.as_cuda_array(buffer)
    if not arr.is_c_contiguous():
        raise ValueError("buffer must be C-contiguous")
    if len(arr.shape) != 1:
        arr = arr.reshape(-1)
    if np.dtype(arr.dtype) != np.uint8:
        arr = arr.view(np.uint8)
    size = arr.shape[0]
    if size and (_device_address(arr) % 8 or (pad and size % 8)):
        # uint64 and int64 views of the frame need 8-byte alignment on the device
        fresh = cuda.device_array(size + (-size % 8 if pad else 0), np.uint8)
        fresh[:size].copy_to_device(arr)
        arr = fresh
    return arr, size


def _decode_frame_gpu(frame, verify_crc: bool) -> MessageBatch:
    """decode_frame on the device: a device batch of views into ``frame`` (a device array)."""
    from ._device import _batch_of
    from .kernels import cuda_frame_check as _gck

    try:
        frame, size = _device_bytes(frame)
    except ValueError as exc:
        raise FrameError(f"expected a bytes-like buffer, got {type(frame).__name__} ({exc})") from None
    head = frame[:min(size, _fr.HEADER_BYTES)].copy_to_host()
    flags, n, m, k, sizes, starts, length = _parse_header(head, size)
    stored = int(head[4:8].view("<u4")[0])
    if _gck.frame_faults(frame, flags, n, m, k, sizes, starts, stored if verify_crc else None):
        _raise_as_on_the_cpu(frame, verify_crc)
    words = frame.view(np.int64)

    def region(col):
        return frame[starts[col]:starts[col] + sizes[col]]

    def offsets(col, count):
        return words[starts[col] // 8:starts[col] // 8 + count]

    def binary(off_col, valid_col, data_col, flag):
        validity = region(valid_col).view(np.bool_) if flags & flag else None
        return BinaryColumn._from_trusted(offsets(off_col, n + 1), region(data_col), validity)

    headers = None
    if flags & _fr.F_HEADERS:
        # The names become Python strings, so their offsets and bytes (a few per name) cross
        # the bus; the device has checked the offsets already.
        bounds = offsets(_fr.HDR_NAME_OFFSETS, k + 1).copy_to_host().tolist()
        raw = region(_fr.HDR_NAME_DATA).copy_to_host().tobytes()
        headers = HeaderTable._from_trusted(
            offsets(_fr.HDR_OFFSETS, n + 1), _header_names(raw, bounds, starts[_fr.HDR_NAME_DATA]),
            region(_fr.HDR_NAME_IDS).view(np.int32), region(_fr.HDR_TYPES), region(_fr.HDR_INTS).view(np.int64),
            region(_fr.HDR_FLOATS).view(np.float64), offsets(_fr.HDR_BLOB_OFFSETS, m + 1),
            region(_fr.HDR_BLOB_DATA))
    meta = [region(col).view(dtype) if flags & flag else None
            for flag, col, dtype in ((_fr.F_PARTITION, _fr.PARTITION, np.int32), (_fr.F_OFFSET, _fr.OFFSET, np.int64),
                                     (_fr.F_TIMESTAMP, _fr.TIMESTAMP, np.int64))]
    return _batch_of(binary(_fr.KEY_OFFSETS, _fr.KEY_VALIDITY, _fr.KEY_DATA, _fr.F_KEY_VALIDITY),
                     binary(_fr.VALUE_OFFSETS, _fr.VALUE_VALIDITY, _fr.VALUE_DATA, _fr.F_VALUE_VALIDITY),
                     headers, meta)


def _raise_as_on_the_cpu(frame, verify_crc: bool):
    """Raise the FrameError the CPU decoder raises for ``frame``, a device frame the device
    checks have found faulty: the first fault in the CPU's order, with its offset, is what
    the caller sees whichever backend decodes. The frame crosses the bus only here."""
    data = _ro(frame.copy_to_host())
    with _threads(0, data.shape[0]):
        _decode_frame(data, verify_crc)
    raise RuntimeError("internal error: the device checks found a fault in a frame that the CPU "
                       "decoder accepts; please report it with the frame")


# ----------------------------------------------------------------------------- Kafka RecordBatch v2

_RB = struct.Struct(">qiibIhiqqqhii")


def _bytes_maker():
    """A function size -> (bytes object, writable uint8 view of its contents), or None.

    CPython's C API creates a bytes object with uninitialized contents
    (``PyBytes_FromStringAndSize(NULL, n)``) for its creator to fill before anyone else sees
    it; filling it in place saves a copy of the whole RecordBatch, and the page faults of a
    second buffer. Other interpreters fill an array and copy it.
    """
    if platform.python_implementation() != "CPython":
        return None
    try:
        api = ctypes.pythonapi
        make = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
            ("PyBytes_FromStringAndSize", api))
        address = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(("PyBytes_AsString", api))
    except (AttributeError, OSError):  # pragma: no cover - CPython always exports both
        return None

    def new_bytes(size: int):
        obj = make(None, size)
        view = np.ctypeslib.as_array((ctypes.c_uint8 * size).from_address(address(obj)))
        return obj, view

    return new_bytes


_BYTES_MAKER = _bytes_maker()


def _new_bytes(size: int):
    """(bytes object or None, writable uint8 array that holds, or will be copied into, it)."""
    if _BYTES_MAKER is None or size == 0:
        return None, np.empty(size, np.uint8)
    return _BYTES_MAKER(size)
_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_INT32 = (-(1 << 31), (1 << 31) - 1)
_INT16 = (-(1 << 15), (1 << 15) - 1)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_KAFKA_HEADER_TYPES = (C.NONE, C.STR, C.BYTES)
_TYPE_NAMES = {C.NONE: "None", C.BOOL: "bool", C.INT: "int", C.FLOAT: "float", C.STR: "str",
               C.BYTES: "bytes", C.LIST: "list", C.DICT: "dict"}


class RecordBatchHeader(NamedTuple):
    """The 61-byte header of a Kafka RecordBatch v2, field by field (SEMANTICS.md §12)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def compression(self) -> str:
        """"none", "gzip", "snappy", "lz4", "zstd", or "unknown codec N"."""
        codec = self.attributes & 7
        return _CODECS.get(codec, f"unknown codec {codec}")

    @property
    def log_append_time(self) -> bool:
        """True when the broker stamped the batch: every record's timestamp is max_timestamp."""
        return bool(self.attributes & 8)

    @property
    def transactional(self) -> bool:
        return bool(self.attributes & 16)

    @property
    def control(self) -> bool:
        """True for a transaction marker batch (its record is a marker, not user data)."""
        return bool(self.attributes & 32)


def record_batch_header(buffer) -> RecordBatchHeader:
    """Read and check the header of the RecordBatch that fills ``buffer``.

    ``buffer``: host memory, or GPU memory (copied to the host first).

    Raises:
        FrameError: fewer than 61 bytes, a batchLength that disagrees with the buffer's
            length, or a magic other than 2.
    """
    data = _bytes_of(buffer)
    size = data.shape[0]
    if size < _rb.HEADER_BYTES:
        raise FrameError(f"truncated RecordBatch: {size} bytes, the header alone needs {_rb.HEADER_BYTES}",
                         size)
    header = RecordBatchHeader(*_RB.unpack_from(data, 0))
    if header.batch_length != size - 12:
        raise FrameError(f"batchLength {header.batch_length} says the batch is {header.batch_length + 12} "
                         f"bytes, but the buffer holds {size}", 8)
    if header.magic != 2:
        raise FrameError(f"unsupported RecordBatch magic {header.magic}, expected 2", 16)
    return header


def split_record_batches(buffer) -> list:
    """Cut a Kafka record set (a fetch response's records, a log segment) into its batches.

    Returns memoryviews of each complete batch, in order. An incomplete batch at the end is
    left out, as Kafka's clients do (a fetch may stop mid-batch). Batches are not validated
    here: pass each to :func:`decode_record_batch`.

    A buffer in GPU memory is copied to the host first (the views are of that copy).

    Raises:
        FrameError: a batchLength too small to hold a v2 batch header.
    """
    view = memoryview(_host_buffer(buffer)).cast("B")
    size = len(view)
    out = []
    pos = 0
    while size - pos >= 12:
        (length,) = struct.unpack_from(">i", view, pos + 8)
        if length < _rb.HEADER_BYTES - 12:
            raise FrameError(f"batchLength {length} is too small for a RecordBatch "
                             f"(at least {_rb.HEADER_BYTES - 12})", pos + 8)
        if pos + 12 + length > size:
            break
        out.append(view[pos:pos + 12 + length])
        pos += 12 + length
    return out


def _int_arg(value, name: str, bounds) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{name} must lie in [{bounds[0]}, {bounds[1]}], got {value}")
    return value


def _kafka_headers(table: HeaderTable | None):
    """Headers for the record kernels; raises BatchError for values Kafka cannot carry."""
    if table is None or table.entry_count == 0:
        return _NO_HEADERS, _EMPTY_I64
    bad = np.flatnonzero(~np.isin(table.types, _KAFKA_HEADER_TYPES))
    if bad.shape[0]:
        j = int(bad[0])
        i = int(np.searchsorted(table.offsets, j, side="right")) - 1
        name = table.names[int(table.name_ids[j])]
        raise BatchError(f"message {i}: header {name!r} holds a {_TYPE_NAMES[int(table.types[j])]}; "
                         f"Kafka header values are bytes, str (sent as UTF-8) or None", i)
    h, _, _ = _headers(table)
    return h, _ro(np.diff(h.name_offsets))


def encode_record_batch(batch: MessageBatch, base_offset: int = 0, base_timestamp: int | None = None,
                        producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1, *,
                        partition_leader_epoch: int = -1, transactional: bool = False) -> bytes:
    """Encode a batch as one uncompressed Kafka RecordBatch v2 (magic 2).

    Record i gets offsetDelta i. Timestamps come from ``batch.timestamp`` when present
    (``base_timestamp`` defaults to the first one; deltas may be negative), else every record
    gets ``base_timestamp`` (default: now, in milliseconds). Keys and values may be null.
    Headers become Kafka headers: bytes as they are, str as UTF-8, None as a null value.
    ``batch.partition`` and ``batch.offset`` are not part of the format and are ignored.

    Args:
        batch: at least one message; a device batch is copied to the host first (RecordBatch
            encoding runs on the host only).
        base_offset, producer_id (-1: none), producer_epoch, base_sequence (-1: none),
        partition_leader_epoch, transactional: header fields, as a producer sets them.

    Returns:
        The batch's bytes: 61 header bytes, then the records; CRC-32C over bytes [21, end).

    Raises:
        BatchError: an empty batch, a header value of another type (naming the message and
            header), a timestamp delta outside 64 bits, or a batch over 2 GiB.
        ValueError / TypeError: a header field outside its Kafka type.
    """
    batch = _host(_as_batch(batch, "encode_record_batch"))
    n = len(batch)
    if n == 0:
        raise BatchError("a RecordBatch needs at least one record, got an empty batch")
    base_offset = _int_arg(base_offset, "base_offset", _INT64)
    producer_id = _int_arg(producer_id, "producer_id", _INT64)
    producer_epoch = _int_arg(producer_epoch, "producer_epoch", _INT16)
    base_sequence = _int_arg(base_sequence, "base_sequence", _INT32)
    partition_leader_epoch = _int_arg(partition_leader_epoch, "partition_leader_epoch", _INT32)
    if n - 1 > _INT32[1]:
        raise BatchError(f"a RecordBatch holds at most {_INT32[1] + 1} records, got {n}")
    ts = batch.timestamp
    if base_timestamp is None:
        base_timestamp = int(ts[0]) if ts is not None else time.time_ns() // 1_000_000
    base_timestamp = _int_arg(base_timestamp, "base_timestamp", _INT64)
    if ts is not None:
        with np.errstate(over="ignore"):
            deltas = ts - np.int64(base_timestamp)
        overflow = ((ts ^ np.int64(base_timestamp)) & (ts ^ deltas)) < 0
        if overflow.any():
            i = int(np.argmax(overflow))
            raise BatchError(f"message {i}: timestamp {int(ts[i])} is too far from base_timestamp "
                             f"{base_timestamp} for a 64-bit delta", i)
        max_ts = int(ts.max())
    else:
        deltas = _EMPTY_I64
        max_ts = base_timestamp
    keys, values = _column(batch.keys), _column(batch.values)
    headers, name_len = _kafka_headers(batch.headers)
    with _threads(n, batch.keys.nbytes + batch.values.nbytes):
        deltas = _ro(deltas)
        total, body = _rb.record_sizes(keys, values, headers, name_len, deltas, ts is not None)
        positions = np.empty(n, np.int64)
        positions[0] = _rb.HEADER_BYTES
        np.cumsum(total[:-1], out=positions[1:])
        positions[1:] += _rb.HEADER_BYTES
        size = int(positions[-1] + total[-1])
        if size - 12 > _INT32[1]:
            raise BatchError(f"the records take {size} bytes, more than one RecordBatch can hold (2 GiB)")
        result, out = _new_bytes(size)
        _rb.write_records(out, positions, body, keys, values, headers, headers.name_offsets,
                          headers.name_data, deltas, ts is not None)
        attributes = 16 if transactional else 0
        _RB.pack_into(out, 0, base_offset, size - 12, partition_leader_epoch, 2, 0, attributes, n - 1,
                      base_timestamp, max_ts, producer_id, producer_epoch, base_sequence, n)
        crc = int(_crc.crc32c_ranges(_ro(out), np.array([21], np.int64), np.array([size], np.int64),
                                     _crc.HARDWARE)[0])
    struct.pack_into(">I", out, 17, crc)
    return result if result is not None else out.tobytes()


_RECORD_FAULTS = {
    _rb.E_VARINT_LONG: "a varint is longer than its field allows",
    _rb.E_VARINT_CUT: "the record ends inside a varint",
    _rb.E_LENGTH_NEGATIVE: "negative record length",
    _rb.E_RECORD_OVERRUN: "the record length runs past the end of the batch",
    _rb.E_TRAILING: "bytes left over after the last record",
    _rb.E_KEY_OVERRUN: "the key length runs past the end of the record",
    _rb.E_VALUE_OVERRUN: "the value length runs past the end of the record",
    _rb.E_HEADER_COUNT: "the header count is negative or larger than the bytes left",
    _rb.E_HEADER_KEY_NEGATIVE: "a header key length is negative",
    _rb.E_HEADER_KEY_OVERRUN: "a header key runs past the end of the record",
    _rb.E_HEADER_VALUE_OVERRUN: "a header value runs past the end of the record",
    _rb.E_RECORD_LEFTOVER: "the record's fields end before its length says",
    _rb.E_RECORD_SHORT: "the record is shorter than its fields",
}


def decode_record_batch(buffer, *, verify_crc: bool = True, partition: int | None = None) -> MessageBatch:
    """Decode one uncompressed Kafka RecordBatch v2 into a MessageBatch.

    The batch gets ``offset`` (baseOffset + offsetDelta) and ``timestamp`` (baseTimestamp +
    timestampDelta, or maxTimestamp for LOG_APPEND_TIME batches) columns, and ``partition``
    when one is given. Header values come back as bytes (None for null values). Keys and
    values are copied into contiguous columns (the format interleaves them). A control
    batch decodes like any other; check :func:`record_batch_header` to skip markers. A
    buffer in GPU memory is copied to the host first: the result is a host batch.

    Raises:
        FrameError: with the byte offset of the fault: a buffer that is not exactly one batch,
            magic other than 2, a CRC-32C mismatch, a compressed batch (naming the codec), a
            record count that cannot fit, or any malformed record (a varint too long, a
            length running past its record or the batch, a record whose fields do not fill
            exactly its length, bytes after the last record, a header key that is not UTF-8).

    Cost: one CRC pass, one serial skip over the record lengths, then parallel parsing and
    copying.
    """
    data = _bytes_of(buffer)
    header = record_batch_header(data)
    with _threads(0, data.shape[0]):
        return _decode_record_batch(data, header, verify_crc, partition)


def _decode_record_batch(data, header, verify_crc, partition) -> MessageBatch:
    size = data.shape[0]
    if verify_crc:
        got = int(_crc.crc32c_ranges(data, np.array([21], np.int64), np.array([size], np.int64),
                                     _crc.HARDWARE)[0])
        if got != header.crc:
            raise FrameError(f"CRC-32C mismatch: the batch stores 0x{header.crc:08x}, its bytes "
                             f"21..{size} give 0x{got:08x}", 17)
    if header.attributes & 7:
        raise FrameError(f"the batch is compressed with {header.compression}; fastroute decodes "
                         f"uncompressed RecordBatches only", 21)
    count = header.records_count
    if count < 0 or count > (size - _rb.HEADER_BYTES) // _rb.MIN_RECORD_BYTES:
        raise FrameError(f"recordsCount {count} cannot fit in the batch's {size - _rb.HEADER_BYTES} "
                         f"bytes of records", 57)
    body_lo, body_hi, err, where, r = _rb.scan_records(data, _rb.HEADER_BYTES, size, count)
    if err != _rb.OK:
        what = f"record {r}" if r < count else f"after record {count - 1}"
        raise FrameError(f"{what}: {_RECORD_FAULTS[int(err)]}", int(where))
    fields, r, err, where = _rb.parse_records(data, body_lo, body_hi)
    if r >= 0:
        raise FrameError(f"record {r}: {_RECORD_FAULTS[int(err)]}", int(where))
    ko, kd, kv, vo, vd, vv = _rb.gather_keys_values(data, fields)
    keys = BinaryColumn(ko, kd, kv)
    values = BinaryColumn(vo, vd, vv)
    headers = None
    if count and int(fields[:, _rb.F_HEADERS].max()) > 0:
        headers = _record_headers(data, fields, body_hi)
    if header.log_append_time:
        timestamps = np.full(count, header.max_timestamp, np.int64)
    else:
        with np.errstate(over="ignore"):
            timestamps = fields[:, _rb.F_TS] + np.int64(header.base_timestamp)
    with np.errstate(over="ignore"):
        offsets = fields[:, _rb.F_OFFSET] + np.int64(header.base_offset)
    parts = None if partition is None else np.full(count, _int_arg(partition, "partition", _INT32), np.int32)
    return MessageBatch(keys, values, headers, parts, offsets, timestamps)


def _record_headers(data, fields, body_hi) -> HeaderTable:
    offsets, name_ids, name_pos, name_len, types, blob_offsets, blob_data = _rb.gather_headers(
        data, fields, body_hi)
    names = []
    for p, ln in zip(name_pos.tolist(), name_len.tolist()):
        raw = data[p:p + ln].tobytes()
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise FrameError(f"header key {raw!r} is not UTF-8", p + exc.start) from None
    return HeaderTable(offsets, names, name_ids, types, np.zeros(types.shape[0], np.int64),
                       np.zeros(types.shape[0], np.float64), blob_offsets, blob_data)
