"""Kafka RecordBatch v2: SEMANTICS.md §12 vectors, kafka-python both ways, hostile input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

import fastroute as fr
from fastroute import codec
from fastroute.kernels import recordbatch as R
from reference_codec import (INT64, batches, crc32c_bitwise, decode_record_batch_ref,
                             encode_record_batch_ref, zigzag_varint)

H = bytes.fromhex

# SEMANTICS.md §12, captured from a Kafka 0.11 broker (kafka-python's test_records.py).
BATCH1 = H("0000000000000000" "0000003b" "00000001" "02" "0318a270" "0000" "00000000"
           "0000015dff7b063c" "0000015dff7b063c" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
           "12" "00" "00" "00" "01" "06" "313233" "00")
BATCH4 = H("0000000000000000" "00000045" "00000000" "02" "5cd8ef52" "0000" "00000000"
           "0000016585b6f3c1" "0000016585b6f3c1" "ffffffffffffffff" "ffff" "ffffffff" "00000001"
           "26" "00" "00" "00" "01" "06" "686472" "02" "08" "686b6579" "08" "6876616c")
# SEMANTICS.md §12, the constructed batch (its CRC matches java.util.zip.CRC32C).
CONSTRUCTED = H("0000000000000000" "0000004b" "00000000" "02" "c0021d3b" "0000" "00000001"
                "0000018bcfe56800" "0000018bcfe56805" "ffffffffffffffff" "ffff" "ffffffff" "00000002"
                "24" "00" "00" "00" "06" "6b6579" "0a" "76616c7565" "02" "02" "68" "02" "76"
                "0c" "00" "0a" "02" "01" "00" "00")


def _records(batch):
    """(offset, timestamp, key, value, headers as (str, bytes|None) pairs) per message."""
    h = batch.headers
    return [(m.offset, m.timestamp, m.key, m.value, [] if h is None else h.row_pairs(i))
            for i, m in enumerate(batch)]


def _kafka_headers(batch, i):
    """The Kafka headers a message's HeaderTable row becomes: str values as UTF-8 bytes."""
    if batch.headers is None:
        return []
    return [(name, v.encode("utf-8") if isinstance(v, str) else v) for name, v in batch.headers.row_pairs(i)]


# --------------------------------------------------------------------------- vectors

def test_decodes_broker_batch1():
    """The broker's batch1: one record, null key, value "123", leaderEpoch 1."""
    batch = codec.decode_record_batch(BATCH1)
    assert _records(batch) == [(0, 1503229838908, None, b"123", [])]
    header = codec.record_batch_header(BATCH1)
    assert (header.partition_leader_epoch, header.crc, header.producer_id) == (1, 0x0318A270, -1)


def test_decodes_broker_batch4_with_header():
    """The broker's batch4: value "hdr" with the header hkey=hval."""
    batch = codec.decode_record_batch(BATCH4)
    assert _records(batch) == [(0, 1535546684353, None, b"hdr", [("hkey", b"hval")])]


def test_constructed_batch_both_ways():
    """fastroute writes the constructed vector byte for byte and reads it back."""
    batch = fr.MessageBatch.from_pylist(keys=[b"key", None], values=[b"value", b""],
                                        headers=[{"h": b"v"}, None],
                                        timestamp=[1700000000000, 1700000000005])
    assert codec.encode_record_batch(batch, partition_leader_epoch=0) == CONSTRUCTED
    assert _records(codec.decode_record_batch(CONSTRUCTED)) == [
        (0, 1700000000000, b"key", b"value", [("h", b"v")]), (1, 1700000000005, None, b"", [])]


VARINTS = [(0, "00"), (-1, "01"), (1, "02"), (63, "7e"), (-64, "7f"), (64, "8001"), (300, "d804"),
           ((1 << 31) - 1, "feffffff0f"), (-(1 << 31), "ffffffff0f")]


@pytest.mark.parametrize("value, hexed", VARINTS)
def test_varint_vectors(value, hexed):
    """The §12 varint vectors, written and read by the kernels."""
    out = np.zeros(10, np.uint8)
    end = R.write_varint(out, 0, np.uint64(R.zigzag32(value)))
    assert out[:end].tobytes().hex() == hexed
    assert R.read_zigzag(out, 0, end, 5) == (value, end, R.OK)


def test_varlong_vector():
    """varlong −2^63 is ffffffffffffffffff01, and reads back through the 10-byte reader."""
    out = np.zeros(10, np.uint8)
    end = R.write_varint(out, 0, np.uint64(R.zigzag64(-(1 << 63))))
    assert out[:end].tobytes().hex() == "ffffffffffffffffff01"
    assert R.read_zigzag(out, 0, end, 10) == (-(1 << 63), end, R.OK)


