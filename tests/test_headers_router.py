"""HeadersRouter: RabbitMQ's headers exchange (SEMANTICS.md §3) checked against the rules
as written there and against the slow reference in ``tests/reference.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
import reference as ref
from fastroute.kernels._config import PARALLEL_MIN_ITEMS

NAN = float("nan")
INF = float("inf")

# (binding arguments, message headers, matches under compat="3.13", matches under "3.12").
# Expectations are written from SEMANTICS.md §3, not computed.
VECTORS = [
    # x-match modes; no arguments, or only x-match=all, matches every message
    ({}, None, True, True),
    ({}, {"a": 1}, True, True),
    ({"x-match": "all"}, None, True, True),
    ({"x-match": "all-with-x"}, None, True, True),
    ({"x-match": "any"}, {"a": 1}, False, False),
    ({"x-match": "any"}, None, False, False),
    ({"x-match": "any-with-x"}, {"a": 1}, False, False),
    ({"a": 1, "b": 2}, {"a": 1, "b": 2}, True, True),
    ({"a": 1, "b": 2}, {"a": 1}, False, False),
    ({"x-match": "all", "a": 1, "b": 2}, {"a": 1, "b": 3}, False, False),
    ({"x-match": "any", "a": 1, "b": 2}, {"a": 1, "b": 3}, True, True),
    ({"x-match": "any", "a": 1, "b": 2}, {"c": 1}, False, False),
    ({"x-match": "any", "a": 1, "b": 2}, None, False, False),
    ({"a": 1}, None, False, False),
    ({"a": 1}, {}, False, False),
    # x- arguments: ignored under all/any, compared under *-with-x
    ({"x-match": "all", "x-foo": "bar"}, None, True, True),
    ({"x-match": "all", "x-foo": "bar"}, {"x-foo": "baz"}, True, True),
    ({"x-foo": "bar", "a": 1}, {"a": 1}, True, True),
    ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False, False),
    ({"x-match": "any", "x-foo": "bar", "a": 1}, {"x-foo": "bar", "a": 1}, True, True),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True, True),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "baz"}, False, False),
    ({"x-match": "all-with-x", "x-foo": "bar"}, None, False, False),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "bar"}, True, True),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"a": 2}, False, False),
    ({"x-match": "all-with-x", "x-p": None}, {"x-p": 0}, True, True),
    ({"x-match": "all-with-x"}, {"x-match": "any"}, True, True),
    ({"a": 1}, {"x-a": 5, "a": 1}, True, True),  # a message's x- headers are ordinary headers
    # a void (None) argument is a presence test
    ({"a": None}, {"a": "anything"}, True, True),
    ({"a": None}, {"a": None}, True, True),
    ({"a": None}, {"b": 1}, False, False),
    ({"x-match": "any", "a": None, "b": 1}, {"a": 0}, True, True),
    ({"a": None, "b": 1}, {"a": False, "b": 1}, True, True),
    # a None header is present but equals nothing else
    ({"a": 0}, {"a": None}, False, False),
    ({"a": ""}, {"a": None}, False, False),
    ({"a": False}, {"a": None}, False, False),
    ({"a": []}, {"a": None}, False, False),
    # integers and floats: typed from 3.13, numeric up to 3.12
    ({"a": 1}, {"a": 1}, True, True),
    ({"a": -1}, {"a": -1}, True, True),
    ({"a": 2**63 - 1}, {"a": 2**63 - 1}, True, True),
    ({"a": 1}, {"a": 1.0}, False, True),
    ({"a": 1.0}, {"a": 1}, False, True),
    ({"a": 1.0}, {"a": 1.0}, True, True),
    ({"a": 1}, {"a": 1.5}, False, False),
    ({"a": 1.5}, {"a": 1}, False, False),
    ({"a": 0.1}, {"a": 0.1}, True, True),
    ({"a": 2**53}, {"a": float(2**53)}, False, True),
    ({"a": 2**53 + 1}, {"a": float(2**53)}, False, False),  # exact, not through a double
    ({"a": -(2**63)}, {"a": -(2.0**63)}, False, True),
    ({"a": 2**63 - 1}, {"a": 2.0**63}, False, False),
    ({"a": NAN}, {"a": NAN}, False, False),
    ({"x-match": "any", "a": NAN, "b": 1}, {"a": NAN, "b": 1}, True, True),
    ({"a": INF}, {"a": INF}, True, True),
    ({"a": INF}, {"a": -INF}, False, False),
    ({"a": 0.0}, {"a": -0.0}, True, True),
    # bool never equals a number (Erlang atoms)
    ({"a": True}, {"a": 1}, False, False),
    ({"a": 1}, {"a": True}, False, False),
    ({"a": False}, {"a": 0}, False, False),
    ({"a": 0}, {"a": False}, False, False),
    ({"a": True}, {"a": 1.0}, False, False),
    ({"a": True}, {"a": True}, True, True),
    ({"a": False}, {"a": False}, True, True),
    ({"a": True}, {"a": False}, False, False),
    # str equals bytes with the same UTF-8; a string never equals a number
    ({"a": "abc"}, {"a": b"abc"}, True, True),
    ({"a": b"abc"}, {"a": "abc"}, True, True),
    ({"a": ""}, {"a": b""}, True, True),
    ({"a": "ключ"}, {"a": "ключ".encode()}, True, True),
    ({"a": "abc"}, {"a": "abd"}, False, False),
    ({"a": "ab"}, {"a": "abc"}, False, False),
    ({"a": "1"}, {"a": 1}, False, False),
    ({"a": 1}, {"a": "1"}, False, False),
    # nested arrays and tables compare exactly (inner types and order) in both modes
    ({"a": [1, "x"]}, {"a": [1, "x"]}, True, True),
    ({"a": [1]}, {"a": [1.0]}, False, False),
    ({"a": ["x"]}, {"a": [b"x"]}, False, False),
    ({"a": [True]}, {"a": [1]}, False, False),
    ({"a": (1, 2)}, {"a": [1, 2]}, True, True),
    ({"a": {"k": 1, "j": 2}}, {"a": {"j": 2, "k": 1}}, False, False),
    ({"a": {"k": [1, {"z": None}]}}, {"a": {"k": [1, {"z": None}]}}, True, True),
    ({"a": [1]}, {"a": 1}, False, False),
    ({"a": []}, {"a": {}}, False, False),
    ({"a": []}, {"a": []}, True, True),
    ({"a": [1]}, {"a": [1, 2]}, False, False),
    ({"a": [1.5, "x"]}, {"a": [1.5, "x"]}, True, True),
    ({"a": [0.0, "x"]}, {"a": [-0.0, "x"]}, True, True),
    ({"a": [NAN]}, {"a": [NAN]}, False, False),
    ({"a": {"f": 2.5}}, {"a": {"f": 2.5}}, True, True),
    # the same rules for an argument checked after another one of its all binding held
    # (here "b", interned first, is the one looked up)
    ({"b": "x", "a": 1}, {"a": 1.0, "b": "x"}, False, True),
    ({"b": "x", "a": 1.0}, {"a": 1, "b": "x"}, False, True),
    ({"b": "x", "a": 1.5}, {"a": 1.5, "b": "x"}, True, True),
    ({"b": "x", "a": 2**53 + 1}, {"a": float(2**53), "b": "x"}, False, False),
    ({"b": "x", "a": NAN}, {"a": NAN, "b": "x"}, False, False),
    ({"b": "x", "a": True}, {"a": 1, "b": "x"}, False, False),
    ({"b": "x", "a": 1}, {"a": True, "b": "x"}, False, False),
    ({"b": "x", "a": False}, {"a": False, "b": "x"}, True, True),
    ({"b": "x", "a": "abc"}, {"a": b"abc", "b": "x"}, True, True),
    ({"b": "x", "a": "abc"}, {"a": "abd", "b": "x"}, False, False),
    ({"b": "x", "a": 0}, {"a": None, "b": "x"}, False, False),
    ({"b": "x", "a": None}, {"a": None, "b": "x"}, True, True),
    ({"b": "x", "a": None}, {"b": "x"}, False, False),
    ({"b": "x", "a": [0.0, 1]}, {"a": [-0.0, 1], "b": "x"}, True, True),
    ({"b": "x", "a": [1]}, {"a": [1.0], "b": "x"}, False, False),
    ({"b": "x", "a": {"k": "v"}}, {"a": {"k": b"v"}, "b": "x"}, False, False),
    ({"b": "x", "a": {"k": "v"}}, {"a": {"k": "v"}, "b": "x"}, True, True),
    # a repeated header name keeps its last value
    ({"a": "y"}, [("a", "x"), ("a", "y")], True, True),
    ({"a": "x"}, [("a", "x"), ("a", "y")], False, False),
    ({"a": None}, [("a", "x"), ("a", None)], True, True),
    ({"x-match": "any", "a": "x", "b": 1}, [("a", "x"), ("b", 2), ("a", "z")], False, False),
    # names compare as exact bytes
    ({"Type": "pdf"}, {"type": "pdf"}, False, False),
    ({"ключ": 1}, {"ключ": 1}, True, True),
]

COMPATS = ("3.13", "3.12")


def vector_id(case) -> str:
    args, headers = case[0], case[1]
    return f"{args!r}~{headers!r}"


def one_message(headers) -> fr.MessageBatch:
    return fr.MessageBatch.from_pylist(values=[b""], headers=[headers])


@pytest.mark.parametrize("compat", COMPATS)
@pytest.mark.parametrize("case", VECTORS, ids=[vector_id(c) for c in VECTORS])
def test_semantics_vector(case, compat):
    """Each §3 rule decides one binding against one message as the spec says, and the
    reference agrees."""
    args, headers, want_313, want_312 = case
    want = want_313 if compat == "3.13" else want_312
    assert ref.headers_match(args, headers, compat) is want
    routes = fr.HeadersRouter([(args, "q")], compat=compat).route(one_message(headers))
    assert routes.to_lists() == [["q"] if want else []]


@pytest.mark.parametrize("compat", COMPATS)
def test_all_vectors_in_one_router(compat):
    """Every vector's binding in one router, every vector's headers in one batch (large enough
    for the parallel driver): each message gets exactly the reference's destinations."""
    bindings = [(args, f"b{k}") for k, (args, *_rest) in enumerate(VECTORS)]
    rows = [headers for _, headers, *_rest in VECTORS]
    reps = PARALLEL_MIN_ITEMS // len(rows) + 2
    batch = fr.MessageBatch.from_pylist(values=[b""] * (len(rows) * reps), headers=rows * reps)
    got = fr.HeadersRouter(bindings, compat=compat).route(batch).to_lists()
    for i in range(len(rows) * reps):
        want = ref.headers_route(bindings, rows[i % len(rows)], compat)
        assert set(got[i]) == want and len(got[i]) == len(want), (i, rows[i % len(rows)])


