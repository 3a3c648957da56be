"""fastroute's AMQP routers held against a live RabbitMQ (topic, CC/BCC, direct, fanout, headers, AE).

Each case declares fresh exchanges and queues, binds them, publishes a batch of messages with
publisher confirms (body = sequence number), drains every queue and records, per message, the
destinations that received it. One test compares those answers with the slow reference (a
disagreement there is a finding about the broker or SEMANTICS.md), another with the fastroute
router given the same bindings. Random cases derive from the session seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

import reference
from vectors import EDGE_KEYS, EDGE_TABLE, TOPIC1_BINDINGS, TOPIC1_TABLE

from ._amqp import AmqpScratch, Field, plain
from ._support import (compare_routes, explain_bindings, fastroute_class, pick_words,
                       routes_as_sets)
from .reference_live import alternate_route, fanout_route

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


@dataclass
class Observed:
    """One case: the bindings, the messages, and what the broker did with each message."""

    bindings: list
    keys: list
    headers: list | None
    broker: list = field(default_factory=list)       # per message, the set of destinations
    duplicates: list = field(default_factory=list)   # (destination, message, copies) where copies > 1


def observe(amqp: AmqpScratch, exchange: str, queues: dict, case: Observed) -> Observed:
    """Publish the case's messages to ``exchange`` and record where each one arrived.

    ``queues`` maps destination name -> queue name.
    """
    amqp.publish(exchange, case.keys, case.headers)
    got = amqp.drain(list(queues.values()))
    case.broker = [set() for _ in case.keys]
    for dest, queue in queues.items():
        for seq, copies in got[queue].items():
            case.broker[seq].add(dest)
            if copies != 1:
                case.duplicates.append((dest, seq, copies))
    return case


def batch_of(case: Observed):
    import fastroute as fr

    return fr.MessageBatch.from_pylist(keys=case.keys, headers=plain(case.headers))


def plain_bindings(bindings) -> list:
    """Bindings with AMQP-typed argument values replaced by what the broker decodes."""
    return [(plain(b[0]), *b[1:]) for b in bindings]


# --------------------------------------------------------------------------- vocabularies

#: Binding words: literals that overlap with the keys, wildcards, and wildcard look-alikes
#: ('a*', '*a', '##' are literals), an empty word and non-ASCII words.
PATTERN_WORDS = ["a", "a", "b", "b", "c", "", "*", "*", "#", "#", "a*", "*a", "##", "é", "ключ"]
KEY_WORDS = ["a", "a", "b", "b", "c", "", "*", "#", "a*", "é", "ключ", "x"]

SPECIAL_PATTERNS = ["", "#", "#.#", "*", "*.*", "a*", "#.*.#", "*.#", "a.#.b", "a.#.#.b", ".", "a..b",
                    "*.", ".*", "ключ.#", "#.b.#", "a.b.c", "a.#"]

LONG_KEYS = [
    "a." * 127 + "a",                 # 255 bytes, 128 words
    "b" * 255,                        # one 255-byte word
    "ключ." * 28 + "abc",             # 255 bytes of UTF-8
    "a." * 126 + "b.",                # 255 bytes ending in an empty word
]
SPECIAL_KEYS = ["", ".", "..", "a..b", "a.", ".a", "*", "#", "a.*", "#.b", "a*", "a.b", "a.b.c",
                "ключ.a", "é", b"\xff.a", b"a.\xfe\xff", b"\xc3.b", b"a\x00.b"] + LONG_KEYS


def draw_pattern(rng: random.Random) -> str:
    words = pick_words(rng, PATTERN_WORDS, 0, 5)
    # RabbitMQ 4.3.5 and later refuse three or more '#' words; staying at two keeps the case
    # valid for every version (3.10 here accepts more).
    while words.count("#") > 2:
        words.remove("#")
    return ".".join(words)


def draw_key(rng: random.Random):
    if rng.random() < 0.03:
        words, length = [], 0
        while length < 200:
            words.append(rng.choice(KEY_WORDS))
            length += len(words[-1].encode()) + 1
        return ".".join(words)
    return ".".join(pick_words(rng, KEY_WORDS, 0, 6))


def draw_bindings(rng: random.Random, n_dests: int, n_random: int, specials=SPECIAL_PATTERNS) -> tuple:
    """(bindings, destinations): special and random patterns in random order over ``n_dests``.

    The first ``n_dests`` patterns get a destination each, so most bindings are observed on
    their own; the rest join a random one (so a queue matched twice shows up), and one
    binding is made twice.
    """
    patterns = list(specials) + [draw_pattern(rng) for _ in range(n_random)]
    rng.shuffle(patterns)
    dests = [f"d{i}" for i in range(n_dests)]
    bindings = [(p, dests[i] if i < n_dests else rng.choice(dests)) for i, p in enumerate(patterns)]
    bindings.append(bindings[0])  # binding twice is idempotent in RabbitMQ
    return bindings, dests


def topic_reference(bindings, case: Observed) -> list:
    hs = case.headers or [None] * len(case.keys)
    return [reference.topic_route(bindings, k, "amqp", h) for k, h in zip(case.keys, hs)]


# --------------------------------------------------------------------------- published vectors

EDGE_BINDINGS = [(p, f"e{i}") for i, p in enumerate(EDGE_TABLE)]


#: Each published table: (bindings, keys, per key the expected destinations).
PUBLISHED = {
    "topic1": (TOPIC1_BINDINGS, list(TOPIC1_TABLE), [set(v.split()) for v in TOPIC1_TABLE.values()]),
    "edge": (EDGE_BINDINGS, EDGE_KEYS,
             [{d for p, d in EDGE_BINDINGS if EDGE_TABLE[p][j] == "Y"} for j in range(len(EDGE_KEYS))]),
}


@pytest.fixture(scope="module")
def topic_vectors(rabbitmq, run_id):
    """Each published binding table on its own topic exchange, each table key published once."""
    out = {}
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.vectors") as amqp:
        for name, (bindings, keys, _) in PUBLISHED.items():
            x = amqp.exchange("topic")
            queues = {d: amqp.queue() for d in dict.fromkeys(d for _, d in bindings)}
            for pattern, dest in bindings:
                amqp.bind(queues[dest], x, pattern)
            out[name] = observe(amqp, x, queues, Observed(bindings, keys, None))
    return out


@pytest.mark.parametrize("table", list(PUBLISHED))
def test_topic_broker_matches_the_published_vectors(topic_vectors, table):
    """RabbitMQ's topic exchange routes the topic1 and edge-case keys exactly as SEMANTICS.md lists."""
    case = topic_vectors[table]
    compare_routes(case.broker, PUBLISHED[table][2], case.keys, got_name="broker", want_name="published",
                   explain=explain_bindings(case.bindings))


