"""DirectRouter and FanoutRouter against RabbitMQ's rules and the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

import fastroute as fr
import reference as R


def test_direct_exact_bytes_union_of_cc_and_bcc():
    """A key reaches the bindings whose key is byte-equal; CC/BCC keys add to the union."""
    router = fr.DirectRouter([("a", "q1"), ("b", "q2"), ("a", "q3"), ("A", "upper"), ("", "empty")])
    batch = fr.MessageBatch.from_pylist(keys=["a", "b", "c", None, "", "x"],
                                        headers=[None, None, {"BCC": ["A", "zz"]}, {"CC": ["b"]}, None,
                                                 {"CC": ["a", "a"], "BCC": ["b"]}])
    assert [set(r) for r in router.route(batch).to_lists()] == [
        {"q1", "q3"}, {"q2"}, {"upper"}, {"q2"}, {"empty"}, {"q1", "q2", "q3"}]


def test_direct_ids_ascending_and_unique():
    router = fr.DirectRouter([("k", "z"), ("k", "a"), ("k", "z")])
    routes = router.route(["k"])
    assert routes.destinations.tolist() == sorted(set(routes.destinations.tolist()))
    assert set(routes[0]) == {"a", "z"}


def test_default_exchange_routes_to_the_named_queue():
    router = fr.DirectRouter.default_exchange(["orders", "audit"])
    assert router.route(["orders", "audit", "missing"]).to_lists() == [["orders"], ["audit"], []]


def test_direct_alternate_and_bad_binding_keys():
    router = fr.DirectRouter([("a", "q")], alternate="ae")
    assert router.route(["a", "b"]).to_lists() == [["q"], ["ae"]]
    with pytest.raises(fr.PatternError, match="255 bytes"):
        fr.DirectRouter([("x" * 256, "q")])
    with pytest.raises(ValueError, match="pair"):
        fr.DirectRouter(["just-a-key"])


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "", "a.b", "é"]), st.sampled_from(["q0", "q1", "q2"])),
                max_size=15),
       st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", "a.b", "é", "c"])), max_size=30))
def test_direct_matches_reference(bindings, keys):
    router = fr.DirectRouter(bindings)
    for key, row in zip(keys, router.route(keys).to_lists()):
        assert set(row) == R.direct_route(bindings, key)


def test_fanout_reaches_everyone_once():
    """Fanout ignores keys (null ones too); a name listed twice appears once."""
    router = fr.FanoutRouter(["a", "b", "a"])
    assert router.route([None, "x", ""]).to_lists() == [["a", "b"]] * 3
    assert fr.FanoutRouter([], alternate="ae").route(["x"]).to_lists() == [["ae"]]
    with pytest.raises(TypeError):
        fr.FanoutRouter("a")