@given(INT64)
def test_varlong_matches_reference(value):
    """Every 64-bit value encodes as the reference zigzag varint and reads back."""
    out = np.zeros(10, np.uint8)
    end = R.write_varint(out, 0, np.uint64(R.zigzag64(value)))
    assert out[:end].tobytes() == zigzag_varint(value)
    assert R.read_zigzag(out, 0, end, 10) == (value, end, R.OK)


@pytest.mark.parametrize("raw, max_bytes, code", [
    ("ffffffff1f", 5, R.E_VARINT_LONG),  # 5th byte carries bits beyond 32
    ("ffffffff8f", 5, R.E_VARINT_LONG),  # 5th byte wants a 6th
    ("ffffffffffffffffff02", 10, R.E_VARINT_LONG),
    ("8080", 5, R.E_VARINT_CUT),
])
def test_varint_faults(raw, max_bytes, code):
    """Varints longer than Kafka reads, or cut off by the end, are faults."""
    buf = np.frombuffer(H(raw), np.uint8)
    assert R.read_zigzag(buf, 0, buf.shape[0], max_bytes)[2] == code


# --------------------------------------------------------------------------- kafka-python

def _kafka_python_bytes(batch, base_timestamp):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 30)
    for i, m in enumerate(batch):
        ts = m.timestamp if m.timestamp is not None else base_timestamp
        assert builder.append(i, ts, m.key, m.value, _kafka_headers(batch, i)) is not None
    return bytes(builder.build())


@given(batches(min_size=1, kafka=True, metadata=False), st.booleans(),
       st.integers(0, 1 << 45), st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1))
def test_same_bytes_as_kafka_python(batch, with_ts, base_ts, stamps):
    """fastroute writes exactly what kafka-python's builder writes for the same records."""
    if with_ts:
        ts = [base_ts + stamps[i % len(stamps)] for i in range(len(batch))]
        batch = fr.MessageBatch(batch.keys, batch.values, batch.headers, timestamp=ts)
    ours = codec.encode_record_batch(batch, base_timestamp=None if with_ts else base_ts,
                                     partition_leader_epoch=0)
    assert ours == _kafka_python_bytes(batch, base_ts)


@given(batches(min_size=1, kafka=True, metadata=False), st.integers(0, 1 << 40),
       st.integers(-(1 << 62), 1 << 62))
def test_kafka_python_reads_ours(batch, base_ts, base_offset):
    """kafka-python validates the CRC of fastroute's batches and reads every record back."""
    raw = codec.encode_record_batch(batch, base_offset=base_offset, base_timestamp=base_ts)
    theirs = DefaultRecordBatch(bytearray(raw))
    assert theirs.validate_crc()
    got = [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in theirs]
    want = [(base_offset + i, base_ts, m.key, m.value, _kafka_headers(batch, i)) for i, m in enumerate(batch)]
    assert got == want


@given(batches(min_size=1, kafka=True, metadata=False), st.integers(0, 1 << 40))
def test_we_read_kafka_python(batch, base_ts):
    """fastroute reads kafka-python's batches: keys, values, headers, offsets, timestamps."""
    raw = _kafka_python_bytes(batch, base_ts)
    back = codec.decode_record_batch(raw)
    want = [(i, base_ts, m.key, m.value, _kafka_headers(batch, i)) for i, m in enumerate(batch)]
    assert _records(back) == want
    assert decode_record_batch_ref(raw) == want


@given(batches(min_size=1, kafka=True, metadata=False),
       st.one_of(st.none(), st.lists(st.integers(-(1 << 61), 1 << 61), min_size=1)))
def test_round_trip(batch, stamps):
    """decode(encode(b)) gives b's keys, values, headers (as bytes) and timestamps."""
    if stamps is not None:
        ts = [stamps[i % len(stamps)] for i in range(len(batch))]
        batch = fr.MessageBatch(batch.keys, batch.values, batch.headers, timestamp=ts)
    raw = codec.encode_record_batch(batch, base_offset=10, base_timestamp=None if stamps else 5)
    back = codec.decode_record_batch(raw, partition=3)
    assert back.keys.equals(batch.keys) and back.values.equals(batch.values)
    assert back.offset.tolist() == list(range(10, 10 + len(batch)))
    want_ts = batch.timestamp.tolist() if stamps is not None else [5] * len(batch)
    assert back.timestamp.tolist() == want_ts
    assert back.partition.tolist() == [3] * len(batch)
    assert [(back.headers.row_pairs(i) if back.headers else []) for i in range(len(batch))] == \
        [_kafka_headers(batch, i) for i in range(len(batch))]