@pytest.mark.parametrize("table", list(PUBLISHED))
def test_topic_reference_matches_the_published_vectors(table):
    """The reference reproduces the published tables (so a broker/reference gap is not a typo here)."""
    bindings, keys, want = PUBLISHED[table]
    got = [reference.topic_route(bindings, k, "amqp") for k in keys]
    compare_routes(got, want, keys, got_name="reference", want_name="published")


@pytest.mark.parametrize("table", list(PUBLISHED))
def test_topic_router_matches_the_broker_on_the_published_vectors(topic_vectors, table):
    """TopicRouter(dialect='amqp') gives the broker's answers for the published tables."""
    case = topic_vectors[table]
    router = fastroute_class("TopicRouter")(case.bindings, dialect="amqp")
    got = routes_as_sets(router.route(batch_of(case)), len(case.keys))
    compare_routes(got, case.broker, case.keys, got_name="fastroute", want_name="broker",
                   explain=explain_bindings(case.bindings))


# --------------------------------------------------------------------------- random topic bindings

@pytest.fixture(scope="module")
def topic_case(rabbitmq, run_id, live_seed):
    """58 special and random topic bindings to 40 queues; special, random and 255-byte keys."""
    rng = random.Random(f"{live_seed}/topic")
    bindings, dests = draw_bindings(rng, 40, 40)
    keys = SPECIAL_KEYS + [draw_key(rng) for _ in range(600)]
    case = Observed(bindings, keys, None)
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.topic") as amqp:
        x = amqp.exchange("topic")
        queues = {d: amqp.queue() for d in dests}
        for pattern, dest in bindings:
            amqp.bind(queues[dest], x, pattern)
        return observe(amqp, x, queues, case)


def test_topic_broker_matches_the_reference(topic_case, live_seed):
    """RabbitMQ's topic exchange agrees with reference.amqp_match on random overlapping bindings."""
    compare_routes(topic_case.broker, topic_reference(topic_case.bindings, topic_case), topic_case.keys,
                   got_name="broker", want_name="reference", seed=live_seed,
                   explain=explain_bindings(topic_case.bindings))


