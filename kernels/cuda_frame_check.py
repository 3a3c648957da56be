"""Validation of an untrusted frame on a CUDA device: the column checks of ``decode_frame``.

:func:`frame_faults` runs, on a frame in device memory whose header and directory the host
has already checked (``codec._parse_header``: every column lies inside the frame), every
check the CPU decoder makes on the columns themselves (``docs/frame-format.md``, "What a
reader checks", items 4 to 7 but the header names' UTF-8):

* the CRC-32C of bytes [8, length) against the stored one (:mod:`.cuda_crc32c`);
* every offsets column starts at 0, never decreases and ends at its data column's size;
* validity bytes are 0 or 1, type codes at most 7, name ids in [0, k);
* str header values are strict UTF-8, list and dict values well-formed nested items.

It answers only *whether* each kind of check failed (a bit mask, one 4-byte copy to the
host), not where: the first fault in the CPU's order is a sequential notion, so the caller
reproduces the error message by running the CPU decoder on a host copy, and the happy path
never copies the frame.

The value checks (:func:`utf8_fault`, :func:`nested_fault`) are plain Python compiled for
both targets (the ``*_cpu`` builds let the tests compare them with
:mod:`fastroute.kernels.frame_check` on many inputs). They index arrays where the CPU twins
load through raw addresses, which a device function cannot use, so the logic is the CPU's
one byte for byte, over another way of reading. A thread checks one header value; the stack
of open containers that the CPU keeps in one array per call lives here in device scratch,
each entry owning ``(hi - lo) // 9 + 2`` slots (a container takes at least 9 bytes) from
``lo // 9 + 2 * entry`` on, so the regions of valid offsets never overlap.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, njit

from . import _codes as C
from . import cuda_launch as L
from . import frame as F
from ._config import INLINE, SERIAL
from .cuda_crc32c import crc32c_ranges
from .cuda_launch import KERNEL
from .cuda_scan import range_of
from .cuda_topic import for_device

#: Fault bits of :func:`frame_faults`, one per kind of check.
CRC = 1
OFFSETS = 2
VALIDITY = 4
NAME_IDS = 8
TYPES = 16
VALUES = 32

#: Bit names, for messages and tests.
FAULT_NAMES = {CRC: "crc", OFFSETS: "offsets", VALIDITY: "validity", NAME_IDS: "name ids", TYPES: "types",
               VALUES: "values"}


# --------------------------------------------------------------------------- value checks, both targets

def _u32_py(buf, pos):
    return (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24))


def _cont_py(buf, pos, hi, lo_byte, hi_byte):
    """Whether byte ``pos`` (< hi) lies in [lo_byte, hi_byte]."""
    if pos >= hi:
        return False
    b = buf[pos]
    return lo_byte <= b and b <= hi_byte


_u32 = njit(**INLINE)(_u32_py)
_cont = njit(**INLINE)(_cont_py)


def _utf8_fault_py(buf, lo, hi):
    """Position of the first byte of ``buf[lo:hi]`` that breaks strict UTF-8 (as Python's
    decoder: no overlong forms, no surrogates, nothing above U+10FFFF), or -1."""
    i = lo
    while i < hi:
        b = buf[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b and b <= 0xDF:
            need, lo2, hi2 = 1, 0x80, 0xBF
        elif b == 0xE0:
            need, lo2, hi2 = 2, 0xA0, 0xBF
        elif b == 0xED:
            need, lo2, hi2 = 2, 0x80, 0x9F
        elif 0xE1 <= b and b <= 0xEF:
            need, lo2, hi2 = 2, 0x80, 0xBF
        elif b == 0xF0:
            need, lo2, hi2 = 3, 0x90, 0xBF
        elif 0xF1 <= b and b <= 0xF3:
            need, lo2, hi2 = 3, 0x80, 0xBF
        elif b == 0xF4:
            need, lo2, hi2 = 3, 0x80, 0x8F
        else:
            return i
        if not _cont(buf, i + 1, hi, lo2, hi2):
            return i
        for k in range(2, need + 1):
            if not _cont(buf, i + k, hi, 0x80, 0xBF):
                return i
        i += need + 1
    return -1


utf8_fault_cpu = njit(**SERIAL)(_utf8_fault_py)
_utf8_fault = njit(**INLINE)(_utf8_fault_py)


def _nested_fault_py(buf, lo, hi, top_tag, ends, left, is_dict, base, cap):
    """Position of the first fault in the nested encoding of one list or dict header value
    occupying exactly ``buf[lo:hi]`` and starting with ``top_tag``, or -1 (the CPU's
    ``frame_check.nested_fault``). The container stack is ``ends``, ``left`` and ``is_dict``
    from ``base``, ``cap`` slots; a value that would need more is reported as a fault at the
    tag that overflows (it cannot happen with ``cap >= (hi - lo) // 9 + 1``)."""
    if hi - lo < 1 or buf[lo] != top_tag:
        return lo
    depth = 0
    pos = lo
    started = False
    while True:
        if depth > 0 and left[base + depth - 1] == 0:
            if pos != ends[base + depth - 1]:
                return pos
            depth -= 1
            continue
        if depth == 0 and started:
            return -1 if pos == hi else pos
        end = ends[base + depth - 1] if depth > 0 else hi
        if depth > 0:
            left[base + depth - 1] -= 1
            if is_dict[base + depth - 1]:
                if end - pos < 4:
                    return pos
                ln = _u32(buf, pos)
                if ln > end - pos - 4:
                    return pos
                bad = _utf8_fault(buf, pos + 4, pos + 4 + ln)
                if bad >= 0:
                    return bad
                pos += 4 + ln
        started = True
        if pos >= end:
            return pos
        tag = buf[pos]
        pos += 1
        if tag == C.TAG_NONE or tag == C.TAG_FALSE or tag == C.TAG_TRUE:
            continue
        if tag == C.TAG_INT or tag == C.TAG_FLOAT:
            if end - pos < 8:
                return pos
            pos += 8
            continue
        if tag > C.TAG_DICT:
            return pos - 1
        if end - pos < 4:
            return pos
        ln = _u32(buf, pos)
        if ln > end - pos - 4:
            return pos
        body = pos + 4
        if tag == C.TAG_STR:
            bad = _utf8_fault(buf, body, body + ln)
            if bad >= 0:
                return bad
            pos = body + ln
        elif tag == C.TAG_BYTES:
            pos = body + ln
        else:
            if ln < 4:
                return pos
            if depth >= cap:
                return pos - 1
            ends[base + depth] = body + ln
            left[base + depth] = _u32(buf, body)
            is_dict[base + depth] = 1 if tag == C.TAG_DICT else 0
            depth += 1
            pos = body + 4
    return -1


nested_fault_cpu = njit(**SERIAL)(_nested_fault_py)

_DEVICE_HELPERS = dict(_u32=cuda.jit(device=True)(_u32_py), _cont=cuda.jit(device=True)(_cont_py))
_DEVICE_HELPERS["_utf8_fault"] = for_device(_utf8_fault_py, **_DEVICE_HELPERS)
_utf8_fault_dev = _DEVICE_HELPERS["_utf8_fault"]
_nested_fault_dev = for_device(_nested_fault_py, **_DEVICE_HELPERS)


def stack_slots(blob_bytes: int, entries: int) -> int:
    """Scratch slots the container stacks of ``entries`` header values over ``blob_bytes``
    bytes need (see the module docstring)."""
    return blob_bytes // 9 + 2 * entries + 2


# --------------------------------------------------------------------------- kernels

@cuda.jit(**KERNEL)
def _offsets_faults(words, cols, col_off, fault):
    """One thread per entry of every offsets column: ``cols[r]`` = (first word, entries,
    limit) of column r, ``col_off`` the prefix sums of the entries."""
    for g in range(cuda.grid(1), col_off[col_off.shape[0] - 1], cuda.gridsize(1)):
        r = range_of(col_off, g)
        j = g - col_off[r]
        w = cols[r, 0] + j
        v = words[w]
        bad = False
        if j == 0:
            bad = v != 0
        else:
            bad = v < words[w - 1]
        if j == cols[r, 1] - 1 and v != cols[r, 2]:
            bad = True
        if bad:
            cuda.atomic.or_(fault, 0, OFFSETS)


@cuda.jit(**KERNEL)
def _byte_faults(data, rows, row_off, fault):
    """One thread per byte of every checked byte column: ``rows[r]`` = (first byte, count,
    largest valid value, fault bit) of column r, ``row_off`` the prefix sums of the counts."""
    for g in range(cuda.grid(1), row_off[row_off.shape[0] - 1], cuda.gridsize(1)):
        r = range_of(row_off, g)
        if data[rows[r, 0] + g - row_off[r]] > rows[r, 2]:
            cuda.atomic.or_(fault, 0, rows[r, 3])


@cuda.jit(**KERNEL)
def _name_id_faults(ids, k, fault):
    for j in range(cuda.grid(1), ids.shape[0], cuda.gridsize(1)):
        if ids[j] < 0 or ids[j] >= k:
            cuda.atomic.or_(fault, 0, NAME_IDS)


@cuda.jit(**KERNEL)
def _value_faults(types, blob_offsets, blob, ends, left, is_dict, fault):
    """One thread per header entry: its str, list or dict value bytes. An entry whose offsets
    do not lie in the blob column is skipped (the offsets check reports it)."""
    size = blob.shape[0]
    for j in range(cuda.grid(1), types.shape[0], cuda.gridsize(1)):
        lo = blob_offsets[j]
        hi = blob_offsets[j + 1]
        if lo < 0 or hi < lo or hi > size:
            continue
        t = types[j]
        bad = -1
        if t == C.STR:
            bad = _utf8_fault_dev(blob, lo, hi)
        elif t == C.LIST or t == C.DICT:
            top = C.TAG_LIST if t == C.LIST else C.TAG_DICT
            bad = _nested_fault_dev(blob, lo, hi, top, ends, left, is_dict, lo // 9 + 2 * j, (hi - lo) // 9 + 2)
        if bad >= 0:
            cuda.atomic.or_(fault, 0, VALUES)


@cuda.jit(**KERNEL)
def _crc_fault(crcs, stored, fault):
    if cuda.grid(1) == 0 and crcs[0] != stored:
        cuda.atomic.or_(fault, 0, CRC)


# --------------------------------------------------------------------------- driver

def _table(rows):
    """(rows as an int64 (r, 4) device table, device prefix sums of their counts, total)."""
    table = np.array(rows, np.int64).reshape(len(rows), -1)
    off = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(table[:, 1], out=off[1:])
    return cuda.to_device(table), cuda.to_device(off), int(off[-1])


def frame_faults(frame, flags: int, n: int, m: int, k: int, sizes, starts, stored_crc: int | None) -> int:
    """Run the column checks of one frame on the device; return the mask of failed checks.

    Args:
        frame: the whole frame, a uint8 device array starting 8-byte aligned, whose header
            the host has checked (its length is then a multiple of 8 and every column lies
            inside it).
        flags, n, m, k, sizes, starts: what ``codec._parse_header`` read.
        stored_crc: the CRC stored at byte 4, or None to skip the CRC check.

    Returns:
        0 when the frame is valid as far as the columns go (the header names' UTF-8 is left
        to the host, which decodes them anyway), else an OR of :data:`CRC`, :data:`OFFSETS`,
        :data:`VALIDITY`, :data:`NAME_IDS`, :data:`TYPES` and :data:`VALUES`.

    Cost: O(frame bytes / CRC chunk + entries of the offsets, validity, id and type columns)
    threads, plus one thread per header value reading its bytes (a long str value is one
    thread's work); device scratch of 17 bytes per 9 bytes of header values plus 34 per
    entry, for the container stacks, while the check runs; one 8-byte copy to the host.
    """
    fault = cuda.to_device(np.zeros(1, np.int64))
    length = frame.shape[0]
    if stored_crc is not None:
        crcs = crc32c_ranges(frame, frame.view(np.uint64), np.array([8], np.int64), np.array([length], np.int64))
        _crc_fault[1, 1](crcs, np.uint32(stored_crc), fault)
    words = frame.view(np.int64)
    has_h = bool(flags & F.F_HEADERS)
    offsets = [(starts[F.KEY_OFFSETS] // 8, n + 1, sizes[F.KEY_DATA]),
               (starts[F.VALUE_OFFSETS] // 8, n + 1, sizes[F.VALUE_DATA])]
    if has_h:
        offsets += [(starts[F.HDR_OFFSETS] // 8, n + 1, m),
                    (starts[F.HDR_NAME_OFFSETS] // 8, k + 1, sizes[F.HDR_NAME_DATA]),
                    (starts[F.HDR_BLOB_OFFSETS] // 8, m + 1, sizes[F.HDR_BLOB_DATA])]
    table, off, total = _table(offsets)
    L.launch(_offsets_faults, total)(words, table, off, fault)
    checked = []
    if flags & F.F_KEY_VALIDITY:
        checked.append((starts[F.KEY_VALIDITY], n, 1, VALIDITY))
    if flags & F.F_VALUE_VALIDITY:
        checked.append((starts[F.VALUE_VALIDITY], n, 1, VALIDITY))
    if has_h:
        checked.append((starts[F.HDR_TYPES], m, C.DICT, TYPES))
    if checked:
        table, off, total = _table(checked)
        L.launch(_byte_faults, total)(frame, table, off, fault)
    if has_h and m:
        ids = frame[starts[F.HDR_NAME_IDS]:starts[F.HDR_NAME_IDS] + 4 * m].view(np.int32)
        L.launch(_name_id_faults, m)(ids, np.int32(k), fault)
        blob_size = sizes[F.HDR_BLOB_DATA]
        slots = stack_slots(blob_size, m)
        types = frame[starts[F.HDR_TYPES]:starts[F.HDR_TYPES] + m]
        blob_offsets = words[starts[F.HDR_BLOB_OFFSETS] // 8:starts[F.HDR_BLOB_OFFSETS] // 8 + m + 1]
        blob = frame[starts[F.HDR_BLOB_DATA]:starts[F.HDR_BLOB_DATA] + blob_size]
        L.launch(_value_faults, m)(types, blob_offsets, blob, cuda.device_array(slots, np.int64),
                                   cuda.device_array(slots, np.int64), cuda.device_array(slots, np.uint8), fault)
    return int(fault.copy_to_host()[0])


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90, with the types frame_faults passes; built on first use.
    if name == "PTX_CHECKS":
        from numba import types as T

        i64, u8, i32 = T.int64[::1], T.uint8[::1], T.int32[::1]
        return [(_offsets_faults, (i64, T.int64[:, ::1], i64, i64)),
                (_byte_faults, (u8, T.int64[:, ::1], i64, i64)),
                (_name_id_faults, (i32, T.int32, i64)),
                (_value_faults, (u8, i64, u8, i64, i64, u8, i64)),
                (_crc_fault, (T.uint32[::1], T.uint32, i64))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
