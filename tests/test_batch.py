"""MessageBatch, BinaryColumn and HeaderTable: construction, access, take, Arrow, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import fastroute as fr


def test_from_pylist_keeps_null_distinct_from_empty():
    """bytes, str (UTF-8) and None keys; a null key is not an empty key."""
    b = fr.MessageBatch.from_pylist(keys=[b"a.b", "c.d", None, b"", "é"], values=[b"x", b"y", b"z", None, b""])
    assert len(b) == 5
    assert b.keys.to_pylist() == [b"a.b", b"c.d", None, b"", "é".encode()]
    assert b.values.to_pylist() == [b"x", b"y", b"z", None, b""]
    assert b.keys.null_count == 1 and b.values.null_count == 1
    assert b[2].key is None and b[3].key == b""
    assert b.keys.offsets.dtype == np.int64 and b.keys.data.dtype == np.uint8


def test_keys_or_values_may_be_omitted_but_not_both():
    assert fr.MessageBatch.from_pylist(values=[b"v"])[0].key is None
    assert fr.MessageBatch.from_pylist(keys=[b"k"])[0].value is None
    with pytest.raises(fr.BatchError, match="keys or values"):
        fr.MessageBatch.from_pylist()


@pytest.mark.parametrize("bad,kind", [(5, "int"), (1.5, "float"), (object(), "object"), (["a"], "list")])
def test_bad_key_types_name_index_and_type(bad, kind):
    with pytest.raises(fr.BatchError, match=f"key 2: expected bytes, str or None, got {kind}") as exc:
        fr.MessageBatch.from_pylist(keys=[b"a", "b", bad])
    assert exc.value.index == 2


def test_unencodable_string_is_a_batch_error():
    with pytest.raises(fr.BatchError, match="key 1: string is not encodable as UTF-8"):
        fr.MessageBatch.from_pylist(keys=["ok", "\ud800"])


def test_length_mismatch_is_a_batch_error():
    with pytest.raises(fr.BatchError, match="same length"):
        fr.MessageBatch.from_pylist(keys=[b"a", b"b"], values=[b"x"])
    with pytest.raises(fr.BatchError, match="one per message"):
        fr.MessageBatch.from_pylist(keys=[b"a"], headers=[None, None])


def test_typed_headers_round_trip():
    """str, bytes, int, float, bool, None and nested dict/list header values come back as given."""
    headers = [
        {"s": "text", "b": b"\x00\xff", "i": -(2 ** 63), "f": 0.1, "t": True, "n": None,
         "l": [1, "a", b"b", [2.5, None], {"k": False}], "d": {"x": {"y": [1]}}},
        None,
        [("dup", 1), ("dup", 2)],
    ]
    b = fr.MessageBatch.from_pylist(keys=[b"a", b"b", b"c"], headers=headers)
    assert b[0].headers == headers[0]
    assert b[1].headers is None
    assert b[2].headers == {"dup": 2}  # a repeated name keeps its last value as a dict
    assert b.headers.row_pairs(2) == [("dup", 1), ("dup", 2)]
    assert isinstance(b[0].headers["t"], bool) and isinstance(b[0].headers["i"], int)


@pytest.mark.parametrize("value,msg", [(2 ** 63, "64 bits"), ({1, 2}, "got set"), ([object()], "got object")])
def test_bad_header_values(value, msg):
    with pytest.raises(fr.BatchError, match=msg) as exc:
        fr.MessageBatch.from_pylist(keys=[b"a", b"b"], headers=[None, {"h": value}])
    assert exc.value.index == 1


def test_from_buffers_is_zero_copy_and_validated():
    offsets = np.array([0, 1, 3, 3], np.int64)
    data = np.frombuffer(b"abc", np.uint8)
    b = fr.MessageBatch.from_buffers(offsets, data, key_validity=np.array([True, True, False]))
    assert np.shares_memory(b.keys.data, data) and np.shares_memory(b.keys.offsets, offsets)
    assert b.keys.to_pylist() == [b"a", b"bc", None]
    with pytest.raises(fr.BatchError, match="must not decrease"):
        fr.MessageBatch.from_buffers(np.array([0, 2, 1]), data)
    with pytest.raises(fr.BatchError, match="within data"):
        fr.MessageBatch.from_buffers(np.array([0, 5]), data)


def test_take_gathers_in_order_with_repeats():
    b = fr.MessageBatch.from_pylist(keys=[b"a", None, b"ccc"], values=[b"1", b"22", b""],
                                    headers=[{"x": 1}, None, {"y": "z"}], partition=[0, 1, 2],
                                    timestamp=[10, 20, 30])
    t = b.take([2, 0, 2, -2])
    assert [m.key for m in t] == [b"ccc", b"a", b"ccc", None]
    assert [m.headers for m in t] == [{"y": "z"}, {"x": 1}, {"y": "z"}, None]
    assert t.partition.tolist() == [2, 0, 2, 1] and t.timestamp.tolist() == [30, 10, 30, 20]
    assert b.take(np.array([True, False, True])).equals(b.take([0, 2]))
    with pytest.raises(IndexError):
        b.take([3])


@given(st.lists(st.one_of(st.none(), st.binary(max_size=12), st.text(max_size=6)), max_size=40),
       st.data())
def test_take_matches_python_indexing(keys, data):
    b = fr.MessageBatch.from_pylist(keys=keys)
    idx = data.draw(st.lists(st.integers(0, max(len(keys) - 1, 0)), max_size=60)) if keys else []
    expected = [None if keys[i] is None else (keys[i].encode() if isinstance(keys[i], str) else keys[i])
                for i in idx]
    assert b.take(idx).keys.to_pylist() == expected


def test_arrow_round_trip_shares_buffers():
    pa = pytest.importorskip("pyarrow", reason="pyarrow (the arrow extra) is not installed")
    b = fr.MessageBatch.from_pylist(keys=[b"a", None, b""], values=[b"x", b"yy", None], offset=[5, 6, 7])
    table = b.to_arrow()
    assert table.column("key").to_pylist() == [b"a", None, b""]
    back = fr.MessageBatch.from_arrow(table)
    assert back.equals(fr.MessageBatch(b.keys, b.values, offset=[5, 6, 7]))
    assert np.shares_memory(back.keys.data, b.keys.data) or b.keys.data.size == 0
    strings = pa.array(["p", None, "qé"])
    assert fr.MessageBatch.from_arrow(strings).keys.to_pylist() == [b"p", None, "qé".encode()]
    sliced = pa.array([b"0", b"1", None, b"3"]).slice(1, 3)
    assert fr.MessageBatch.from_arrow(sliced).keys.to_pylist() == [b"1", None, b"3"]
    with pytest.raises(fr.BatchError, match="binary or string"):
        fr.MessageBatch.from_arrow(pa.array([1, 2]))


def test_index_errors_and_repr():
    b = fr.MessageBatch.from_pylist(keys=[b"a"])
    with pytest.raises(IndexError):
        b[1]
    assert b[-1].key == b"a"
    assert "MessageBatch(n=1" in repr(b)


def test_routes_views():
    """Routes: lists, groups (stable), counts, unroutable, and validation of raw arrays."""
    r = fr.Routes(np.array([0, 2, 2, 3]), np.array([0, 1, 1], np.int32), ["a", "b"])
    assert r.to_lists() == [["a", "b"], [], ["b"]]
    g = r.groups()
    assert g["a"].tolist() == [0] and g["b"].tolist() == [0, 2]
    assert r.counts() == {"a": 1, "b": 2}
    assert r.unroutable().tolist() == [1]
    assert r[2] == ["b"] and len(r) == 3
    with pytest.raises(fr.BatchError):
        fr.Routes(np.array([0, 1]), np.array([5], np.int32), ["a"])