def test_bytes_argument_name_is_its_utf8_text():
    """A binding argument named by bytes matches the header with that UTF-8 name."""
    router = fr.HeadersRouter([({"ключ".encode(): 1}, "q")])
    assert router.route(one_message({"ключ": 1})).to_lists() == [["q"]]


def test_messages_without_headers():
    """With no headers (None, an empty table, or a batch without a header table), only
    bindings that need nothing match."""
    bindings = [({}, "all"), ({"x-match": "all", "x-k": 1}, "all_x_ignored"),
                ({"x-match": "any"}, "any_empty"), ({"a": None}, "needs_a"),
                ({"x-match": "all-with-x", "x-k": 1}, "needs_x_k")]
    router = fr.HeadersRouter(bindings)
    expected = [["all", "all_x_ignored"]] * 3
    assert router.route(fr.MessageBatch.from_pylist(values=[b""] * 3, headers=[None, {}, []])).to_lists() == expected
    assert router.route(fr.MessageBatch.from_pylist(values=[b""] * 3)).to_lists() == expected
    assert router.route([b"k", None, "x"]).to_lists() == expected


def test_destination_bound_twice_receives_one_copy():
    """A destination reached by several bindings gets the message once; ids ascend."""
    router = fr.HeadersRouter([({"a": 1}, "q2"), ({"x-match": "any", "a": 1, "b": 2}, "q1"),
                               ({"a": None}, "q2"), ({}, "q3"), ({"a": 1}, "q1")])
    assert router.names == ["q2", "q1", "q3"]
    routes = router.route(fr.MessageBatch.from_pylist(values=[b""] * 3, headers=[{"a": 1}, {"b": 2}, None]))
    assert routes.to_lists() == [["q2", "q1", "q3"], ["q1", "q3"], ["q3"]]
    assert routes.destinations.tolist() == [0, 1, 2, 1, 2, 2]


