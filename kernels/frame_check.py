"""Validation kernels for decoding untrusted frames.

Each returns the position of the first fault it finds, or -1, so the caller can name the
fault and its byte offset. They read only inside the arrays they are given, whatever those
arrays hold; the caller has already checked that every column lies inside the frame.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _codes as C
from ._config import SERIAL
from .frame_bytes import load_u8_at

#: Items per parallel block in the array checks.
_BLOCK = 1 << 16


@njit(**SERIAL)
def first_bad_offset(offsets, limit):
    """First index j where an offsets array fails: offsets[0] == 0, offsets[j-1] <= offsets[j],
    offsets[-1] == limit. -1 when it is a valid offsets array over ``limit`` bytes.

    Serial on purpose: the branch-free scan vectorizes and runs at memory speed (8 MB in about
    0.5 ms), so another parallel region would cost more than it saves on a busy machine.
    """
    n = offsets.shape[0]
    if n == 0 or offsets[0] != 0:
        return 0
    for lo in range(1, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        fault = False
        for j in range(lo, hi):
            fault |= offsets[j] < offsets[j - 1]
        if fault:
            for j in range(lo, hi):
                if offsets[j] < offsets[j - 1]:
                    return j
    if offsets[n - 1] != limit:
        return n - 1
    return -1


@njit(**SERIAL)
def first_above(values, top):
    """First index whose value is negative or above ``top``, or -1."""
    for j in range(values.shape[0]):
        if values[j] < 0 or values[j] > top:
            return j
    return -1


@njit(**SERIAL)
def first_non_bool(flags):
    """First index of a byte other than 0 or 1, or -1."""
    for j in range(flags.shape[0]):
        if flags[j] > 1:
            return j
    return -1


@njit(**SERIAL)
def _cont(base, pos, hi, lo_byte, hi_byte):
    """Whether byte ``pos`` (< hi) after address ``base`` lies in [lo_byte, hi_byte]."""
    if pos >= hi:
        return False
    b = load_u8_at(base + pos)
    return lo_byte <= b <= hi_byte


@njit(**SERIAL)
def utf8_fault(base, lo, hi):
    """Position of the first byte of [lo, hi) after address ``base`` that breaks strict UTF-8
    (as Python's decoder: no overlong forms, no surrogates, nothing above U+10FFFF), or -1."""
    i = lo
    while i < hi:
        b = load_u8_at(base + i)
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            need, lo2, hi2 = 1, 0x80, 0xBF
        elif b == 0xE0:
            need, lo2, hi2 = 2, 0xA0, 0xBF
        elif b == 0xED:
            need, lo2, hi2 = 2, 0x80, 0x9F
        elif 0xE1 <= b <= 0xEF:
            need, lo2, hi2 = 2, 0x80, 0xBF
        elif b == 0xF0:
            need, lo2, hi2 = 3, 0x90, 0xBF
        elif 0xF1 <= b <= 0xF3:
            need, lo2, hi2 = 3, 0x80, 0xBF
        elif b == 0xF4:
            need, lo2, hi2 = 3, 0x80, 0x8F
        else:
            return i
        if not _cont(base, i + 1, hi, lo2, hi2):
            return i
        for k in range(2, need + 1):
            if not _cont(base, i + k, hi, 0x80, 0xBF):
                return i
        i += need + 1
    return -1


@njit(**SERIAL)
def first_bad_utf8(data, lo, hi):
    """:func:`utf8_fault` on ``data[lo:hi]`` of a uint8 array."""
    return utf8_fault(data.ctypes.data, lo, hi)


@njit(**SERIAL)
def _u32(base, pos):
    return (np.int64(load_u8_at(base + pos)) | (np.int64(load_u8_at(base + pos + 1)) << 8)
            | (np.int64(load_u8_at(base + pos + 2)) << 16) | (np.int64(load_u8_at(base + pos + 3)) << 24))


@njit(**SERIAL)
def nested_fault(base, lo, hi, top_tag, ends, left, is_dict):
    """Position of the first fault in the nested encoding of one list or dict header value
    (``kernels/_codes.py``) occupying exactly the bytes [lo, hi) after address ``base`` and
    starting with ``top_tag``, or -1. Strings (values and dict names) must be UTF-8; containers
    must hold exactly their declared count of items in exactly their declared length.
    ``ends``, ``left`` and ``is_dict`` are the container stack, at least (hi - lo) // 9 + 2 long.
    """
    if hi - lo < 1 or load_u8_at(base + lo) != top_tag:
        return lo
    depth = 0
    pos = lo
    started = False
    while True:
        if depth > 0 and left[depth - 1] == 0:
            if pos != ends[depth - 1]:
                return pos
            depth -= 1
            continue
        if depth == 0 and started:
            return -1 if pos == hi else pos
        end = ends[depth - 1] if depth > 0 else hi
        if depth > 0:
            left[depth - 1] -= 1
            if is_dict[depth - 1]:
                if end - pos < 4:
                    return pos
                ln = _u32(base, pos)
                if ln > end - pos - 4:
                    return pos
                bad = utf8_fault(base, pos + 4, pos + 4 + ln)
                if bad >= 0:
                    return bad
                pos += 4 + ln
        started = True
        if pos >= end:
            return pos
        tag = load_u8_at(base + pos)
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
        ln = _u32(base, pos)
        if ln > end - pos - 4:
            return pos
        body = pos + 4
        if tag == C.TAG_STR:
            bad = utf8_fault(base, body, body + ln)
            if bad >= 0:
                return bad
            pos = body + ln
        elif tag == C.TAG_BYTES:
            pos = body + ln
        else:
            if ln < 4:
                return pos
            ends[depth] = body + ln
            left[depth] = _u32(base, body)
            is_dict[depth] = tag == C.TAG_DICT
            depth += 1
            pos = body + 4
    return -1


@njit(**SERIAL)
def first_bad_blob(types, blob_offsets, blob_data):
    """First header entry whose value bytes are not what its type needs (UTF-8 for str, a
    well-formed nested encoding for list and dict), as (entry, byte position), or (-1, -1)."""
    base = blob_data.ctypes.data
    longest = 0
    for j in range(types.shape[0]):
        longest = max(longest, blob_offsets[j + 1] - blob_offsets[j])
    depth = longest // 9 + 2
    ends = np.empty(depth, np.int64)
    left = np.empty(depth, np.int64)
    is_dict = np.empty(depth, np.bool_)
    for j in range(types.shape[0]):
        t = types[j]
        lo = blob_offsets[j]
        hi = blob_offsets[j + 1]
        if t == C.STR:
            bad = utf8_fault(base, lo, hi)
        elif t == C.LIST:
            bad = nested_fault(base, lo, hi, C.TAG_LIST, ends, left, is_dict)
        elif t == C.DICT:
            bad = nested_fault(base, lo, hi, C.TAG_DICT, ends, left, is_dict)
        else:
            bad = -1
        if bad >= 0:
            return j, bad
    return -1, -1