def test_matches_reference_encoder():
    """Headers, null keys and values, producer fields: the reference encoder agrees."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", None, b""], values=[None, b"x" * 300, b""],
                                        headers=[[("k", "text"), ("k", None)], None, {"é": b"\x00"}],
                                        timestamp=[100, 50, 400])
    ours = codec.encode_record_batch(batch, base_offset=7, producer_id=42, producer_epoch=3,
                                     base_sequence=9)
    records = [(m.key, m.value, _kafka_headers(batch, i), m.timestamp) for i, m in enumerate(batch)]
    assert ours == encode_record_batch_ref(records, base_offset=7, producer_id=42, producer_epoch=3,
                                           base_sequence=9)
    header = codec.record_batch_header(ours)
    assert (header.base_timestamp, header.max_timestamp, header.last_offset_delta) == (100, 400, 2)


def test_large_batch_round_trips():
    """Thousands of records with large values go through the parallel kernels intact."""
    rng = np.random.default_rng(5)
    n = 6000
    values = [rng.integers(0, 256, int(s), dtype=np.uint8).tobytes() for s in rng.integers(0, 2000, n)]
    values[17] = b"v" * 300_000
    batch = fr.MessageBatch.from_pylist(keys=[b"key-%d" % i for i in range(n)], values=values,
                                        headers=[{"i": b"%d" % i} if i % 2 else None for i in range(n)])
    raw = codec.encode_record_batch(batch, base_timestamp=1)
    assert DefaultRecordBatch(bytearray(raw)).validate_crc()
    back = codec.decode_record_batch(raw)
    assert back.keys.equals(batch.keys) and back.values.equals(batch.values)
    assert back.headers.equals(batch.headers)


def test_header_values_kafka_cannot_carry():
    """An int, float, bool, list or dict header names the message and the header."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"x", b"y"],
                                        headers=[{"ok": "s"}, {"fine": b"b", "count": 3}])
    with pytest.raises(fr.BatchError, match="message 1: header 'count' holds a int") as err:
        codec.encode_record_batch(batch)
    assert err.value.index == 1


def test_encode_argument_checks():
    """Empty batches and out-of-range header fields are refused with the reason."""
    with pytest.raises(fr.BatchError, match="at least one record"):
        codec.encode_record_batch(fr.MessageBatch.from_pylist(keys=[], values=[]))
    one = fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"])
    with pytest.raises(ValueError, match="producer_epoch must lie in"):
        codec.encode_record_batch(one, producer_epoch=1 << 15)
    with pytest.raises(TypeError, match="base_offset must be an int"):
        codec.encode_record_batch(one, base_offset="0")
    far = fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"], timestamp=[(1 << 63) - 1])
    with pytest.raises(fr.BatchError, match="too far from base_timestamp"):
        codec.encode_record_batch(far, base_timestamp=-10)


