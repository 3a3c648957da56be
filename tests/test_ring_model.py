"""Hypothesis state machines: a Ring driven by random operations behaves like the reference model
in tests/reference_ring.py (a deque plus the ring's exact space accounting)."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import fastroute as fr
from reference_ring import RingModel, record_size

CAPACITY = 4096

small = st.binary(max_size=120)
sized = st.one_of(small, st.binary(min_size=300, max_size=CAPACITY // 8))
maybe = st.one_of(st.none(), small)


class RingMachine(RuleBasedStateMachine):
    """One producer and one consumer in one thread, with every call non-blocking."""

    contract = "mpsc"

    def __init__(self):
        super().__init__()
        self.ring = fr.Ring(CAPACITY, contract=self.contract)
        self.model = RingModel(CAPACITY)

    def teardown(self):
        self.ring.detach()

    @rule(value=sized)
    def push(self, value):
        if self.model.closed:
            with pytest.raises(fr.QueueClosed):
                self.ring.push(value, timeout=0)
            return
        if self.model.push(None, value):
            self.ring.push(value, timeout=0)
        else:
            with pytest.raises(fr.QueueFull):
                self.ring.push(value, timeout=0)

    @rule(extra=st.integers(1, 64))
    def push_too_big(self, extra):
        with pytest.raises(fr.QueueFull, match=str(CAPACITY // 8)):
            self.ring.push(b"x" * (CAPACITY // 8 + extra), timeout=0)

    @rule(items=st.lists(st.tuples(maybe, st.one_of(st.none(), sized)), min_size=1, max_size=40))
    def push_batch(self, items):
        batch = fr.MessageBatch.from_pylist(keys=[k for k, _ in items], values=[v for _, v in items])
        # the size check comes first: it does not depend on the ring's state
        if any(self.model.too_big(k, v) for k, v in items):
            with pytest.raises(fr.QueueFull, match="nothing was pushed"):
                self.ring.push_batch(batch, timeout=0)
            return
        if self.model.closed:
            with pytest.raises(fr.QueueClosed):
                self.ring.push_batch(batch, timeout=0)
            return
        want = self.model.push_batch(items)
        if want == 0:
            with pytest.raises(fr.QueueFull):
                self.ring.push_batch(batch, timeout=0)
        else:
            assert self.ring.push_batch(batch, timeout=0) == want

    @rule()
    def pop(self):
        got = self.model.pop()
        if got is None:
            expected = fr.QueueClosed if self.model.closed else fr.QueueEmpty
            with pytest.raises(expected):
                self.ring.pop(timeout=0)
        else:
            assert self.ring.pop(timeout=0) == got[1]

    @rule(max_messages=st.integers(1, 50), max_bytes=st.one_of(st.none(), st.integers(0, 2000)))
    def pop_batch(self, max_messages, max_bytes):
        want = self.model.pop_batch(max_messages, max_bytes)
        if not want:
            expected = fr.QueueClosed if self.model.closed else fr.QueueEmpty
            with pytest.raises(expected):
                self.ring.pop_batch(max_messages, max_bytes, timeout=0)
            return
        batch = self.ring.pop_batch(max_messages, max_bytes, timeout=0)
        assert batch.keys.to_pylist() == [k for k, _ in want]
        assert batch.values.to_pylist() == [v for _, v in want]

    @precondition(lambda self: not self.model.closed)
    @rule(data=st.data())
    def close(self, data):
        # rare: most runs should exercise a long open life first
        if data.draw(st.integers(0, 9)) == 0:
            self.model.closed = True
            self.ring.close()

    @invariant()
    def same_size(self):
        assert len(self.ring) == len(self.model)
        assert self.ring.bytes_used == self.model.bytes_used
        assert self.ring.closed == self.model.closed


class SpscRingMachine(RingMachine):
    contract = "spsc"


# max_examples comes from the hypothesis profile (conftest.py): "ci" by default, "long" for soak runs
TestRingMachine = RingMachine.TestCase
TestRingMachine.settings = settings(stateful_step_count=80, deadline=None)
TestSpscRingMachine = SpscRingMachine.TestCase
TestSpscRingMachine.settings = settings(stateful_step_count=80, deadline=None)


def test_record_size_reference():
    """The reference's record sizes match the layout in ring.h on hand-computed cases."""
    assert record_size(None, b"") == 8
    assert record_size(None, b"x") == 16
    assert record_size(None, b"x" * 8) == 16
    assert record_size(b"", b"") == 16          # header + key length word, padded
    assert record_size(b"k", None) == 16
    assert record_size(b"abcd", b"x" * 100) == 120


def test_model_matches_ring_at_the_wrap():
    """A record that does not fit before the end costs a padding record, in ring and model."""
    ring, model = fr.Ring(CAPACITY), RingModel(CAPACITY)
    value = b"v" * 500                            # 512-byte records: 8 fill the ring
    for _ in range(7):
        assert model.push(None, value)
        ring.push(value, timeout=0)
    for _ in range(3):
        assert ring.pop(timeout=0) == model.pop()[1]
    small_value = b"s" * 100                      # 112 bytes: leaves 400 before the end
    assert model.push(None, small_value)
    ring.push(small_value, timeout=0)
    assert model.push(None, value)                # needs a 400-byte pad, then wraps
    ring.push(value, timeout=0)
    assert ring.bytes_used == model.bytes_used == 7 * 512 + 112 + 400 + 512 - 3 * 512
    assert len(ring) == len(model) == 6