def test_topic_broker_delivers_once_per_queue(topic_case):
    """A queue bound by several matching patterns receives a message once (SEMANTICS.md §2)."""
    assert topic_case.duplicates == []


def test_topic_router_matches_the_broker(topic_case, live_seed):
    """TopicRouter(dialect='amqp') gives the broker's answer for every random key."""
    router = fastroute_class("TopicRouter")(topic_case.bindings, dialect="amqp")
    got = routes_as_sets(router.route(batch_of(topic_case)), len(topic_case.keys))
    compare_routes(got, topic_case.broker, topic_case.keys, got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=explain_bindings(topic_case.bindings))


@pytest.fixture(scope="module")
def three_hash_case(rabbitmq, run_id, live_seed):
    """Bindings with three '#' words, which 3.x accepts and 4.3.5 and later refuse (§1 Limits).

    Short keys only: the broker's trie backtracks through every split of the key, so one
    such binding costs it O(words^3) per key.
    """
    rng = random.Random(f"{live_seed}/three-hash")
    bindings = [("#.#.#.a", "h0"), ("#.b.#.#", "h1"), ("#.#.#", "h2"), ("a.#", "h3")]
    keys = [k for k in SPECIAL_KEYS if k not in LONG_KEYS] + [".".join(pick_words(rng, KEY_WORDS, 0, 6))
                                                             for _ in range(100)]
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.hash3") as amqp:
        x = amqp.exchange("topic")
        queues = {d: amqp.queue() for _, d in bindings}
        for pattern, dest in bindings:
            amqp.bind(queues[dest], x, pattern)
        return observe(amqp, x, queues, Observed(bindings, keys, None))


def test_three_hash_bindings_broker_matches_the_reference(three_hash_case):
    """RabbitMQ 3.10 accepts bindings with three '#' words and matches them like the reference."""
    compare_routes(three_hash_case.broker, topic_reference(three_hash_case.bindings, three_hash_case),
                   three_hash_case.keys, got_name="broker", want_name="reference",
                   explain=explain_bindings(three_hash_case.bindings))


def test_three_hash_bindings_router_matches_the_broker(three_hash_case):
    """TopicRouter(dialect='amqp'), which by default sets no '#' limit, agrees with RabbitMQ 3.10."""
    router = fastroute_class("TopicRouter")(three_hash_case.bindings, dialect="amqp")
    got = routes_as_sets(router.route(batch_of(three_hash_case)), len(three_hash_case.keys))
    compare_routes(got, three_hash_case.broker, three_hash_case.keys, got_name="fastroute", want_name="broker",
                   explain=explain_bindings(three_hash_case.bindings))


# --------------------------------------------------------------------------- CC / BCC

def draw_routing_headers(rng: random.Random, draw) -> dict | None:
    """None, or CC and/or BCC arrays of keys; non-string elements, which RabbitMQ skips, mixed in."""
    if rng.random() < 0.25:
        return None
    headers = {}
    for name in ("CC", "BCC"):
        if rng.random() < 0.6:
            items = [draw(rng) for _ in range(rng.randint(0, 3))]
            if rng.random() < 0.3:
                items.insert(rng.randint(0, len(items)), rng.choice([7, b"a.b", 1.5, True, None]))
            headers[name] = items
    if rng.random() < 0.2:
        headers["other"] = "a.b"
    return headers


@pytest.fixture(scope="module")
def cc_case(rabbitmq, run_id, live_seed):
    """Random topic bindings; messages whose CC/BCC headers add routing keys."""
    rng = random.Random(f"{live_seed}/cc")
    bindings, dests = draw_bindings(rng, 12, 14, specials=["a.b", "#.c", "*", "", "ключ.#"])
    keys = [draw_key(rng) for _ in range(250)]
    headers = [draw_routing_headers(rng, draw_key) for _ in keys]
    case = Observed(bindings, keys, headers)
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.cc") as amqp:
        x = amqp.exchange("topic")
        queues = {d: amqp.queue() for d in dests}
        for pattern, dest in bindings:
            amqp.bind(queues[dest], x, pattern)
        return observe(amqp, x, queues, case)