def test_many_destinations_per_message_are_sorted_and_unique():
    """A message reaching more destinations than the small-sort threshold still gets its ids
    ascending and unique, mixing always-matching and matched bindings."""
    bindings = []
    for d in range(80):
        bindings.append(({"a": None} if d % 3 else {}, f"q{(d * 37) % 60}"))
    router = fr.HeadersRouter(bindings)
    routes = router.route(fr.MessageBatch.from_pylist(values=[b""] * 2, headers=[{"a": 1}, None]))
    for i, headers in enumerate([{"a": 1}, None]):
        ids = routes.ids(i)
        assert np.all(np.diff(ids) > 0)
        assert set(routes[i]) == ref.headers_route(bindings, headers)


@pytest.mark.parametrize("n_dest, hits", [(30, 5), (200, 40), (6000, 150), (6000, 12), (20000, 40)])
def test_destination_order_paths(n_dest, hits):
    """Few, dense and sparse destination sets per message (the three ways ids are put in
    order) all come out ascending and unique, and leave nothing behind for the next message."""
    rng = np.random.default_rng(n_dest + hits)
    bindings = [({"k": int(d % 7)}, f"d{d}") for d in range(n_dest)]
    picked = rng.choice(n_dest, hits, replace=False)
    bindings += [({"x-match": "any", "sel": 1, "k": -1}, f"d{d}") for d in picked]
    bindings += [({}, f"d{d}") for d in rng.choice(n_dest, 3, replace=False)]
    rows = [{"sel": 1}, {"k": 3}, {"sel": 1, "k": 2}, None, {"sel": 0}] * 3
    router = fr.HeadersRouter(bindings)
    routes = router.route(fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows))
    for i, row in enumerate(rows):
        assert np.all(np.diff(routes.ids(i)) > 0)
        assert set(routes[i]) == ref.headers_route(bindings, row)


