"""decode_frame on broken frames: each fault is named, with its byte offset."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
from fastroute import codec
from fastroute.kernels import frame_check
from reference_codec import FRAME_HEADER, build_frame, crc32c_bitwise, encode_frame_ref


def _i64s(*values) -> bytes:
    return b"".join(struct.pack("<q", v) for v in values)


def _good_columns():
    """Columns of a 2-message frame with headers: keys b"ab", None; values b"x", b"yz"."""
    cols = [b""] * 18
    cols[0] = _i64s(0, 2, 2)
    cols[1] = bytes([1, 0])
    cols[2] = b"ab"
    cols[3] = _i64s(0, 1, 3)
    cols[5] = b"xyz"
    cols[6] = _i64s(0, 1, 1)  # one header entry, on message 0
    cols[7] = struct.pack("<i", 0)
    cols[8] = bytes([4])  # str
    cols[9] = _i64s(0)
    cols[10] = struct.pack("<d", 0.0)
    cols[11] = _i64s(0, 3)
    cols[12] = b"val"
    cols[13] = _i64s(0, 4)
    cols[14] = b"name"
    return cols


FLAGS = 1 | 4  # key validity, headers


def _frame(cols=None, **kw) -> bytes:
    return build_frame(_good_columns() if cols is None else cols, **{"flags": FLAGS, "n": 2, "m": 1, "k": 1, **kw})


def _fault(buf, match, offset, **kw):
    with pytest.raises(fr.FrameError, match=match) as err:
        codec.decode_frame(buf, **kw)
    assert err.value.offset == offset
    assert f"at byte offset {offset}" in str(err.value)
    return err.value


def test_good_frame_decodes():
    """The hand-built frame the other tests break is itself valid."""
    batch = codec.decode_frame(_frame())
    assert [(m.key, m.value, m.headers) for m in batch] == [(b"ab", b"x", {"name": "val"}), (None, b"yz", None)]


@pytest.mark.parametrize("cut", [0, 1, 47, FRAME_HEADER - 1])
def test_truncated_header(cut):
    """A buffer shorter than the header is refused at its end."""
    _fault(_frame()[:cut], "truncated frame", cut)


def test_header_fields():
    """Magic, version, unknown flags and the column count are each checked, at their offset."""
    good = _frame()
    _fault(b"NOPE" + good[4:], "not a fastroute frame", 0)
    _fault(_frame(version=2), "unsupported frame version 2", 8)
    _fault(_frame(flags=FLAGS | 64), "unknown flag bits 0x0040", 10)
    _fault(_frame(column_count=19), "has 18 columns, the header says 19", 12)


def test_length_must_match_buffer():
    """A frame cut short, or followed by extra bytes, is refused at the length field."""
    good = _frame()
    _fault(good[:-8], r"truncated", 16)
    _fault(good + b"\0" * 8, r"trailing bytes", 16)
    _fault(_frame(length=len(good) + 8), r"says it is \d+ bytes long", 16)


def test_crc_mismatch():
    """A flipped data byte is caught by the CRC; verify_crc=False skips only that check."""
    good = bytearray(_frame())
    good[FRAME_HEADER + 24 + 8] ^= 0xFF  # first key byte
    _fault(bytes(good), "CRC-32C mismatch", 4)
    codec.decode_frame(bytes(good), verify_crc=False)  # still structurally valid


def test_column_sizes_must_match_counts():
    """A fixed-width column whose size disagrees with the counts names the column."""
    sizes = [len(c) for c in _good_columns()]
    sizes[0] = 16
    _fault(_frame(sizes=sizes), "column key_offsets is 16 bytes, expected 24", 48)
    sizes = [len(c) for c in _good_columns()]
    sizes[7] = 8
    _fault(_frame(sizes=sizes), "column header_name_ids is 8 bytes, expected 4", 48 + 8 * 7)
    sizes = [len(c) for c in _good_columns()]
    sizes[2] = 1 << 62
    _fault(_frame(sizes=sizes), "column key_data is 4611686018427387904 bytes", 48 + 16)


def test_columns_must_fill_the_frame():
    """Data column sizes that do not add up to the frame length are refused."""
    sizes = [len(c) for c in _good_columns()]
    sizes[5] = 9  # value data claims more bytes than the frame holds
    _fault(_frame(sizes=sizes), "the columns end at byte", 16)


def test_header_counts_need_the_flag():
    """Header entries announced without the headers flag are refused."""
    cols = [b""] * 18
    cols[0] = _i64s(0)
    cols[3] = _i64s(0)
    _fault(build_frame(cols, flags=0, n=0, m=3), "without the headers flag", 32)


def test_offsets_faults():
    """Offsets that do not start at 0, decrease, or miss the data size are named by entry."""
    start = FRAME_HEADER  # key offsets are column 0
    cols = _good_columns()
    cols[0] = _i64s(1, 2, 2)
    _fault(_frame(cols), r"key offsets\[0\] = 1", start)
    cols[0] = _i64s(0, 2, 1)
    _fault(_frame(cols), r"key offsets\[2\] = 1", start + 16)
    cols = _good_columns()
    cols[3] = _i64s(0, 1, 2)  # value data holds 3 bytes
    value_offsets_at = FRAME_HEADER + 24 + 8 + 8
    _fault(_frame(cols), r"value offsets\[2\] = 2 .* from 0 to 3", value_offsets_at + 16)
    cols = _good_columns()
    cols[0] = _i64s(0, 1 << 40, 2)
    _fault(_frame(cols), r"key offsets\[2\]", start + 16)


def test_validity_bytes_are_booleans():
    """A validity byte other than 0 or 1 is refused."""
    cols = _good_columns()
    cols[1] = bytes([1, 2])
    _fault(_frame(cols), "key validity byte 1 is 2", FRAME_HEADER + 24 + 1)


def _header_column_start(col: int) -> int:
    pos = FRAME_HEADER
    for c in _good_columns()[:col]:
        pos += len(c) + (-len(c) % 8)
    return pos


def test_header_faults():
    """Name ids, type codes, str values, nested values and names are all validated."""
    cols = _good_columns()
    cols[7] = struct.pack("<i", 1)
    _fault(_frame(cols), "name id 1, but there are 1 names", _header_column_start(7))
    cols = _good_columns()
    cols[7] = struct.pack("<i", -5)
    _fault(_frame(cols), "name id -5", _header_column_start(7))
    cols = _good_columns()
    cols[8] = bytes([8])
    _fault(_frame(cols), "unknown type code 8", _header_column_start(8))
    cols = _good_columns()
    cols[12] = b"v\xffl"
    _fault(_frame(cols), "str value is not UTF-8", _header_column_start(12) + 1)
    cols = _good_columns()
    cols[14] = b"n\xc3(e"
    _fault(_frame(cols), "header name 0 is not UTF-8", _header_column_start(14) + 1)


def _nested_frame(blob: bytes, code: int) -> bytes:
    cols = _good_columns()
    cols[8] = bytes([code])
    cols[11] = _i64s(0, len(blob))
    cols[12] = blob
    return _frame(cols)


LIST, DICT = 6, 7


@pytest.mark.parametrize("blob, code, bad", [
    (bytes([7]) + struct.pack("<II", 8, 2) + bytes([0, 0]), LIST, 1),   # declared 8 bytes, 6 follow
    (bytes([7]) + struct.pack("<II", 6, 3) + bytes([0, 0]), LIST, 11),  # 2 items where 3 declared
    (bytes([7]) + struct.pack("<II", 6, 1) + bytes([0, 0]), LIST, 10),  # 1 item, one byte left over
    (bytes([7]) + struct.pack("<II", 5, 1) + bytes([9]), LIST, 9),      # unknown tag
    (bytes([7]) + struct.pack("<II", 8, 1) + bytes([3, 0, 0, 0]), LIST, 10),  # int cut short
    (bytes([8]) + struct.pack("<III", 11, 1, 2) + b"\xff\xfe" + bytes([0]), DICT, 13),  # name not UTF-8
    (bytes([8]) + struct.pack("<III", 15, 1, 1) + b"a" + bytes([5]) + struct.pack("<I", 1) + b"\x80",
     DICT, 19),  # nested str not UTF-8
    (bytes([7]) + struct.pack("<II", 4, 0) + b"x", LIST, 9),            # bytes after the item
    (bytes([8]) + struct.pack("<II", 4, 0), LIST, 0),                   # dict where a list is declared
    (b"", DICT, 0),                                                      # empty blob
])
def test_nested_value_faults(blob, code, bad):
    """Malformed list and dict header values are refused at the faulty byte."""
    _fault(_nested_frame(blob, code), "value is malformed", _header_column_start(12) + bad)


def test_nested_values_that_are_valid_decode():
    """Deeply nested lists and dicts written by the encoder pass the validator."""
    value = [1, [2, [3, [4, {"k": [None, True, 1.5, "s", b"b"]}]]], {}]
    batch = fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"], headers=[{"deep": value}])
    assert codec.decode_frame(encode_frame_ref(batch))[0].headers == {"deep": value}


def test_not_a_buffer():
    """An object without the buffer protocol is refused as such."""
    with pytest.raises(fr.FrameError, match="bytes-like"):
        codec.decode_frame(12345)


def test_crc_is_over_everything_after_the_field():
    """The stored CRC is CRC-32C of bytes 8 to the end (checked against the bitwise reference)."""
    frame = codec.encode_frame(fr.MessageBatch.from_pylist(keys=[b"k"], values=[b"v"])).tobytes()
    assert struct.unpack_from("<I", frame, 4)[0] == crc32c_bitwise(frame[8:])


@given(st.binary(max_size=24))
def test_utf8_validator_agrees_with_python(raw):
    """The kernels' UTF-8 check accepts exactly what Python's strict decoder accepts, and
    points at the same first bad byte."""
    data = np.frombuffer(raw, np.uint8)
    got = int(frame_check.first_bad_utf8(data, 0, len(raw)))
    try:
        raw.decode("utf-8")
        assert got == -1
    except UnicodeDecodeError as exc:
        assert got == exc.start
