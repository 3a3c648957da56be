"""TopicRouter against SEMANTICS.md's vectors and the slow reference, in all three dialects."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastroute as fr
from fastroute import _topic_table
import reference as R
from vectors import EDGE_KEYS, EDGE_TABLE, TOPIC1_BINDINGS, TOPIC1_TABLE

# --------------------------------------------------------------------------- AMQP vectors

def route_sets(router, keys, **kw):
    return [set(x) for x in router.route(fr.MessageBatch.from_pylist(keys=keys, **kw)).to_lists()]


def test_routing_suite_topic1_vectors():
    """RabbitMQ's routing_SUITE topic1 table: every key reaches exactly the listed bindings."""
    router = fr.TopicRouter(TOPIC1_BINDINGS)
    keys = list(TOPIC1_TABLE)
    for key, got in zip(keys, route_sets(router, keys)):
        assert got == set(TOPIC1_TABLE[key].split()), key


@pytest.mark.parametrize("pattern,key,expected", [
    ("#.c", "c", True), ("#.b.c", "c", False), ("a.#.d", "a.d", True), ("a.#.d", "a.b.c.d", True),
    ("#.*.#", "x", True), ("#.c", "x.c", True), (".#", ".0.a.b.c", True), (".*", ".0.a.b.c", False),
    (".*.a.b.c", ".0.a.b.c", True), ("#", "", True), ("foo.bar", "", False),
])
def test_topic_exchange_suite_vectors(pattern, key, expected):
    """rabbit_db_topic_exchange_SUITE's binding~key pairs."""
    router = fr.TopicRouter([(pattern, "q")])
    assert router.route([key])[0] == (["q"] if expected else [])


def test_edge_case_table():
    """SEMANTICS §1 edge cases: each binding against twelve keys, all bindings in one router."""
    router = fr.TopicRouter([(p, p) for p in EDGE_TABLE])
    got = route_sets(router, EDGE_KEYS)
    for pattern, marks in EDGE_TABLE.items():
        for key, mark, dests in zip(EDGE_KEYS, marks, got):
            assert (pattern in dests) == (mark == "Y"), (pattern, key)
            assert (mark == "Y") == R.amqp_match(pattern, key), (pattern, key)


def test_wildcards_only_as_whole_words():
    """'a*', '#a', '##' and 'a#b' are literals; '*' and '#' in a key are plain characters."""
    router = fr.TopicRouter([("a*", "lit1"), ("#a", "lit2"), ("##", "lit3"), ("a#b", "lit4"),
                             ("*", "star"), ("#.#.#.#", "hashes")])
    got = route_sets(router, ["a*", "#a", "##", "a#b", "*", "#", "ab"])
    assert got[0] == {"lit1", "star", "hashes"}
    assert got[1] == {"lit2", "star", "hashes"}
    assert got[2] == {"lit3", "star", "hashes"}
    assert got[3] == {"lit4", "star", "hashes"}
    assert got[4] == {"star", "hashes"}
    assert got[5] == {"star", "hashes"}
    assert got[6] == {"star", "hashes"}


def test_bytewise_keys_and_a_queue_bound_twice():
    """Words compare as raw bytes (UTF-8, no folding) and a twice-bound queue gets one copy."""
    router = fr.TopicRouter([("ключ.*", "q"), ("ключ.#", "q"), ("KEY.*", "upper")])
    got = router.route(["ключ.x", "key.x", "KEY.x", b"\xff\xfe.x"])
    assert got.to_lists() == [["q"], [], ["upper"], []]
    assert got.offsets.tolist() == [0, 1, 1, 2, 2]


def test_cc_and_bcc_headers_add_routing_keys():
    """CC and BCC (arrays of str) add keys, the answer is the union; other elements skipped."""
    router = fr.TopicRouter([("a.*", "qa"), ("b.*", "qb"), ("c.#", "qc")])
    batch = fr.MessageBatch.from_pylist(
        keys=["a.1", "x", "x", None, "a.1"],
        headers=[{"CC": ["b.1"]}, {"BCC": ["c", b"a.1", 5]}, {"CC": [], "BCC": ["b.2", "c.9"]},
                 {"CC": ["a.2"]}, {"cc": ["b.1"]}])
    assert [set(x) for x in router.route(batch).to_lists()] == [
        {"qa", "qb"}, {"qc"}, {"qb", "qc"}, {"qa"}, {"qa"}]
    for i, m in enumerate(batch):
        assert R.topic_route([("a.*", "qa"), ("b.*", "qb"), ("c.#", "qc")], m.key, "amqp", m.headers) == \
            set(router.route(batch)[i])