def test_empty_batch():
    """An empty batch gives empty routes that still name the router's destinations."""
    router = fr.HeadersRouter([({"a": 1}, "q1"), ({}, "q2")])
    for batch in (fr.MessageBatch.from_pylist(values=[], headers=[]), fr.MessageBatch.from_pylist(values=[]), []):
        routes = router.route(batch)
        assert len(routes) == 0 and routes.destinations.size == 0
        assert routes.offsets.tolist() == [0]
        assert routes.names == ["q1", "q2"]


def test_no_bindings():
    """A router without bindings sends every message nowhere."""
    router = fr.HeadersRouter([])
    routes = router.route(one_message({"a": 1}))
    assert routes.to_lists() == [[]] and routes.names == []


def test_header_names_unknown_to_the_router_and_id_order():
    """Header tables name their own ids; names no binding uses are skipped, and the same
    headers interned in another order route the same way."""
    router = fr.HeadersRouter([({"b": 2}, "q1"), ({"x-match": "any", "a": "x"}, "q2")])
    rows = [{"z": 1, "b": 2}, {"a": "x"}, {"zz": None}, {"b": 2, "a": "x", "q": []}]
    forward = fr.MessageBatch.from_pylist(values=[b""] * 4, headers=rows)
    reversed_rows = [dict(reversed(list(r.items()))) for r in rows][::-1]
    backward = fr.MessageBatch.from_pylist(values=[b""] * 4, headers=reversed_rows)
    want = [["q1"], ["q2"], [], ["q1", "q2"]]
    assert router.route(forward).to_lists() == want
    assert router.route(backward).to_lists() == want[::-1]
    only_unknown = fr.MessageBatch.from_pylist(values=[b""] * 2, headers=[{"z": 1}, {"zz": 2}])
    assert router.route(only_unknown).to_lists() == [[], []]