def test_default_timestamp_is_now():
    """Without timestamps, records are stamped with the current time in milliseconds."""
    import time

    before = time.time_ns() // 1_000_000
    raw = codec.encode_record_batch(fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"]))
    stamp = int(codec.decode_record_batch(raw).timestamp[0])
    assert before <= stamp <= time.time_ns() // 1_000_000


def test_transactional_flag_and_header_fields():
    """Producer state and the transactional bit land in the header (CRC-checked by kafka-python)."""
    raw = codec.encode_record_batch(fr.MessageBatch.from_pylist(keys=[b"a"], values=[b"b"]),
                                    producer_id=77, producer_epoch=2, base_sequence=1000,
                                    transactional=True, base_timestamp=1)
    header = codec.record_batch_header(raw)
    assert header.transactional and not header.control and header.compression == "none"
    theirs = DefaultRecordBatch(bytearray(raw))
    assert (theirs.producer_id, theirs.producer_epoch, theirs.base_sequence,
            theirs.is_transactional) == (77, 2, 1000, True)


# --------------------------------------------------------------------------- hostile input

def _recrc(raw: bytes) -> bytes:
    return raw[:17] + struct.pack(">I", crc32c_bitwise(raw[21:])) + raw[21:]


def _fault(raw, match, offset, **kw):
    with pytest.raises(fr.FrameError, match=match) as err:
        codec.decode_record_batch(raw, **kw)
    assert err.value.offset == offset
    return err.value


def test_batch_level_faults():
    """Short buffers, wrong lengths, magic, CRC and counts are refused at their field."""
    _fault(CONSTRUCTED[:60], "truncated RecordBatch", 60)
    _fault(CONSTRUCTED[:-1], "batchLength 75", 8)
    _fault(CONSTRUCTED + b"\0", "buffer holds 88", 8)
    _fault(CONSTRUCTED[:16] + b"\x01" + CONSTRUCTED[17:], "magic 1, expected 2", 16)
    _fault(CONSTRUCTED[:16] + b"\x03" + CONSTRUCTED[17:], "magic 3", 16)
    corrupt = CONSTRUCTED[:-1] + b"\x01"
    _fault(corrupt, "CRC-32C mismatch", 17)
    count = _recrc(CONSTRUCTED[:57] + struct.pack(">i", 4) + CONSTRUCTED[61:])
    _fault(count, "recordsCount 4 cannot fit", 57)
    _fault(_recrc(CONSTRUCTED[:57] + struct.pack(">i", -1) + CONSTRUCTED[61:]), "recordsCount -1", 57)


@pytest.mark.parametrize("codec_id, name", [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd"),
                                            (6, "unknown codec 6")])
def test_compressed_batches_name_their_codec(codec_id, name):
    """A compressed batch raises FrameError naming the codec."""
    raw = _recrc(CONSTRUCTED[:21] + struct.pack(">h", codec_id) + CONSTRUCTED[23:])
    _fault(raw, f"compressed with {name}", 21)


def test_gzip_batch_from_kafka_python():
    """A real gzip batch written by kafka-python is refused as gzip."""
    builder = DefaultRecordBatchBuilder(2, 1, False, -1, -1, -1, 1 << 20)
    for i in range(50):
        builder.append(i, 1, None, b"abc" * 50, [])
    _fault(bytes(builder.build()), "compressed with gzip", 21)


def _with_records(body: bytes, count: int) -> bytes:
    head = CONSTRUCTED[:61]
    head = head[:8] + struct.pack(">i", 49 + len(body)) + head[12:57] + struct.pack(">i", count)
    return _recrc(head + body)


@pytest.mark.parametrize("body, count, match, offset", [
    (H("01") + H("00" * 6), 1, "negative record length", 61),
    (H("7e") + H("00" * 6), 1, "record length runs past the end", 61),
    (H("0c 00 00 00 01 01 00") + H("00"), 1, "left over after the last record", 68),
    (H("0e 00 00 00 08 6b 01 00"), 1, "key length runs past", 65),
    (H("0e 00 00 00 01 08 6b 00"), 1, "value length runs past", 66),
    (H("0c 00 00 00 01 01 01"), 1, "header count is negative", 67),
    (H("0c 00 00 00 01 01 02"), 1, "header count is negative or larger", 67),
    (H("12 00 00 00 01 01 02 01 61 01"), 1, "header key length is negative", 68),
    (H("12 00 00 00 01 01 02 06 61 01"), 1, "header key runs past", 68),
    (H("12 00 00 00 01 01 02 02 61 0a"), 1, "header value runs past", 70),
    (H("0e 00 00 00 01 01 00 00"), 1, "fields end before its length", 68),
    (H("0e 00 00 00 01 04 61 62"), 1, "ends inside a varint", 69),
    (H("18 00") + H("ff" * 11), 1, "varint is longer", 72),
    (H("ffffffff7f 00 00"), 1, "varint is longer", 65),
])
def test_record_faults(body, count, match, offset):
    """Each malformed record is named, with the offset of the faulty field."""
    _fault(_with_records(body, count), match, offset)


def test_header_key_must_be_utf8():
    """A header key that is not UTF-8 is refused at its first bad byte."""
    raw = _with_records(H("14 00 00 00 01 01 02 04 61 ff 01"), 1)
    _fault(raw, "is not UTF-8", 70)


def test_log_append_time_uses_max_timestamp():
    """With the LOG_APPEND_TIME bit, every record's timestamp is maxTimestamp."""
    raw = _recrc(CONSTRUCTED[:21] + struct.pack(">h", 8) + CONSTRUCTED[23:])
    assert codec.decode_record_batch(raw).timestamp.tolist() == [1700000000005] * 2
    assert codec.record_batch_header(raw).log_append_time


def test_control_batch_decodes_and_is_flagged():
    """A transaction marker batch decodes, and its header says it is a control batch."""
    marker = H("0000") + H("0001")  # version 0, COMMIT
    body = H("1c 00 00 00") + bytes([0x08]) + marker + H("08 00000000") + H("00")
    plain = _with_records(body, 1)
    raw = _recrc(plain[:21] + struct.pack(">h", 48) + plain[23:])
    assert codec.record_batch_header(raw).control
    assert codec.decode_record_batch(raw)[0].key == marker


def test_split_record_batches():
    """A record set splits into its batches; a partial batch at the end is left out."""
    stream = BATCH1 + BATCH4 + CONSTRUCTED + CONSTRUCTED[:30]
    parts = codec.split_record_batches(stream)
    assert [bytes(p) for p in parts] == [BATCH1, BATCH4, CONSTRUCTED]
    with pytest.raises(fr.FrameError, match="too small") as err:
        codec.split_record_batches(BATCH1[:8] + struct.pack(">i", 10) + BATCH1[12:])
    assert err.value.offset == 8


def test_empty_batch_decodes():
    """A batch of zero records (left by compaction) decodes to an empty batch."""
    raw = _with_records(b"", 0)
    assert len(codec.decode_record_batch(raw)) == 0
