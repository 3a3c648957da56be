"""Round-robin and random routers: reference agreement, state across batches, distribution, errors."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
import reference_hashing as rh

NAMES = st.sampled_from(["q0", "q1", "q2", "q3", "q4", 7])
DESTINATIONS = st.lists(NAMES, min_size=1, max_size=8)
SIZES = st.lists(st.integers(0, 30), max_size=5)


def batch_of(n: int) -> fr.MessageBatch:
    return fr.MessageBatch(fr.BinaryColumn.nulls(n))


def picks(routes: fr.Routes) -> list:
    """The single destination name of every message (each must have exactly one)."""
    lists = routes.to_lists()
    assert all(len(x) == 1 for x in lists)
    return [x[0] for x in lists]


def chi_square(observed: np.ndarray, probabilities: np.ndarray) -> float:
    expected = observed.sum() * probabilities
    return float(((observed - expected) ** 2 / expected).sum())


def six_sigma(df: int) -> float:
    return df + 6 * math.sqrt(2 * df)


# ----------------------------------------------------------------------------- round-robin

def test_round_robin_cycles_and_continues():
    """Each message takes the next destination; the next batch continues the cycle."""
    router = fr.RoundRobinRouter(["a", "b", "c"])
    assert picks(router.route(batch_of(7))) == ["a", "b", "c", "a", "b", "c", "a"]
    assert router.cursor == 1
    assert picks(router.route(batch_of(2))) == ["b", "c"]


def test_round_robin_repeated_destination_is_listed_twice():
    """A destination listed twice appears twice in the cycle; names stay unique."""
    router = fr.RoundRobinRouter(["a", "b", "a"])
    routes = router.route(batch_of(6))
    assert routes.names == ["a", "b"]
    assert picks(routes) == ["a", "b", "a", "a", "b", "a"]


@given(destinations=DESTINATIONS, sizes=SIZES)
def test_round_robin_matches_reference_across_batches(destinations, sizes):
    """Batches of any sizes give the reference cycle of their concatenation."""
    router = fr.RoundRobinRouter(destinations)
    got = []
    for n in sizes:
        routes = router.route(batch_of(n))
        np.testing.assert_array_equal(routes.offsets, np.arange(n + 1))
        got += picks(routes)
    assert got == rh.round_robin(destinations, 0, sum(sizes))
    assert router.cursor == sum(sizes) % len(destinations)


def test_round_robin_ignores_keys():
    """The key plays no part: list input with any keys cycles the same."""
    router = fr.RoundRobinRouter(["x", "y"])
    assert picks(router.route([b"k", None, "z", b""])) == ["x", "y", "x", "y"]


def test_round_robin_concurrent_batches_take_disjoint_runs():
    """Threads routing at once still hand out the cycle evenly (no entry is taken twice)."""
    router = fr.RoundRobinRouter(["a", "b", "c", "d", "e"])
    totals = []

    def work():
        for _ in range(200):
            totals.append(router.route(batch_of(7)).counts())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = {name: sum(c[name] for c in totals) for name in "abcde"}
    expected = rh.round_robin(list("abcde"), 0, 4 * 200 * 7)
    assert merged == {name: expected.count(name) for name in "abcde"}


def test_round_robin_empty_routes_nowhere_or_to_alternate():
    """No destinations: every message is unroutable, and goes to the alternate if set."""
    assert fr.RoundRobinRouter([]).route(batch_of(3)).unroutable().tolist() == [0, 1, 2]
    assert fr.RoundRobinRouter([], alternate="dlq").route(batch_of(2)).to_lists() == [["dlq"], ["dlq"]]


def test_round_robin_single_destination():
    """One destination receives every message."""
    assert picks(fr.RoundRobinRouter([5]).route(batch_of(4))) == [5, 5, 5, 5]


def test_round_robin_is_stateful_and_has_a_repr():
    """The router declares its state and shows its cycle and cursor."""
    router = fr.RoundRobinRouter(["a", "b"])
    router.route(batch_of(3))
    assert router.stateful
    assert repr(router) == "RoundRobinRouter(['a', 'b'], cursor=1)"


@pytest.mark.parametrize("bad", ["abc", b"ab", 5, None, {"a", "b"}])
def test_round_robin_rejects_non_sequences(bad):
    """destinations must be an ordered sequence of names, not a string, a set or a scalar."""
    with pytest.raises(TypeError, match="destinations must be an ordered sequence"):
        fr.RoundRobinRouter(bad)
    with pytest.raises(TypeError, match="destinations must be an ordered sequence"):
        fr.RandomRouter(bad)


@pytest.mark.parametrize("bad", [[["a"]], [None], ["a", {}]])
def test_round_robin_rejects_bad_names(bad):
    """A name must be hashable and not None; the error names the entry."""
    with pytest.raises(TypeError, match="destination"):
        fr.RoundRobinRouter(bad)


# ----------------------------------------------------------------------------- random

@given(destinations=DESTINATIONS, sizes=SIZES, seed=st.integers(0, 2**64), data=st.data())
def test_random_matches_reference_across_batches(destinations, sizes, seed, data):
    """Picks equal the reference stream, weighted or not, however the stream is cut into batches."""
    weights = data.draw(st.none() | st.lists(st.sampled_from([0, 0.5, 1, 2, 3.25, 1e-3]),
                                             min_size=len(destinations), max_size=len(destinations))
                        .filter(lambda w: sum(w) > 0))
    router = fr.RandomRouter(destinations, seed=seed, weights=weights)
    got = []
    for n in sizes:
        routes = router.route(batch_of(n))
        np.testing.assert_array_equal(routes.offsets, np.arange(n + 1))
        got += picks(routes)
    assert got == rh.random_pick(destinations, seed, 0, sum(sizes), weights)
    assert router.draws == sum(sizes)
    if weights is not None:
        zero = {d for d in destinations if sum(w for e, w in zip(destinations, weights) if e == d) == 0}
        assert not zero & set(got)


def test_random_is_uniform():
    """1M messages over 10 destinations (fixed seed): chi-square within 6 sigma."""
    names = [f"q{k}" for k in range(10)]
    counts = fr.RandomRouter(names, seed=2024).route(batch_of(1_000_000)).counts()
    observed = np.array([counts[n] for n in names], float)
    assert chi_square(observed, np.full(10, 0.1)) < six_sigma(9)


def test_random_listed_twice_weighs_double():
    """As in x-random, a destination listed twice is drawn twice as often."""
    counts = fr.RandomRouter(["a", "b", "a"], seed=1).route(batch_of(300_000)).counts()
    observed = np.array([counts["a"], counts["b"]], float)
    assert chi_square(observed, np.array([2 / 3, 1 / 3])) < six_sigma(1)


def test_random_weights_set_the_proportions():
    """Weights 1, 0, 3: the zero weight is never drawn, the others split 1:3."""
    counts = fr.RandomRouter(["a", "b", "c"], seed=5, weights=[1, 0, 3]).route(batch_of(400_000)).counts()
    assert counts["b"] == 0
    observed = np.array([counts["a"], counts["c"]], float)
    assert chi_square(observed, np.array([0.25, 0.75])) < six_sigma(1)


def test_random_weights_of_a_repeated_destination_add_up():
    """A destination listed twice with weights 1 and 2 weighs 3."""
    counts = fr.RandomRouter(["a", "b", "a"], seed=9, weights=[1, 3, 2]).route(batch_of(300_000)).counts()
    observed = np.array([counts["a"], counts["b"]], float)
    assert chi_square(observed, np.array([0.5, 0.5])) < six_sigma(1)


def test_random_seed_fixes_the_picks():
    """Same seed, same picks; another seed or fresh entropy, other picks."""
    names = [f"q{k}" for k in range(50)]
    a = fr.RandomRouter(names, seed=3).route(batch_of(500)).destinations
    b = fr.RandomRouter(names, seed=3).route(batch_of(500)).destinations
    c = fr.RandomRouter(names, seed=4).route(batch_of(500)).destinations
    d = fr.RandomRouter(names).route(batch_of(500)).destinations
    e = fr.RandomRouter(names).route(batch_of(500)).destinations
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(d, e)


def test_random_state_carries_across_batches():
    """The second batch continues the stream rather than repeating the first."""
    names = [f"q{k}" for k in range(50)]
    router = fr.RandomRouter(names, seed=8, weights=list(range(1, 51)))
    first = router.route(batch_of(400)).destinations
    second = router.route(batch_of(400)).destinations
    assert not np.array_equal(first, second)
    whole = fr.RandomRouter(names, seed=8, weights=list(range(1, 51))).route(batch_of(800)).destinations
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_random_fewer_than_two_destinations():
    """x-random: one destination gets everything; none routes nothing (alternate if set)."""
    assert picks(fr.RandomRouter(["only"], seed=1).route(batch_of(5))) == ["only"] * 5
    assert picks(fr.RandomRouter(["only"], seed=1, weights=[0.2]).route(batch_of(3))) == ["only"] * 3
    assert fr.RandomRouter([]).route(batch_of(2)).unroutable().tolist() == [0, 1]
    assert fr.RandomRouter([], alternate="dlq").route(batch_of(2)).to_lists() == [["dlq"], ["dlq"]]


def test_random_concurrent_batches_use_disjoint_draws():
    """Threads routing at once together consume exactly the stream's first draws."""
    names = [f"q{k}" for k in range(8)]
    router = fr.RandomRouter(names, seed=12)
    totals = []

    def work():
        for _ in range(100):
            totals.append(router.route(batch_of(9)).counts())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = fr.RandomRouter(names, seed=12).route(batch_of(4 * 100 * 9)).counts()
    assert {n: sum(c[n] for c in totals) for n in names} == expected
    assert router.draws == 3600