def test_taken_sub_batch():
    """A batch gathered with take() (shared name table, gathered entries) routes as its rows."""
    rows = [{"a": 1}, {"a": 2}, {"b": "x"}, None, {"a": 1, "b": "x"}]
    batch = fr.MessageBatch.from_pylist(values=[b""] * 5, headers=rows)
    bindings = [({"a": 1}, "q1"), ({"x-match": "any", "b": "x"}, "q2")]
    router = fr.HeadersRouter(bindings)
    idx = [4, 4, 0, 3, 2]
    got = router.route(batch.take(idx)).to_lists()
    assert [set(g) for g in got] == [ref.headers_route(bindings, rows[i]) for i in idx]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("mode", ["ALL", "none", "", "all-with-X", "allwithx", b"all", 1, None, True, ["all"]])
def test_invalid_x_match(mode):
    """An unknown x-match string, or a non-str one, is refused naming the binding and rule."""
    args = {"x-match": mode, "a": 1}
    with pytest.raises(fr.PatternError) as info:
        fr.HeadersRouter([({"a": 1}, "ok"), (args, "q")])
    exc = info.value
    assert exc.dialect == "headers" and exc.pattern is args
    assert "x-match" in exc.rule and repr(mode) in exc.rule
    assert isinstance(exc, fr.FastrouteError) and isinstance(exc, ValueError)


@pytest.mark.parametrize("args", ["a=1", [("a", 1)], 5])
def test_arguments_must_be_a_dict(args):
    """Binding arguments that are not a mapping are refused, saying what was received."""
    with pytest.raises(fr.PatternError, match="must be a dict") as info:
        fr.HeadersRouter([(args, "q")])
    assert info.value.dialect == "headers"


@pytest.mark.parametrize("value, words", [
    (object(), "got object"), ({1, 2}, "got set"), (2**64, "64 bits"), (-(2**63) - 1, "64 bits"),
    ([object()], "object"), ({"k": {1}}, "set")])
def test_unsupported_argument_values(value, words):
    """Values a header cannot hold are refused, naming the argument."""
    with pytest.raises(fr.PatternError, match=words) as info:
        fr.HeadersRouter([({"arg": value}, "q")])
    assert "'arg'" in info.value.rule


def test_argument_names_must_be_text():
    """A non-text argument name is refused."""
    with pytest.raises(fr.PatternError, match="str or bytes"):
        fr.HeadersRouter([({5: 1}, "q")])
    with pytest.raises(fr.PatternError, match="not UTF-8"):
        fr.HeadersRouter([({b"\xff": 1}, "q")])


@pytest.mark.parametrize("binding", [("a",), 5, ({"a": 1},), ({"a": 1}, "q", "extra")])
def test_binding_must_be_a_pair(binding):
    """Each binding is an (arguments, destination) pair."""
    with pytest.raises(TypeError, match="pair"):
        fr.HeadersRouter([binding])


def test_destination_must_be_hashable():
    """A destination that cannot be a dict key is refused."""
    with pytest.raises(TypeError, match="hashable"):
        fr.HeadersRouter([({"a": 1}, ["q"])])


@pytest.mark.parametrize("compat", ["3.11", "4.0", "", 3.13, None])
def test_invalid_compat(compat):
    """An unknown compat raises ValueError listing the valid ones."""
    with pytest.raises(ValueError) as info:
        fr.HeadersRouter([({"a": 1}, "q")], compat=compat)
    assert "'3.13'" in str(info.value) and "'3.12'" in str(info.value) and repr(compat) in str(info.value)