def test_cc_bcc_broker_matches_the_reference(cc_case, live_seed):
    """RabbitMQ routes a topic message by the union of its key, CC and BCC string elements."""
    compare_routes(cc_case.broker, topic_reference(cc_case.bindings, cc_case), cc_case.keys,
                   got_name="broker", want_name="reference", seed=live_seed,
                   explain=explain_bindings(cc_case.bindings))


def test_cc_bcc_router_matches_the_broker(cc_case, live_seed):
    """TopicRouter(dialect='amqp') adds the CC/BCC keys from the batch headers as RabbitMQ does."""
    router = fastroute_class("TopicRouter")(cc_case.bindings, dialect="amqp")
    got = routes_as_sets(router.route(batch_of(cc_case)), len(cc_case.keys))
    compare_routes(got, cc_case.broker, cc_case.keys, got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=explain_bindings(cc_case.bindings))


NON_ARRAYS = ["a.b", b"a.b", 7, 1.5, True, None, {"k": "a.b"}]


@pytest.fixture(scope="module")
def cc_refusals(rabbitmq, run_id):
    """The broker's answer to a CC or BCC header that is not an array, per value."""
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.ccbad") as amqp:
        x = amqp.exchange("topic")
        amqp.bind(amqp.queue(), x, "#")
        return {(name, i): amqp.refusal(x, "a", {name: value})
                for name in ("CC", "BCC") for i, value in enumerate(NON_ARRAYS)}


def test_cc_bcc_non_array_is_refused_by_broker_and_reference(cc_refusals):
    """RabbitMQ refuses a message whose CC/BCC header is not an array; so does the reference."""
    for (name, i), answer in cc_refusals.items():
        assert answer is not None and answer[0] == 406 and "unacceptable_type_in_header" in answer[1], \
            f"{name}={NON_ARRAYS[i]!r}: broker answered {answer}"
        with pytest.raises(TypeError):
            reference.topic_route([("#", "q")], "a", "amqp", {name: plain(NON_ARRAYS[i])})


def test_cc_bcc_non_array_is_refused_by_the_router(cc_refusals):
    """TopicRouter(dialect='amqp') raises BatchError naming the message, where RabbitMQ refuses it."""
    import fastroute as fr

    router = fastroute_class("TopicRouter")([("#", "q")], dialect="amqp")
    for name in ("CC", "BCC"):
        for value in NON_ARRAYS:
            batch = fr.MessageBatch.from_pylist(keys=["a", "b"], headers=[None, {name: plain(value)}])
            with pytest.raises(fr.BatchError) as err:
                router.route(batch)
            assert err.value.index == 1, f"{name}={value!r}: {err.value}"


# --------------------------------------------------------------------------- direct

DIRECT_KEYS = ["", "a", "b", "a.b", "A", "é", "ключ", "*", "#", "a ", " a"]


@pytest.fixture(scope="module")
def direct_case(rabbitmq, run_id, live_seed):
    """Random direct bindings (several per key and per queue); keys with and without CC/BCC."""
    rng = random.Random(f"{live_seed}/direct")
    dests = [f"d{i}" for i in range(6)]
    bindings = [(rng.choice(DIRECT_KEYS), d) for d in dests for _ in range(rng.randint(1, 3))]
    bindings.append(bindings[0])

    def draw(r):
        return r.choice(DIRECT_KEYS + ["c", "a.*"])

    keys = DIRECT_KEYS + [b"\xff", b"a\x00b"] + [draw(rng) for _ in range(200)]
    headers = [None] * (len(DIRECT_KEYS) + 2) + [draw_routing_headers(rng, draw) for _ in range(200)]
    case = Observed(bindings, keys, headers)
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.direct") as amqp:
        x = amqp.exchange("direct")
        queues = {d: amqp.queue() for d in dests}
        for key, dest in bindings:
            amqp.bind(queues[dest], x, key)
        return observe(amqp, x, queues, case)


def test_direct_broker_matches_the_reference(direct_case, live_seed):
    """RabbitMQ's direct exchange matches byte-equal keys, CC/BCC included, once per queue."""
    hs = direct_case.headers
    want = [reference.direct_route(direct_case.bindings, k, h) for k, h in zip(direct_case.keys, hs)]
    compare_routes(direct_case.broker, want, direct_case.keys, got_name="broker", want_name="reference",
                   seed=live_seed, explain=explain_bindings(direct_case.bindings))
    assert direct_case.duplicates == []


