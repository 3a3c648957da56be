"""Helpers shared by the live-broker tests: router lookup, route comparison, case generation."""

from __future__ import annotations

import os
import random

import pytest

#: How many mismatching messages a failure message lists before it stops.
SHOWN = 12


def seed_hint(seed: int) -> str:
    return f"seed {seed}: rerun with FASTROUTE_LIVE_SEED={seed}"


def session_seed() -> int:
    """The seed every live case is drawn from: FASTROUTE_LIVE_SEED, or a fresh one per run."""
    value = os.environ.get("FASTROUTE_LIVE_SEED", "")
    return int(value) if value else random.SystemRandom().randrange(1 << 32)


def fastroute_class(name: str):
    """The public fastroute class ``name``; fails the test (never skips) while it is missing.

    The broker side of every case has already been observed (and checked against the
    reference by its own test) when this is called, so a missing router is reported as the
    only reason for the failure.
    """
    import fastroute

    try:
        return getattr(fastroute, name)
    except (AttributeError, ImportError) as exc:
        pytest.fail(f"fastroute.{name} is not available yet ({type(exc).__name__}: {exc}); "
                    "the broker's answers were collected but cannot be compared with it")


def routes_as_sets(routes, n: int) -> list:
    """Per message, the set of destination names of a Routes result.

    Also asserts the Routes contract the comparison relies on: n messages, and no
    destination listed twice for one message.
    """
    lists = routes.to_lists()
    assert len(lists) == n, f"router returned routes for {len(lists)} messages, expected {n}"
    for i, dests in enumerate(lists):
        assert len(set(dests)) == len(dests), f"message {i}: destination listed twice: {dests}"
    return [set(d) for d in lists]


def compare_routes(got: list, want: list, keys: list, *, got_name: str, want_name: str,
                   seed: int | None = None, explain=None) -> None:
    """Assert that two per-message lists of destination sets agree, naming every difference.

    ``explain(i, destinations)``, when given, returns text naming the bindings of those
    destinations, so that a failure says which binding, key and answers disagree.
    """
    assert len(got) == len(want) == len(keys)
    bad = [i for i in range(len(keys)) if set(got[i]) != set(want[i])]
    if not bad:
        return
    lines = [f"{len(bad)} of {len(keys)} messages differ between {got_name} and {want_name}"
             + (f" ({seed_hint(seed)})" if seed is not None else "") + ":"]
    for i in bad[:SHOWN]:
        g, w = set(got[i]), set(want[i])
        line = (f"  #{i} key={keys[i]!r}: {got_name}={sorted(g, key=str)} "
                f"{want_name}={sorted(w, key=str)}")
        if explain is not None:
            line += f"; bindings: {explain(i, g ^ w)}"
        lines.append(line)
    if len(bad) > SHOWN:
        lines.append(f"  … and {len(bad) - SHOWN} more")
    pytest.fail("\n".join(lines))


def explain_bindings(bindings):
    """An ``explain`` callback for compare_routes over (pattern, destination, ...) tuples."""
    def explain(_i, dests):
        return "; ".join(f"{d}: {[b[0] for b in bindings if b[1] == d]!r}" for d in sorted(dests, key=str))
    return explain


def pick_words(rng: random.Random, vocabulary, lo: int, hi: int) -> list:
    return [rng.choice(vocabulary) for _ in range(rng.randint(lo, hi))]