def test_backends(monkeypatch):
    """backend='gpu' without a usable device is refused with the reason; so is an unknown backend."""
    from fastroute import _backend

    monkeypatch.setattr(_backend, "gpu_status", lambda: "no CUDA device found")
    router = fr.HeadersRouter([({"a": 1}, "q")])
    with pytest.raises(fr.BackendUnavailable, match="no CUDA device found"):
        router.route(one_message({"a": 1}), backend="gpu")
    with pytest.raises(ValueError, match="backend"):
        router.route(one_message({"a": 1}), backend="tpu")
    assert router.route(one_message({"a": 1}), backend="cpu").to_lists() == [["q"]]


def test_repr():
    """The repr names the binding and destination counts, compat and alternate."""
    router = fr.HeadersRouter([({"a": 1}, "q1"), ({"a": 2}, "q1")], compat="3.12", alternate="ae")
    assert repr(router) == "HeadersRouter(bindings=2, destinations=1, compat='3.12', alternate='ae')"


# --------------------------------------------------------------------------- alternate

def test_alternate_destination():
    """Messages that match nothing go to the alternate destination, the others do not."""
    router = fr.HeadersRouter([({"a": 1}, "q1")], alternate="unrouted")
    routes = router.route(fr.MessageBatch.from_pylist(values=[b""] * 3, headers=[{"a": 1}, {"a": 2}, None]))
    assert routes.to_lists() == [["q1"], ["unrouted"], ["unrouted"]]
    assert routes.names == ["q1", "unrouted"]


def test_alternate_router():
    """Messages that match nothing are routed by the alternate router (its own rules)."""
    fallback = fr.HeadersRouter([({"x-match": "any", "b": 1}, "fb"), ({"a": 2}, "q1")], alternate="last")
    router = fr.HeadersRouter([({"a": 1}, "q1")], alternate=fallback)
    rows = [{"a": 1, "b": 1}, {"a": 2}, {"b": 1}, None]
    routes = router.route(fr.MessageBatch.from_pylist(values=[b""] * 4, headers=rows))
    assert routes.to_lists() == [["q1"], ["q1"], ["fb"], ["last"]]


# --------------------------------------------------------------------------- drivers

def _mapped(router, table):
    return np.array([router._name_index.get(name, -1) for name in table.names], np.int32)


@pytest.mark.parametrize("n_chunks, cap", [(1, 0), (3, 0), (7, 5), (64, 1), (5, 100000)])
def test_parallel_driver_shapes(n_chunks, cap):
    """The parallel driver gives the serial answer for any chunk count, including chunks whose
    output region fills up (cap 0 re-matches everything) and more chunks than messages."""
    bindings = [({"a": 1}, "q1"), ({"x-match": "any", "a": 2, "b": None}, "q2"), ({}, "q3"),
                ({"a": 1, "b": "x"}, "q4")]
    rows = [{"a": 1}, {"a": 2}, {"b": "y"}, None, {"a": 1, "b": "x"}, [("a", 2), ("a", 1)]] * 7
    batch = fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)
    router = fr.HeadersRouter(bindings)
    serial = router.route(batch)
    offsets, dest = router._run(batch.headers, _mapped(router, batch.headers), n_chunks=n_chunks, cap=cap)
    assert offsets.tolist() == serial.offsets.tolist()
    assert dest.tolist() == serial.destinations.tolist()
    assert [set(x) for x in serial.to_lists()] == [ref.headers_route(bindings, r) for r in rows]


def test_serial_driver_output_growth():
    """The one-thread driver re-matches what did not fit its first guess at the output size."""
    bindings = [({"a": None}, f"q{k}") for k in range(20)]
    rows = [{"a": k} for k in range(50)]
    batch = fr.MessageBatch.from_pylist(values=[b""] * 50, headers=rows)
    router = fr.HeadersRouter(bindings)
    router._fanout_hint = 0.0
    routes = router.route(batch)
    assert routes.to_lists() == [[f"q{k}" for k in range(20)]] * 50


# --------------------------------------------------------------------------- properties