def test_direct_router_matches_the_broker(direct_case, live_seed):
    """DirectRouter gives RabbitMQ's direct-exchange answer for every key and CC/BCC list."""
    router = fastroute_class("DirectRouter")(direct_case.bindings)
    got = routes_as_sets(router.route(batch_of(direct_case)), len(direct_case.keys))
    compare_routes(got, direct_case.broker, direct_case.keys, got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=explain_bindings(direct_case.bindings))


# --------------------------------------------------------------------------- fanout

@pytest.fixture(scope="module")
def fanout_case(rabbitmq, run_id, live_seed):
    """A fanout exchange with queues bound under arbitrary keys, one of them twice."""
    rng = random.Random(f"{live_seed}/fanout")
    dests = [f"d{i}" for i in range(4)]
    bindings = [(rng.choice(["", "a", "#", "ignored"]), d) for d in dests] + [("second", dests[0])]
    keys = ["", "a", "x.y", "#"] + [draw_key(rng) for _ in range(40)]
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.fanout") as amqp:
        x = amqp.exchange("fanout")
        queues = {d: amqp.queue() for d in dests}
        for key, dest in bindings:
            amqp.bind(queues[dest], x, key)
        return observe(amqp, x, queues, Observed(bindings, keys, None))


def _fanout_destinations(case: Observed) -> list:
    return list(dict.fromkeys(d for _, d in case.bindings))


def test_fanout_broker_matches_the_reference(fanout_case):
    """RabbitMQ's fanout exchange sends every message to every bound queue, once."""
    want = [fanout_route(_fanout_destinations(fanout_case), k) for k in fanout_case.keys]
    compare_routes(fanout_case.broker, want, fanout_case.keys, got_name="broker", want_name="reference")
    assert fanout_case.duplicates == []


def test_fanout_router_matches_the_broker(fanout_case):
    """FanoutRouter sends every message to every destination, as RabbitMQ's fanout exchange."""
    router = fastroute_class("FanoutRouter")(_fanout_destinations(fanout_case))
    got = routes_as_sets(router.route(batch_of(fanout_case)), len(fanout_case.keys))
    compare_routes(got, fanout_case.broker, fanout_case.keys, got_name="fastroute", want_name="broker")


# --------------------------------------------------------------------------- headers

#: Values as sent: int -> I (or l past 32 bits), float -> d, bool -> t, str -> S, bytes -> x,
#: None -> V, Field -> its own type. Chosen to collide across types: 1 / 1.0 / True / "1" / b"1",
#: and every integer type, float32 vs float64 and a timestamp against plain integers.
SCALARS = [0, 1, 2, -1, 2 ** 40, 1.0, 0.0, -0.0, 2.5, 0.1, "1", "abc", "", b"abc", b"1", True, False,
           Field("b", 1), Field("B", 2), Field("s", -1), Field("u", 1), Field("i", 2), Field("l", 1),
           Field("L", 2 ** 40), Field("f", 0.1), Field("f", 2.5), Field("T", 1)]
#: Arrays and tables keep their inner types in the comparison (so [1] differs from [1.0]).
NESTED = [["a"], [b"a"], [1], [1.0], ["a", 1], [], [True], {"k": "v"}, {"k": 1}, {"k": 1.0}, [["a"]]]
HEADER_NAMES = ["a", "b", "c", "x-foo", "d"]
X_MATCH = [None, "all", "any", "all-with-x", "any-with-x"]


def draw_args(rng: random.Random, values: list) -> dict:
    """Binding arguments: an optional x-match, then up to 3 name tests (None = presence)."""
    args = {}
    mode = rng.choice(X_MATCH)
    if mode is not None:
        args["x-match"] = mode
    for name in rng.sample(["a", "b", "c", "x-foo"], rng.randint(0, 3)):
        args[name] = None if rng.random() < 0.2 else rng.choice(values)
    return args


def draw_headers(rng: random.Random, values: list) -> dict | None:
    if rng.random() < 0.1:
        return None
    return {name: (None if rng.random() < 0.1 else rng.choice(values))
            for name in rng.sample(HEADER_NAMES, rng.randint(0, 4))}


