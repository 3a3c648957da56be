"""fastroute's MQTT topic matching held against a live Mosquitto (MQTT 5, QoS 1).

Each client is one destination and subscribes a few random filters; one publisher sends every
topic with its sequence number in the payload, and a fence message marks the end. What each
client received is compared with the reference and with ``TopicRouter(dialect="mqtt")``.
Mosquitto sends a client one copy per matching subscription, so the copies are counted
against the reference filter by filter, then reduced to one per client for the routers.
Shared subscriptions are checked for eligibility, exactly-one-per-group and round-robin
spread only, never for particular picks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

import reference

from ._mqtt import Subscriber, publish_round
from ._support import compare_routes, explain_bindings, fastroute_class, pick_words, routes_as_sets, seed_hint
from .reference_live import mqtt_copies, mqtt_shared_groups

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

FILTER_LEVELS = ["a", "b", "", "sport", "tennis", "é", "+", "+"]
TOPIC_LEVELS = ["a", "b", "", "sport", "tennis", "é", "ключ"]

SPECIAL_FILTERS = ["#", "+", "+/+", "/+", "/#", "sport/#", "sport", "sport/+", "+/tennis", "a//b", "a/+/+",
                   "$test/#", "$test/+", "$test", "+/+/#", "é/#", "ключ/+", "#"]
SPECIAL_TOPICS = ["/", "//", "sport", "sport/", "sport/tennis", "a//b", "a/b", "/a", "a", "é", "ключ/x",
                  "$test", "$test/a", "$test/", "$test/a/b", "a/b/c/d/e", "/".join(["a"] * 150),
                  "x" * 2000, "a/" + "é" * 500]


def draw_filter(rng: random.Random) -> str:
    """A valid filter: 1-4 levels ('+', empty ones included), maybe a final '#'; never empty."""
    if rng.random() < 0.1:
        return "$test/" + "/".join(pick_words(rng, FILTER_LEVELS, 0, 2) + ["#"])
    levels = pick_words(rng, FILTER_LEVELS, 1, 4)
    if rng.random() < 0.3:
        levels.append("#")
    return "/".join(levels) or "/"


def draw_topic(rng: random.Random) -> str:
    """A valid PUBLISH topic: 1-5 levels (empty ones included), never the empty string."""
    levels = pick_words(rng, TOPIC_LEVELS, 1, 5)
    if rng.random() < 0.15:
        levels[0] = "$test"
    return "/".join(levels) or "/"


@dataclass
class PlainCase:
    subscriptions: list   # (filter, client)
    topics: list
    copies: dict          # client -> Counter(seq -> copies)


@pytest.fixture(scope="module")
def plain_case(mosquitto, run_id, live_seed):
    """Six clients with overlapping random filters ('+', '#', '$' topics, empty levels)."""
    rng = random.Random(f"{live_seed}/mqtt")
    host, port = mosquitto
    clients = [f"c{i}" for i in range(6)]
    filters = {c: [] for c in clients}
    for i, f in enumerate(SPECIAL_FILTERS):
        filters[clients[i % len(clients)]].append(f)
    for c in clients:
        filters[c] += [draw_filter(rng) for _ in range(rng.randint(1, 3))]
    topics = SPECIAL_TOPICS + [draw_topic(rng) for _ in range(500)]
    tag, fence = f"{run_id}:plain:", f"fastroute-fence/{run_id}/plain"
    subs = {c: Subscriber(host, port, f"fastroute-{run_id}-{c}", tag) for c in clients}
    try:
        for c, sub in subs.items():
            sub.subscribe(filters[c] + [fence])
        publish_round(host, port, f"fastroute-{run_id}-pub", topics, tag, fence, list(subs.values()))
    finally:
        for sub in subs.values():
            sub.close()
    subscriptions = [(f, c) for c in clients for f in filters[c]]
    return PlainCase(subscriptions, topics, {c: subs[c].copies for c in clients})


def _filters_of(case, client) -> list:
    return [f for f, c in case.subscriptions if c == client]


def test_broker_copies_match_the_reference_per_filter(plain_case, live_seed):
    """Mosquitto sends a client one copy per distinct subscription whose filter matches (reference.mqtt_match)."""
    bad = []
    for client, got in plain_case.copies.items():
        filters = _filters_of(plain_case, client)
        for seq, topic in enumerate(plain_case.topics):
            want = mqtt_copies(filters, topic)
            if got.get(seq, 0) != want:
                hits = sorted({f for f in filters if reference.mqtt_match(f, topic)})
                bad.append(f"  #{seq} topic={topic[:80]!r} {client}: broker {got.get(seq, 0)} copies, "
                           f"reference {want} (matching filters {hits}, all {sorted(set(filters))})")
    if bad:
        pytest.fail(f"{len(bad)} (client, message) copy counts differ ({seed_hint(live_seed)}):\n"
                    + "\n".join(bad[:12]))


def _broker_sets(case) -> list:
    return [{c for c, got in case.copies.items() if got.get(seq)} for seq in range(len(case.topics))]


def test_broker_matches_the_reference(plain_case, live_seed):
    """The set of clients reached by each topic is the reference's topic_route(dialect='mqtt')."""
    want = [reference.topic_route(plain_case.subscriptions, t, "mqtt") for t in plain_case.topics]
    compare_routes(_broker_sets(plain_case), want, plain_case.topics, got_name="broker", want_name="reference",
                   seed=live_seed, explain=explain_bindings(plain_case.subscriptions))