NAMES = ["a", "b", "c", "x-a", "x-match", "Ω"]
ARG_NAMES = [n for n in NAMES if n != "x-match"]
TEXT = st.text(alphabet="ab\u00e9", max_size=3)

# most values come from a small pool, so that bindings and headers often hold equal or
# nearly equal values (1 / 1.0 / True / "1", "a" / b"a", 0.0 / -0.0, 2**53 / 2**53+1 ...)
POOL = [None, True, False, 0, 1, -1, 2, 2**53, 2**53 + 1, 0.0, -0.0, 1.0, 2.0, 1.5, NAN, INF, float(2**53),
        "", "a", "1", "\u00e9", b"", b"a", b"1", [], [1], [1.0], [0.0], [-0.0], [NAN], ["a"], [b"a"],
        {"k": 1}, {"k": 1.0}, {"k": -0.0}]
pooled = st.sampled_from(POOL)
leaf = st.one_of(
    pooled, pooled, pooled, pooled,
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 2**53, 2**53 + 1, 2**63 - 1, -(2**63)]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0.0, -0.0, 1.0, 1.5, 2.0, -1.0, 0.1, NAN, INF, -INF, float(2**53), -(2.0**63), 2.0**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    TEXT.map(lambda s: s.encode("utf-8")),
    st.binary(max_size=3),
)
value = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["k", "j", "Ω"]), inner, max_size=2)),
    max_leaves=5,
)
headers_row = st.one_of(
    st.none(),
    st.lists(st.tuples(st.sampled_from(NAMES), value), max_size=5),
)
binding_args = st.builds(
    lambda mode, args: args if mode is None else {"x-match": mode, **args},
    st.sampled_from([None, "all", "any", "all-with-x", "any-with-x"]),
    st.dictionaries(st.sampled_from(ARG_NAMES), value, max_size=3),
)
bindings_list = st.lists(st.tuples(binding_args, st.sampled_from(["q0", "q1", "q2", "q3", "q4"])), max_size=12)


def check_against_reference(bindings, rows, compat, routes):
    assert len(routes) == len(rows)
    for i, row in enumerate(rows):
        ids = routes.ids(i)
        assert np.all(np.diff(ids) > 0), "ids must ascend, each once"
        want = ref.headers_route(bindings, row, compat)
        assert set(routes[i]) == want, (bindings, row)


@given(bindings=bindings_list, rows=st.lists(headers_row, min_size=1, max_size=20),
       compat=st.sampled_from(COMPATS))
def test_matches_reference(bindings, rows, compat):
    """Random bindings against random header tables (colliding names, x- names, every value
    type, repeated names) route exactly as the reference."""
    router = fr.HeadersRouter(bindings, compat=compat)
    batch = fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)
    check_against_reference(bindings, rows, compat, router.route(batch))


def equality_case(bound, sents, compat):
    """Route headers holding each of ``sents`` through bindings on ``bound``: as the argument
    looked up first, and as one checked after another argument of its all binding held."""
    bindings = [({"k": "key", "a": bound}, "after_k"), ({"a": bound}, "alone"),
                ({"x-match": "any", "a": bound, "z": 0}, "any")]
    rows = [{"k": "key"}]
    for sent in sents:
        rows += [{"a": sent, "k": "key"}, [("k", "key"), ("a", bound), ("a", sent)], {"a": sent}]
    router = fr.HeadersRouter(bindings, compat=compat)
    batch = fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)
    check_against_reference(bindings, rows, compat, router.route(batch))


@pytest.mark.parametrize("compat", COMPATS)
def test_value_pool_equality_matches_reference(compat):
    """Every pooled binding value against every pooled header value decides as the reference."""
    for bound in POOL:
        equality_case(bound, POOL, compat)


@given(bound=value, sent=value, compat=st.sampled_from(COMPATS))
def test_value_equality_matches_reference(bound, sent, compat):
    """Any binding value against any header value decides as the reference."""
    equality_case(bound, [sent], compat)


@given(bindings=bindings_list, pool=st.lists(headers_row, min_size=1, max_size=12),
       picks=st.lists(st.integers(0, 11), min_size=1, max_size=40), compat=st.sampled_from(COMPATS),
       shape=st.sampled_from([(2, 0), (5, 3), (9, None)]))