def _headers_case(rabbitmq, prefix: str, rng: random.Random, values: list, n_bindings: int, n_msgs: int):
    dests = [f"h{i}" for i in range(n_bindings)]
    bindings = [(draw_args(rng, values), d) for d in dests]
    bindings += [({}, "h-empty"), ({"x-match": "any"}, "h-any-empty"), ({"x-match": "all-with-x"}, "h-allx-empty")]
    headers = [draw_headers(rng, values) for _ in range(n_msgs)]
    keys = [f"k{i}" for i in range(n_msgs)]
    case = Observed(bindings, keys, headers)
    with AmqpScratch(rabbitmq, prefix) as amqp:
        x = amqp.exchange("headers")
        queues = {d: amqp.queue() for _, d in bindings}
        for args, dest in bindings:
            amqp.bind(queues[dest], x, "", arguments=args)
        return observe(amqp, x, queues, case)


@pytest.fixture(scope="module")
def headers_case(rabbitmq, run_id, live_seed):
    """Random scalar header bindings (every x-match mode, presence tests, x- args)."""
    rng = random.Random(f"{live_seed}/headers")
    return _headers_case(rabbitmq, f"fastroute.live.{run_id}.headers", rng, SCALARS, 24, 400)


@pytest.fixture(scope="module")
def nested_headers_case(rabbitmq, run_id, live_seed):
    """Header bindings and messages with array and table values (inner types kept)."""
    rng = random.Random(f"{live_seed}/nested")
    return _headers_case(rabbitmq, f"fastroute.live.{run_id}.nested", rng, NESTED + ["a", 1], 12, 200)


def _explain_args(case):
    def explain(_i, dests):
        return "; ".join(f"{d}: {a!r}" for a, d in case.bindings if d in dests)
    return explain


def _headers_keys(case):
    return [f"headers={h!r}" for h in case.headers]


@pytest.mark.parametrize("which", ["headers_case", "nested_headers_case"])
def test_headers_broker_matches_the_reference(which, request, live_seed):
    """RabbitMQ 3.10's headers exchange agrees with reference.headers_match(compat='3.12')."""
    case = request.getfixturevalue(which)
    want = [reference.headers_route(plain_bindings(case.bindings), plain(h), compat="3.12") for h in case.headers]
    compare_routes(case.broker, want, _headers_keys(case), got_name="broker", want_name="reference",
                   seed=live_seed, explain=_explain_args(case))


@pytest.mark.parametrize("which", ["headers_case", "nested_headers_case"])
def test_headers_router_matches_the_broker(which, request, live_seed):
    """HeadersRouter(compat='3.12') gives RabbitMQ 3.10's answer for every message."""
    case = request.getfixturevalue(which)
    router = fastroute_class("HeadersRouter")(plain_bindings(case.bindings), compat="3.12")
    got = routes_as_sets(router.route(batch_of(case)), len(case.keys))
    compare_routes(got, case.broker, _headers_keys(case), got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=_explain_args(case))


# --------------------------------------------------------------------------- alternate exchange

@dataclass
class AlternateCase:
    """Three exchanges with alternates, observed on the broker."""

    topic: Observed     # topic exchange -> AE fanout to queue "ae"
    chain: Observed     # direct exchange -> AE topic exchange -> its AE fanout to queue "ae2"
    headers: Observed   # headers exchange -> AE fanout to queue "ae3"
    ae_bindings: list   # the chain's middle (topic) exchange bindings