def test_cc_that_is_not_an_array_is_rejected():
    """A CC header that is not an array is refused, naming the message."""
    router = fr.TopicRouter([("a", "q")])
    batch = fr.MessageBatch.from_pylist(keys=["a", "a"], headers=[None, {"CC": "b"}])
    with pytest.raises(fr.BatchError, match="message 1") as exc:
        router.route(batch)
    assert exc.value.index == 1


@pytest.mark.parametrize("pattern,rule", [
    (b"a.\xff", "UTF-8"), ("a" * 256, "255 bytes"),
])
def test_invalid_amqp_patterns(pattern, rule):
    """Binding keys RabbitMQ refuses raise PatternError naming pattern, dialect and rule."""
    with pytest.raises(fr.PatternError, match=rule) as exc:
        fr.TopicRouter([(pattern, "q")])
    assert exc.value.dialect == "amqp"
    assert exc.value.pattern in (pattern, pattern.encode() if isinstance(pattern, str) else pattern)


def test_hash_wildcard_limit_is_opt_in():
    """'#.#.#' is valid before RabbitMQ 4.3.5 and refused with max_hash_wildcards=2."""
    assert fr.TopicRouter([("#.#.#", "q")]).route(["a"])[0] == ["q"]
    with pytest.raises(fr.PatternError, match="at most 2"):
        fr.TopicRouter([("#.#.#", "q")], max_hash_wildcards=2)
    fr.TopicRouter([("##.##.##", "q"), ("a#b.#.#", "q")], max_hash_wildcards=2)


# --------------------------------------------------------------------------- MQTT vectors

MQTT_MATCH = [("foo/#", "foo/"), ("foo/#", "foo"), ("foo//bar", "foo//bar"), ("foo//+", "foo//bar"),
              ("foo/+/+/baz", "foo///baz"), ("foo/bar/+", "foo/bar/"), ("foo/+/#", "foo/bar"),
              ("A/B/+/#", "A/B/B/C"), ("#", "/foo/bar"), ("/#", "/foo/bar"), ("sport/#", "sport"),
              ("+/+", "/finance"), ("/+", "/finance"), ("sport/+", "sport/"), ("$SYS/#", "$SYS/x"),
              ("$SYS/monitor/+", "$SYS/monitor/Clients")]
MQTT_NO_MATCH = [("test/6/#", "test/3"), ("foo/bar", "foo"), ("foo/+", "foo/bar/baz"), ("/#", "foo/bar"),
                 ("#", "$SYS/bar"), ("$BOB/bar", "$SYS/bar"), ("+", "/finance"), ("sport/+", "sport"),
                 ("+/monitor/Clients", "$SYS/monitor/Clients")]
MQTT_INVALID = ["+foo", "fo+o", "foo+", "foo/+bar", "#foo", "foo#", "foo/#bar", "#/sub/topic", "",
                "a/#/b", "a+", "+a", "#/", "##", "a\x00b", "a\x01b", "$share/g", "$share//a", "$share/g/",
                "$share/g+/a", b"a/\xff"]


@pytest.mark.parametrize("filt,topic", MQTT_MATCH)
def test_mqtt_matches(filt, topic):
    """mosquitto's util_topic_test matches and the spec's examples."""
    assert fr.TopicRouter([(filt, "c")], dialect="mqtt").route([topic])[0] == ["c"]
    assert R.mqtt_match(filt, topic)


@pytest.mark.parametrize("filt,topic", MQTT_NO_MATCH)
def test_mqtt_non_matches(filt, topic):
    assert fr.TopicRouter([(filt, "c")], dialect="mqtt").route([topic])[0] == []
    assert not R.mqtt_match(filt, topic)


@pytest.mark.parametrize("filt", MQTT_INVALID)
def test_mqtt_invalid_filters(filt):
    """Filters mosquitto refuses raise PatternError in the mqtt dialect."""
    with pytest.raises(fr.PatternError) as exc:
        fr.TopicRouter([(filt, "c")], dialect="mqtt")
    assert exc.value.dialect == "mqtt"


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00", "a\x1fb", b"\xc0\x80", "a\ufffe"])
def test_mqtt_topics_mosquitto_refuses_route_nowhere(topic):
    """A PUBLISH topic mosquitto would refuse reaches no one, even '#'."""
    router = fr.TopicRouter([("#", "all"), ("+", "one")], dialect="mqtt")
    assert router.route([topic])[0] == []