def test_parallel_driver_matches_reference(bindings, pool, picks, compat, shape):
    """The multi-chunk driver (regions that fill up included) routes random tables as the
    reference does."""
    rows = [pool[p % len(pool)] for p in picks]
    router = fr.HeadersRouter(bindings, compat=compat)
    batch = fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)
    if batch.headers.entry_count == 0 or not any(n in router._name_index for n in batch.headers.names):
        check_against_reference(bindings, rows, compat, router.route(batch))
        return
    offsets, dest = router._run(batch.headers, _mapped(router, batch.headers), n_chunks=shape[0], cap=shape[1])
    check_against_reference(bindings, rows, compat, fr.Routes(offsets, dest, router.names))


def test_large_batch_matches_reference():
    """A batch above the parallel threshold, rows drawn from a pool, routes as the reference."""
    rng = np.random.default_rng(7)
    pool = [{"a": int(k % 5), "b": ["x", "y", b"z", None][k % 4], "c": float(k % 3)} for k in range(40)]
    pool += [None, {}, [("a", 1), ("a", 2)], {"x-a": 1, "c": 2}]
    bindings = [({"a": 1}, "q1"), ({"x-match": "any", "b": "x", "c": 2.0}, "q2"), ({"b": None, "a": 3}, "q3"),
                ({"x-match": "any-with-x", "x-a": 1}, "q4"), ({}, "q5"), ({"c": 2}, "q6")]
    picks = rng.integers(0, len(pool), 3 * PARALLEL_MIN_ITEMS)
    for compat in COMPATS:
        router = fr.HeadersRouter(bindings, compat=compat)
        want = [ref.headers_route(bindings, row, compat) for row in pool]
        batch = fr.MessageBatch.from_pylist(values=[b""] * len(picks), headers=[pool[p] for p in picks])
        for _ in range(2):  # the second call sizes its output from the first
            got = router.route(batch).to_lists()
            assert all(set(got[i]) == want[p] and len(got[i]) == len(want[p]) for i, p in enumerate(picks.tolist()))


def test_many_bindings_match_reference():
    """Two thousand bindings on shared names and values (the indexed lookups, anchors and
    shared buckets) route as the reference."""
    rng = np.random.default_rng(11)
    values = {"t": [f"t{k}" for k in range(30)], "r": ["eu", "us", "ap"], "p": list(range(6)),
              "f": [1.0, 2.5, 3.0], "l": [[1], [1.0], ["x", 2.0]]}
    names = list(values)
    bindings = []
    for b in range(2000):
        mode = ["all", "any", "all-with-x", "any-with-x", None][rng.integers(5)]
        args = {} if mode is None else {"x-match": mode}
        for name in map(str, rng.choice(names, rng.integers(1, 4), replace=False)):
            vals = values[name]
            args[name] = None if rng.random() < 0.1 else vals[rng.integers(len(vals))]
        bindings.append((args, f"q{rng.integers(300)}"))
    rows = []
    for _ in range(60):
        picked = map(str, rng.choice(names, 3, replace=False))
        rows.append({name: values[name][rng.integers(len(values[name]))] for name in picked})
    for compat in COMPATS:
        router = fr.HeadersRouter(bindings, compat=compat)
        batch = fr.MessageBatch.from_pylist(values=[b""] * len(rows), headers=rows)
        check_against_reference(bindings, rows, compat, router.route(batch))


def test_nan_argument_never_equal():
    """NaN equals nothing: an all binding with it never matches, an any binding ignores it."""
    router = fr.HeadersRouter([({"a": NAN}, "all"), ({"x-match": "any", "a": NAN, "b": 1}, "any")])
    rows = [{"a": NAN, "b": 1}, {"a": NAN}]
    assert router.route(fr.MessageBatch.from_pylist(values=[b""] * 2, headers=rows)).to_lists() == [["any"], []]
    assert all(not math.isnan(x) for x in router._tables.check_float)