def test_router_matches_the_broker(plain_case, live_seed):
    """TopicRouter(dialect='mqtt') reaches the clients Mosquitto delivered to, topic by topic."""
    import fastroute as fr

    router = fastroute_class("TopicRouter")(plain_case.subscriptions, dialect="mqtt")
    batch = fr.MessageBatch.from_pylist(keys=plain_case.topics)
    got = routes_as_sets(router.route(batch), len(plain_case.topics))
    compare_routes(got, _broker_sets(plain_case), plain_case.topics, got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=explain_bindings(plain_case.subscriptions))


# --------------------------------------------------------------------------- shared subscriptions

@dataclass
class SharedCase:
    subscriptions: list   # ("$share/..." or plain filter, client)
    topics: list
    received: list        # per message, the set of clients that got it
    copies: list          # (client, seq, copies) where a client got a message more than once


def shared_subscriptions(run_id: str) -> list:
    root = f"fastroute-{run_id}"
    return [
        *((f"$share/g1/{root}/+", m) for m in ("s0", "s1", "s2")),
        *((f"$share/g2/{root}/#", m) for m in ("s3", "s4")),
        # same share name, another filter: another group
        *((f"$share/g1/{root}/a/#", m) for m in ("s5", "s6")),
        # a filter that names a '$' topic literally
        *((f"$share/g3/$test/{run_id}/#", m) for m in ("s7", "s8")),
        (f"{root}/#", "w0"), (f"$test/{run_id}/#", "w0"),
    ]


@pytest.fixture(scope="module")
def shared_case(mosquitto, run_id, live_seed):
    """Shared groups (two with one share name), a '$' shared filter and a plain watcher."""
    rng = random.Random(f"{live_seed}/mqtt-shared")
    host, port = mosquitto
    root = f"fastroute-{run_id}"
    subscriptions = shared_subscriptions(run_id)
    choices = [root, f"{root}/a", f"{root}/b", f"{root}/", f"{root}/a/b", f"{root}/a/x/y",
               f"$test/{run_id}/a", f"$test/{run_id}"]
    topics = choices + [rng.choice(choices) for _ in range(400)]
    tag, fence = f"{run_id}:shared:", f"fastroute-fence/{run_id}/shared"
    clients = list(dict.fromkeys(c for _, c in subscriptions))
    subs = {c: Subscriber(host, port, f"fastroute-{run_id}-{c}", tag) for c in clients}
    try:
        for c, sub in subs.items():
            sub.subscribe([f for f, m in subscriptions if m == c] + [fence])
        publish_round(host, port, f"fastroute-{run_id}-spub", topics, tag, fence, list(subs.values()))
    finally:
        for sub in subs.values():
            sub.close()
    received = [{c for c in clients if subs[c].copies.get(seq)} for seq in range(len(topics))]
    copies = [(c, seq, n) for c in clients for seq, n in subs[c].copies.items() if n != 1]
    return SharedCase(subscriptions, topics, received, copies)