def test_mqtt_shared_subscriptions_round_robin_across_batches():
    """Each message reaches one member of each (share, filter) group, in turn, across batches."""
    router = fr.TopicRouter([("$share/g/a/+", "m1"), ("$share/g/a/+", "m2"), ("$share/g/a/+", "m3"),
                             ("$share/h/a/+", "h1"), ("a/#", "plain"), ("$share/g/b", "m1")],
                            dialect="mqtt")
    first = router.route(["a/1", "a/2", "b", "$x/1"]).to_lists()
    second = router.route(["a/3", "a/4"]).to_lists()
    picks = [next(d for d in row if d.startswith("m")) for row in first[:2] + second]
    assert picks == ["m1", "m2", "m3", "m1"]
    assert all("h1" in row and "plain" in row for row in first[:2] + second)
    assert first[2] == ["m1"]        # a different group (g, b): its own cursor
    assert first[3] == []            # shared subscriptions never receive '$' topics


# --------------------------------------------------------------------------- NATS vectors

NATS_MATCH = [("foo", "foo"), ("foo", "*"), ("foo", ">"), ("foo.bar", ">"), ("foo.bar", "foo.>"),
              ("stats.test.22", "stats.>"), ("stats.test.22", "stats.*.*"), ("*bar", "*bar"),
              ("foo*", "foo*"), ("foo.***.bar", "foo.***.bar"), ("foo>bar", "foo>bar")]
NATS_NO_MATCH = [("foo", "bar"), ("foo.bar", "bar.>"), ("foo.bar", "foo"), ("stats.test.foos", "stats.test.foo"),
                 ("stats.test", "stats.test.*"), ("stats.test.foos", "stats.*"),
                 ("stats.test.foos", "stats.*.*.foos"), ("foo", "foo.>"), ("a..b", "a.*.b"), ("", ">"),
                 ("a.", ">"), (".a", ">")]
NATS_INVALID = ["", ".", ".foo", "foo.", "foo..bar", "foo.>.bar", "foo bar", "foo\tbar", ">.a"]


@pytest.mark.parametrize("subject,filt", NATS_MATCH)
def test_nats_matches(subject, filt):
    """nats-server's TestSublistMatchLiterals matches."""
    assert fr.TopicRouter([(filt, "s")], dialect="nats").route([subject])[0] == ["s"]
    assert R.nats_match(subject, filt)


@pytest.mark.parametrize("subject,filt", NATS_NO_MATCH)
def test_nats_non_matches(subject, filt):
    assert fr.TopicRouter([(filt, "s")], dialect="nats").route([subject])[0] == []
    assert not R.nats_match(subject, filt)


@pytest.mark.parametrize("filt", NATS_INVALID)
def test_nats_invalid_subscriptions(filt):
    with pytest.raises(fr.PatternError) as exc:
        fr.TopicRouter([(filt, "s")], dialect="nats")
    assert exc.value.dialect == "nats"


def test_nats_queue_groups_pick_one_member_per_group():
    """Queue members compete by group name across subjects; plain subscribers all get a copy."""
    bindings = [("orders.*", "w1", "workers"), ("orders.>", "w2", "workers"), ("orders.eu", "w3", "workers"),
                ("orders.*", "a1", "audit"), ("orders.*", "tap", None)]
    router = fr.TopicRouter(bindings, dialect="nats", seed=7)
    keys = ["orders.eu"] * 3000 + ["orders.us"] * 3000 + ["orders.us.x"] * 10
    routes = router.route(keys).to_lists()
    count = collections.Counter()
    for key, row in zip(keys, routes):
        workers = [d for d in row if d.startswith("w")]
        assert len(workers) == 1
        eligible = {"orders.eu": {"w1", "w2", "w3"}, "orders.us": {"w1", "w2"}, "orders.us.x": {"w2"}}[key]
        assert workers[0] in eligible
        if key != "orders.us.x":
            assert "a1" in row and "tap" in row
        count[(key, workers[0])] += 1
    for w in ("w1", "w2", "w3"):
        assert 800 < count[("orders.eu", w)] < 1200
    again = fr.TopicRouter(bindings, dialect="nats", seed=7).route(keys).to_lists()
    assert again == routes
    assert router.route(keys).to_lists() != routes  # the generator moved on