@pytest.fixture(scope="module")
def alternate_case(rabbitmq, run_id, live_seed):
    """Topic, direct and headers exchanges declared with an ``alternate-exchange`` argument."""
    rng = random.Random(f"{live_seed}/alternate")
    keys = ["", "a", "a.b", "ключ", "zzz"] + [draw_key(rng) for _ in range(200)]
    with AmqpScratch(rabbitmq, f"fastroute.live.{run_id}.ae") as amqp:
        # topic exchange whose alternate is a fanout exchange with one queue
        fan = amqp.exchange("fanout")
        # patterns under a literal first word, so that "zzz" and "" always reach the alternate
        topic_bindings = [("a.#", "t0"), ("*.b", "t1")] + [(f"b.{draw_pattern(rng)}".rstrip("."), "t2")
                                                          for _ in range(4)]
        x = amqp.exchange("topic", arguments={"alternate-exchange": fan})
        queues = {d: amqp.queue() for d in ["t0", "t1", "t2", "ae"]}
        amqp.bind(queues["ae"], fan)
        for p, d in topic_bindings:
            amqp.bind(queues[d], x, p)
        topic = observe(amqp, x, queues, Observed(topic_bindings, keys, None))

        # direct -> topic -> fanout: a chain of two alternates
        fan2 = amqp.exchange("fanout")
        ae_bindings = [("a.#", "e0"), ("*", "e1"), ("#.b", "e1")]
        mid = amqp.exchange("topic", arguments={"alternate-exchange": fan2})
        direct_bindings = [("a", "r0"), ("a.b", "r1"), ("", "r1")]
        top = amqp.exchange("direct", arguments={"alternate-exchange": mid})
        queues = {d: amqp.queue() for d in ["r0", "r1", "e0", "e1", "ae2"]}
        amqp.bind(queues["ae2"], fan2)
        for p, d in ae_bindings:
            amqp.bind(queues[d], mid, p)
        for k, d in direct_bindings:
            amqp.bind(queues[d], top, k)
        chain = observe(amqp, top, queues, Observed(direct_bindings, keys, None))

        # headers exchange whose alternate is a fanout exchange
        fan3 = amqp.exchange("fanout")
        hx = amqp.exchange("headers", arguments={"alternate-exchange": fan3})
        # every binding tests header "a", so a message without headers always reaches the
        # alternate; message 1 carries binding g0's own values, so it never does
        header_bindings = [({**draw_args(rng, SCALARS), "a": rng.choice(SCALARS)}, f"g{i}") for i in range(4)]
        queues = {d: amqp.queue() for d in [d for _, d in header_bindings] + ["ae3"]}
        amqp.bind(queues["ae3"], fan3)
        for args, d in header_bindings:
            amqp.bind(queues[d], hx, "", arguments=args)
        headers = [None, {k: v for k, v in header_bindings[0][0].items() if k != "x-match"}]
        headers += [draw_headers(rng, SCALARS) for _ in keys[2:]]
        hcase = observe(amqp, hx, queues, Observed(header_bindings, keys, headers))
    return AlternateCase(topic, chain, hcase, ae_bindings)


def _alternate_reference(case: AlternateCase) -> dict:
    t, c, h = case.topic, case.chain, case.headers
    return {
        "topic": [alternate_route(reference.topic_route(t.bindings, k, "amqp"), lambda: {"ae"}) for k in t.keys],
        "chain": [alternate_route(reference.direct_route(c.bindings, k),
                                  lambda k=k: alternate_route(reference.topic_route(case.ae_bindings, k, "amqp"),
                                                              lambda: {"ae2"}))
                  for k in c.keys],
        "headers": [alternate_route(reference.headers_route(plain_bindings(h.bindings), plain(hd), compat="3.12"),
                                    lambda: {"ae3"})
                    for hd in h.headers],
    }


def test_alternate_broker_matches_the_reference(alternate_case, live_seed):
    """RabbitMQ sends a message to the alternate exchange exactly when its exchange routes nowhere."""
    want = _alternate_reference(alternate_case)
    for name, alternate in (("topic", "ae"), ("chain", "ae2"), ("headers", "ae3")):
        case = getattr(alternate_case, name)
        used = sum(alternate in dests for dests in want[name])
        assert 0 < used < len(case.keys), f"{name}: the case must exercise both paths, {used} use the alternate"
        compare_routes(case.broker, want[name], case.keys, got_name=f"broker ({name})",
                       want_name="reference", seed=live_seed)


def _alternate_router(case: AlternateCase, name: str):
    TopicRouter = fastroute_class("TopicRouter")
    if name == "topic":
        return TopicRouter(case.topic.bindings, dialect="amqp", alternate="ae")
    if name == "chain":
        return fastroute_class("DirectRouter")(
            case.chain.bindings, alternate=TopicRouter(case.ae_bindings, dialect="amqp", alternate="ae2"))
    return fastroute_class("HeadersRouter")(plain_bindings(case.headers.bindings), compat="3.12", alternate="ae3")


@pytest.mark.parametrize("name", ["topic", "chain", "headers"])
def test_alternate_router_matches_the_broker(alternate_case, name, live_seed):
    """alternate= (a name, or a router with its own alternate) reproduces RabbitMQ's alternate exchanges."""
    case = getattr(alternate_case, name)
    got = routes_as_sets(_alternate_router(alternate_case, name).route(batch_of(case)), len(case.keys))
    compare_routes(got, case.broker, case.keys, got_name=f"fastroute ({name})", want_name="broker",
                   seed=live_seed)