def check_shared(case: SharedCase, received: list, who: str) -> dict:
    """Assert exactly one member per eligible group and none elsewhere; return per-member counts.

    Also checks the plain subscription's client against reference.topic_route.
    """
    shared = [(f, m) for f, m in case.subscriptions if f.startswith("$share/")]
    plain = [(f, m) for f, m in case.subscriptions if not f.startswith("$share/")]
    counts = {m: 0 for _, m in shared}
    bad = []
    for seq, topic in enumerate(case.topics):
        got = received[seq]
        for (name, filt), eligible in mqtt_shared_groups(shared, topic).items():
            members = {m for f, m in shared if reference.mqtt_parse_shared(f) == (name, filt)}
            picked = got & members
            for m in picked:
                counts[m] += 1
            if len(picked) != (1 if eligible else 0) or not picked <= eligible:
                bad.append(f"  #{seq} topic={topic!r} group ({name!r}, {filt!r}): {who} delivered to "
                           f"{sorted(picked)}, eligible {sorted(eligible)}")
        want_plain = reference.topic_route(plain, topic, "mqtt")
        if got & {m for _, m in plain} != want_plain:
            bad.append(f"  #{seq} topic={topic!r} plain: {who} {sorted(got & {m for _, m in plain})}, "
                       f"reference {sorted(want_plain)}")
    assert not bad, f"{who}: {len(bad)} shared-subscription violations:\n" + "\n".join(bad[:12])
    return counts


def _spread(case: SharedCase, counts: dict) -> list:
    """Groups whose members' message counts differ by more than one (not round-robin)."""
    groups: dict = {}
    for f, m in case.subscriptions:
        if f.startswith("$share/"):
            groups.setdefault(f, []).append(m)
    return [(f, {m: counts[m] for m in ms}) for f, ms in groups.items()
            if max(counts[m] for m in ms) - min(counts[m] for m in ms) > 1]


def test_broker_shared_groups_deliver_to_exactly_one_eligible_member(shared_case):
    """Mosquitto gives each matching (share name, filter) group one member, once; '$' topics none."""
    assert shared_case.copies == []
    check_shared(shared_case, shared_case.received, "broker")


def test_broker_shared_groups_spread_round_robin(shared_case):
    """Mosquitto's members of a group receive within one message of each other (round-robin)."""
    counts = check_shared(shared_case, shared_case.received, "broker")
    assert _spread(shared_case, counts) == []
    eligible = {m for f, m in shared_case.subscriptions if f.startswith("$share/g1/") or f.startswith("$share/g2/")}
    assert all(counts[m] > 0 for m in eligible), counts


def test_router_shared_groups_deliver_to_exactly_one_eligible_member(shared_case):
    """TopicRouter(dialect='mqtt') picks one eligible member per group per message, round-robin-like."""
    import fastroute as fr

    router = fastroute_class("TopicRouter")(shared_case.subscriptions, dialect="mqtt")
    batch = fr.MessageBatch.from_pylist(keys=shared_case.topics)
    got = routes_as_sets(router.route(batch), len(shared_case.topics))
    counts = check_shared(shared_case, got, "fastroute")
    assert _spread(shared_case, counts) == []