def test_random_is_stateful_and_has_a_repr():
    """The router declares its state and shows destinations, weights and seed."""
    router = fr.RandomRouter(["a", "b", "a"], seed=2, weights=[1, 2, 3])
    assert router.stateful and router.seed == 2
    assert repr(router) == "RandomRouter(['a', 'b', 'a'], weights=[1.0, 2.0, 3.0], seed=2)"


@pytest.mark.parametrize("weights, match", [
    ([1, 2], r"one entry per destination \(3\), got 2: \[1, 2\]"),
    ([1, -1, 1], r"weights\[1\] must be finite and non-negative, got -1.0"),
    ([1, float("nan"), 1], r"weights\[1\] must be finite and non-negative, got nan"),
    ([1, 1, float("inf")], r"weights\[2\] must be finite and non-negative, got inf"),
    ([0, 0, 0], r"positive, finite sum, got \[0.0, 0.0, 0.0\]"),
    ([1e308, 1e308, 1e308], r"positive, finite sum"),
    ([1, "2", 1], r"weights\[1\] must be a number, got '2'"),
    ([1, None, 1], r"weights\[1\] must be a number, got None"),
    ([1, True, 1], r"weights\[1\] must be a number, got True"),
    (5, r"weights must be a sequence of numbers, got 5"),
    ("abc", r"weights must be a sequence of numbers, got 'abc'"),
])
def test_random_rejects_bad_weights(weights, match):
    """Weights must be finite, non-negative numbers, one per destination, with a positive sum."""
    with pytest.raises(ValueError, match=match):
        fr.RandomRouter(["a", "b", "c"], weights=weights)


@pytest.mark.parametrize("bad", [-1, 0.5, "1", True])
def test_random_rejects_a_bad_seed(bad):
    """The seed must be None or a non-negative int."""
    with pytest.raises(ValueError, match="seed"):
        fr.RandomRouter(["a"], seed=bad)


def test_random_accepts_iterators():
    """Destinations and weights may be any ordered iterables, generators included."""
    router = fr.RandomRouter((d for d in "ab"), seed=1, weights=iter([0, 1]))
    assert picks(router.route(batch_of(3))) == ["b", "b", "b"]


def test_random_numpy_weights_and_seed():
    """numpy numbers are accepted as weights and seed."""
    router = fr.RandomRouter(["a", "b"], seed=np.int64(4), weights=np.array([1.0, 0.0]))
    assert picks(router.route(batch_of(3))) == ["a", "a", "a"]