def test_queue_group_outside_nats_is_refused():
    with pytest.raises(ValueError, match="NATS"):
        fr.TopicRouter([("a", "q", "g")], dialect="amqp")


# --------------------------------------------------------------------------- general behaviour

def test_empty_batch_null_keys_and_bad_keys():
    """Empty batch → empty Routes; null keys route nowhere; a non-key raises BatchError."""
    router = fr.TopicRouter([("#", "all")])
    empty = router.route([])
    assert len(empty) == 0 and empty.offsets.tolist() == [0]
    assert router.route([None, "x"]).to_lists() == [[], ["all"]]
    with pytest.raises(fr.BatchError, match="key 1: expected bytes, str or None, got int") as exc:
        router.route(["a", 5])
    assert exc.value.index == 1


def test_unknown_dialect_lists_valid_ones():
    with pytest.raises(ValueError, match="'amqp', 'mqtt', 'nats'"):
        fr.TopicRouter([], dialect="stomp")


def test_alternate_receives_unroutable_messages():
    """Messages that route nowhere go to the alternate name, or through an alternate router."""
    router = fr.TopicRouter([("a.*", "qa")], alternate="ae")
    assert router.route(["a.1", "b.1", None]).to_lists() == [["qa"], ["ae"], ["ae"]]
    chained = fr.TopicRouter([("a.*", "qa")], alternate=fr.TopicRouter([("b.#", "qb")], alternate="last"))
    routes = chained.route(["a.1", "b.1", "c"])
    assert routes.to_lists() == [["qa"], ["qb"], ["last"]]
    assert routes.unroutable().tolist() == []


def test_no_bindings_routes_nowhere():
    assert fr.TopicRouter([]).route(["a", ""]).to_lists() == [[], []]


# --------------------------------------------------------------------------- property tests

WORDS = ["a", "b", "", "ab", "*", "#", "a*", "é"]


def amqp_pattern():
    return st.lists(st.sampled_from(WORDS), min_size=0, max_size=6).map(".".join)


def amqp_key():
    return st.lists(st.sampled_from(["a", "b", "", "ab", "*", "#", "c", "é"]), min_size=0, max_size=8).map(".".join)


def check_against_reference(bindings, keys, dialect, **kw):
    router = fr.TopicRouter(bindings, dialect=dialect, **kw)
    got = route_sets(router, keys)
    for key, row in zip(keys, got):
        assert row == R.topic_route(bindings, key, dialect), (key, dialect)


@given(st.lists(st.tuples(amqp_pattern(), st.sampled_from(["q0", "q1", "q2", "q3", "q4"])), max_size=25),
       st.lists(amqp_key(), max_size=40))
def test_amqp_matches_reference(bindings, keys):
    """Random AMQP bindings and keys (empty words, literal '*'/'#', repeats) agree with ref_match."""
    check_against_reference(bindings, keys, "amqp")


def mqtt_filter():
    levels = st.lists(st.sampled_from(["a", "b", "", "+", "$x", "é"]), min_size=1, max_size=5)
    tail = st.sampled_from(["", "/#", "#"])

    def build(lv, t):
        f = "/".join(lv)
        if t == "#":
            return "#"
        return f + t

    return st.builds(build, levels, tail).filter(R.mqtt_valid_filter)


@given(st.lists(st.tuples(mqtt_filter(), st.sampled_from(["c0", "c1", "c2"])), max_size=20),
       st.lists(st.lists(st.sampled_from(["a", "b", "", "$x", "é", "c"]), min_size=1, max_size=6).map("/".join),
                max_size=40))
def test_mqtt_matches_reference(bindings, topics):
    check_against_reference(bindings, topics, "mqtt")


def nats_subject():
    toks = st.lists(st.sampled_from(["a", "b", "ab", "*", "c*"]), min_size=1, max_size=5)
    return st.builds(lambda t, gt: ".".join(t + ([">"] if gt else [])), toks, st.booleans())


@given(st.lists(st.tuples(nats_subject(), st.sampled_from(["s0", "s1", "s2"])), max_size=20),
       st.lists(st.lists(st.sampled_from(["a", "b", "ab", "", "*", ">", "c*"]), min_size=1, max_size=6).map(".".join),
                max_size=40))
