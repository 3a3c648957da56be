"""fastroute's NATS subject matching and queue groups held against a live nats-server.

Destinations hold one or more subscriptions; one connection publishes every subject once with
its sequence number in the payload. The server sends one copy per matching subscription, so
copies are counted against the reference subscription by subscription, then reduced to one per
destination for the routers. Queue groups are checked for eligibility and exactly one member
per group name per message only: the server picks members at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

import reference

from ._nats import observe
from ._support import compare_routes, explain_bindings, fastroute_class, pick_words, routes_as_sets, seed_hint
from .reference_live import nats_copies, nats_queue_groups

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

FILTER_TOKENS = ["a", "a", "b", "foo*", "*bar", "a-b", "foo>bar", "ключ", "*", "*"]
SUBJECT_TOKENS = ["a", "a", "b", "foo*", "*bar", "a-b", "foo>bar", "ключ", "*", ">", "x"]

SPECIAL_FILTERS = [">", "*", "*.>", "a.>", "a.*", "foo*", "foo*.>", "*bar.b", "a-b.*", "ключ.>", "a.b.c",
                   "*.*.*", "foo>bar", "a"]
SPECIAL_SUBJECTS = ["a", "a.b", "a.b.c", "foo*", "*", ">", "a.*", "a.>", "*.*", "a..b", ".a", "a.", ".",
                    "foo>bar", "a-b.c", "ключ.x", "*bar.b", "foo*.x.y", ".".join(["a"] * 100), "b" * 1000]


def draw_filter(rng: random.Random) -> str:
    tokens = pick_words(rng, FILTER_TOKENS, 1, 4)
    if rng.random() < 0.3:
        tokens.append(">")
    return ".".join(tokens)


def draw_subject(rng: random.Random) -> str:
    tokens = pick_words(rng, SUBJECT_TOKENS, 1, 5)
    if rng.random() < 0.05:
        tokens.insert(rng.randint(0, len(tokens)), "")  # an empty token: no interest
    return ".".join(tokens)


@dataclass
class Case:
    subscriptions: list   # (filter, destination, queue group or None)
    subjects: list
    copies: dict          # destination -> Counter(seq -> copies)

    def received(self) -> list:
        return [{d for d, c in self.copies.items() if c.get(seq)} for seq in range(len(self.subjects))]


@pytest.fixture(scope="module")
def plain_case(nats_url, run_id, live_seed):
    """Six destinations with overlapping random subscriptions ('*', '>', literal 'foo*', 'a-b')."""
    rng = random.Random(f"{live_seed}/nats")
    dests = [f"d{i}" for i in range(6)]
    subscriptions = [(f, dests[i % len(dests)], None) for i, f in enumerate(SPECIAL_FILTERS)]
    subscriptions += [(draw_filter(rng), d, None) for d in dests for _ in range(rng.randint(1, 3))]
    subjects = SPECIAL_SUBJECTS + [draw_subject(rng) for _ in range(500)]
    copies = observe(nats_url, subscriptions, subjects, f"{run_id}:plain:")
    return Case(subscriptions, subjects, copies)


def test_broker_copies_match_the_reference_per_subscription(plain_case, live_seed):
    """nats-server sends one copy per subscription whose filter matches (reference.nats_match)."""
    bad = []
    for dest, got in plain_case.copies.items():
        filters = [f for f, d, _ in plain_case.subscriptions if d == dest]
        for seq, subject in enumerate(plain_case.subjects):
            want = nats_copies(filters, subject)
            if got.get(seq, 0) != want:
                hits = [f for f in filters if reference.nats_match(subject, f)]
                bad.append(f"  #{seq} subject={subject[:80]!r} {dest}: broker {got.get(seq, 0)} copies, "
                           f"reference {want} (matching {hits}, all {filters})")
    if bad:
        pytest.fail(f"{len(bad)} (destination, message) copy counts differ ({seed_hint(live_seed)}):\n"
                    + "\n".join(bad[:12]))


def test_broker_matches_the_reference(plain_case, live_seed):
    """The destinations reached by each subject are the reference's topic_route(dialect='nats')."""
    bindings = [(f, d) for f, d, _ in plain_case.subscriptions]
    want = [reference.topic_route(bindings, s, "nats") for s in plain_case.subjects]
    compare_routes(plain_case.received(), want, plain_case.subjects, got_name="broker", want_name="reference",
                   seed=live_seed, explain=explain_bindings(bindings))


def test_router_matches_the_broker(plain_case, live_seed):
    """TopicRouter(dialect='nats') reaches the destinations nats-server delivered to."""
    import fastroute as fr

    bindings = [(f, d) for f, d, _ in plain_case.subscriptions]
    router = fastroute_class("TopicRouter")(bindings, dialect="nats")
    got = routes_as_sets(router.route(fr.MessageBatch.from_pylist(keys=plain_case.subjects)),
                         len(plain_case.subjects))
    compare_routes(got, plain_case.received(), plain_case.subjects, got_name="fastroute", want_name="broker",
                   seed=live_seed, explain=explain_bindings(bindings))


# --------------------------------------------------------------------------- queue groups

def queue_subscriptions(root: str) -> list:
    return [
        (f"{root}.*", "m0", "g1"), (f"{root}.>", "m1", "g1"), (f"{root}.a", "m2", "g1"),
        (f"{root}.*.b", "m3", "g2"), (f"{root}.>", "m4", "g2"),
        (f"{root}.>", "w0", None),
    ]


@pytest.fixture(scope="module")
def queue_case(nats_url, run_id, live_seed):
    """Two queue groups whose members subscribe different, overlapping subjects; a plain watcher."""
    rng = random.Random(f"{live_seed}/nats-queue")
    root = f"fastroute-{run_id}"
    choices = [f"{root}.a", f"{root}.b", f"{root}.a.b", f"{root}.x.b", f"{root}.a.b.c", f"{root}..a", root]
    subjects = choices + [rng.choice(choices) for _ in range(600)]
    subscriptions = queue_subscriptions(root)
    return Case(subscriptions, subjects, observe(nats_url, subscriptions, subjects, f"{run_id}:queue:"))


def check_queue_groups(case: Case, received: list, who: str) -> dict:
    """Assert one eligible member per group name per message, and the watcher's exact set.

    Returns per member the number of messages it was eligible for and the number it got.
    """
    queued = [s for s in case.subscriptions if s[2] is not None]
    plain = [(f, d) for f, d, q in case.subscriptions if q is None]
    tally = {d: [0, 0] for _, d, _ in queued}
    bad = []
    for seq, subject in enumerate(case.subjects):
        got = received[seq]
        for queue, eligible in nats_queue_groups(queued, subject).items():
            members = {d for _, d, q in queued if q == queue}
            picked = got & members
            for m in eligible:
                tally[m][0] += 1
            for m in picked:
                tally[m][1] += 1
            if len(picked) != (1 if eligible else 0) or not picked <= eligible:
                bad.append(f"  #{seq} subject={subject!r} group {queue}: {who} delivered to {sorted(picked)}, "
                           f"eligible {sorted(eligible)}")
        want_plain = reference.topic_route(plain, subject, "nats")
        if got - set(tally) != want_plain:
            bad.append(f"  #{seq} subject={subject!r} plain: {who} {sorted(got - set(tally))}, "
                       f"reference {sorted(want_plain)}")
    assert not bad, f"{who}: {len(bad)} queue-group violations:\n" + "\n".join(bad[:12])
    return tally


def _starved(tally: dict) -> list:
    """Members eligible for at least 100 messages that got none.

    With at most three eligible members drawn uniformly, that has probability below
    (2/3)^100 ≈ 2e-18 for a fair picker.
    """
    return [m for m, (eligible, got) in tally.items() if eligible >= 100 and got == 0]


def test_broker_queue_groups_deliver_to_exactly_one_eligible_member(queue_case):
    """nats-server gives each queue group (by name, across subjects) one eligible member per message."""
    assert all(n == 1 for c in queue_case.copies.values() for n in c.values())
    tally = check_queue_groups(queue_case, queue_case.received(), "broker")
    assert _starved(tally) == [], tally


def test_router_queue_groups_deliver_to_exactly_one_eligible_member(queue_case):
    """TopicRouter(dialect='nats') picks one eligible member per queue group and message, spread over all."""
    import fastroute as fr

    bindings = [(f, d) if q is None else (f, d, q) for f, d, q in queue_case.subscriptions]
    router = fastroute_class("TopicRouter")(bindings, dialect="nats", seed=None)
    got = routes_as_sets(router.route(fr.MessageBatch.from_pylist(keys=queue_case.subjects)),
                         len(queue_case.subjects))
    tally = check_queue_groups(queue_case, got, "fastroute")
    assert _starved(tally) == [], tally