def test_nats_matches_reference(bindings, subjects):
    check_against_reference(bindings, subjects, "nats")


@pytest.fixture
def tiny_tables(monkeypatch):
    """Force every table-building fallback: split nodes, the hashed lookup, sorted output."""
    monkeypatch.setattr(_topic_table, "LEAF_BYTES_PER_PATTERN", 0)
    monkeypatch.setattr(_topic_table, "LEAF_BYTES_FIXED", 0)
    monkeypatch.setattr(_topic_table, "DENSE_LUT_MIN_BYTES", 0)
    monkeypatch.setattr(_topic_table, "DENSE_LUT_BYTES_PER_PATTERN", 0)
    monkeypatch.setattr(_topic_table, "BITMAP_MAX_DEST", 0)
    monkeypatch.setattr(_topic_table, "SHORT_AFFIX", 1)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(amqp_pattern(), st.sampled_from(["q0", "q1", "q2"])), max_size=25),
       st.lists(amqp_key(), max_size=30))
def test_amqp_fallback_structures_match_reference(tiny_tables, bindings, keys):
    """With split nodes, hashed lookups and sorting forced, answers are unchanged."""
    check_against_reference(bindings, keys, "amqp")


def test_high_cardinality_vocabulary_splits_and_stays_compact():
    """10,000 bindings with unique words compile to split nodes, bounded memory, right answers."""
    rng = np.random.default_rng(3)
    bindings = [(f"user.{i}.{'*' if i % 7 == 0 else 'created'}", f"q{i % 50}") for i in range(10_000)]
    bindings += [(f"user.{i}.#", "audit") for i in range(0, 10_000, 97)]
    router = fr.TopicRouter(bindings)
    assert (router._table.node_kind == 1).any()
    assert router.table_nbytes < 200 * len(bindings)
    keys = [f"user.{i}.{w}" for i, w in zip(rng.integers(0, 11_000, 500), rng.choice(["created", "x"], 500))]
    # every binding is 'user.<i>.…', so only those naming the key's <i> can match it
    by_id: dict = {}
    for pattern, dest in bindings:
        by_id.setdefault(pattern.split(".")[1], []).append((pattern, dest))
    for key, row in zip(keys, route_sets(router, keys)):
        assert row == R.topic_route(by_id.get(key.split(".")[1], []), key, "amqp"), key


# --------------------------------------------------------------------------- bulk tokenizer

def _pattern_bytes():
    alphabet = st.sampled_from([b"a", b".", b"/", b"*", b"#", b"+", b">", b" ", b"\x00", b"\x01", b"\xc3\xa9",
                                b"\xff", b"\xef\xbf\xbe", b"$share/", b"$share/g/"])
    return st.lists(alphabet, max_size=8).map(b"".join)


@pytest.mark.parametrize("dialect", ["amqp", "mqtt", "nats"])
@given(patterns=st.lists(_pattern_bytes(), min_size=1, max_size=6))
def test_bulk_tokenizer_accepts_exactly_what_the_parser_accepts(dialect, patterns):
    """A table compiles iff every pattern parses; a refused one raises the parser's error."""
    from fastroute._topic_parse import parse

    errors = []
    for p in patterns:
        try:
            parse(p, dialect)
        except fr.PatternError as exc:
            errors.append(str(exc))
    if errors:
        with pytest.raises(fr.PatternError) as exc:
            fr.TopicRouter([(p, "d") for p in patterns], dialect=dialect)
        assert str(exc.value) == errors[0]
    else:
        fr.TopicRouter([(p, "d") for p in patterns], dialect=dialect)


def test_many_destinations_use_the_summary_bitmap():
    """Over 4,096 destinations the destination bitmap keeps a summary; answers are unchanged."""
    bindings = [(f"k.{i % 7}.#", f"d{i}") for i in range(6000)] + [("#", "all")]
    router = fr.TopicRouter(bindings)
    routes = router.route(["k.3.x", "k.9", "z"])
    assert set(routes[0]) == {f"d{i}" for i in range(6000) if i % 7 == 3} | {"all"}
    assert routes[1] == ["all"] and routes[2] == ["all"]
    ids = routes.ids(0)
    assert (ids[1:] > ids[:-1]).all()
