"""Crash safety: real processes killed with SIGKILL in the middle of a write or a read.

A producer killed mid-write must not wedge the consumer: once the liveness timeout has passed
and the producer's process is gone, the consumer skips the unfinished record, counts it and
warns. A consumer killed mid-read loses nothing committed: the next consumer reads it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
import uuid
import warnings

import pytest

import fastroute as fr
from ring_workers import (Tracker, big_message_producer_process, check_value,
                          counting_consumer_process, kill, make_value, produce,
                          stalled_consumer_process, stalled_producer_process)

LIVENESS = 0.3
ctx = mp.get_context("spawn")
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def name():
    n = f"fr-crash-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    yield n
    try:
        os.unlink(f"/dev/shm/{n}")
    except FileNotFoundError:
        pass


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _wait_zombie(pid: int) -> None:
    deadline = time.monotonic() + 10
    while _state(pid) != "Z":
        assert time.monotonic() < deadline, "killed child did not become a zombie"
        time.sleep(0.01)


@pytest.mark.parametrize("contract, stage", [("mpsc", 0), ("mpsc", 1), ("spsc", 1)])
@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_producer_killed_mid_write_is_skipped(name, contract, stage, reaped):
    """After a producer is SIGKILLed with a record half-written (stage 0: claimed, nothing
    written; stage 1: marker and half the body), the consumer reads everything before it,
    waits out the liveness timeout, skips the record with a warning, and reads everything
    after it; the ring keeps working. A killed child not yet reaped (a zombie) counts as gone."""
    ring = fr.Ring.create(name, 1 << 16, contract=contract, liveness_timeout=LIVENESS)
    ready = ctx.Event()
    p = ctx.Process(target=stalled_producer_process, args=(ring, 10, 1000, stage, ready))
    p.start()
    assert ready.wait(60)
    if reaped:
        kill(p)
    else:
        os.kill(p.pid, signal.SIGKILL)
        _wait_zombie(p.pid)
    produce(ring, 1, 10, "single")           # the next producer, after the dead one

    tracker = Tracker(2)
    for _ in range(10):
        tracker.see(ring.pop(timeout=10))
    with pytest.raises(fr.QueueEmpty):       # shorter than the liveness timeout: still waiting
        ring.pop(timeout=0)
    start = time.monotonic()
    with pytest.warns(RuntimeWarning, match="skipped 1 unfinished record") as caught:
        tracker.see(ring.pop(timeout=30))
    assert caught[0].filename == __file__   # the warning points at the caller's line
    assert time.monotonic() - start > LIVENESS / 2  # it waited for the timeout, not less
    while tracker.next[1] < 10:
        tracker.see_batch(ring.pop_batch(100, timeout=10))
    assert tracker.next == [10, 10]
    assert ring.skipped == 1 and len(ring) == 0 and ring.bytes_used == 0

    for lap in range(20):                     # the ring still wraps and fills normally
        assert ring.push_batch([make_value(2, lap * 100 + i) for i in range(100)]) == 100
        assert len(ring.pop_batch(1000, timeout=10)) == 100
    if not reaped:
        p.join()
    ring.unlink()


def test_live_stalled_producer_is_not_skipped(name):
    """A producer stopped mid-write whose process is still alive is waited for, never skipped
    (its later writes would land on reused space); once it is killed, it is skipped."""
    ring = fr.Ring.create(name, 1 << 16, liveness_timeout=0.1)
    ready = ctx.Event()
    p = ctx.Process(target=stalled_producer_process, args=(ring, 2, 500, 1, ready))
    p.start()
    assert ready.wait(60)
    produce(ring, 1, 3, "single")
    tracker = Tracker(2)
    tracker.see(ring.pop(timeout=10))
    tracker.see(ring.pop(timeout=10))
    with pytest.raises(fr.QueueEmpty):
        ring.pop(timeout=1.0)                 # ten liveness periods: still alive, still waiting
    assert ring.skipped == 0
    kill(p)
    with pytest.warns(RuntimeWarning):
        batch = ring.pop_batch(10, timeout=10)
    tracker.see_batch(batch)
    assert tracker.next == [2, 3] and ring.skipped == 1
    ring.unlink()


def test_consumer_waiting_through_a_dead_producer_with_no_timeout(name):
    """A consumer blocked with timeout=None when the producer dies mid-write is not wedged: it
    skips the record on its own once the liveness rule allows."""
    ring = fr.Ring.create(name, 1 << 16, liveness_timeout=LIVENESS)
    ready = ctx.Event()
    p = ctx.Process(target=stalled_producer_process, args=(ring, 0, 100, 1, ready))
    p.start()
    assert ready.wait(60)
    got = []
    consumer = threading.Thread(target=lambda: got.append(ring.pop()))
    with pytest.warns(RuntimeWarning):
        consumer.start()
        time.sleep(0.1)
        produce(ring, 1, 1, "single")
        kill(p)
        consumer.join(30)
    assert not consumer.is_alive()
    assert check_value(got[0]) == (1, 0)
    ring.unlink()


@pytest.mark.parametrize("contract", ["mpsc", "spsc"])
def test_producers_killed_at_random_points(name, contract):
    """Producers of 16 MiB messages SIGKILLed at random moments (usually in the middle of a
    copy): each time the consumer gets an unbroken, intact prefix of that producer's messages,
    skips at most one record (with one warning), and a later producer's messages all arrive."""
    ring = fr.Ring.create(name, 1 << 27, contract=contract, liveness_timeout=0.1)
    size = (1 << 27) // 8 - 64
    rnd = random.Random(11)
    tracker = Tracker(5)
    for who in range(4):
        ready = ctx.Event()
        p = ctx.Process(target=big_message_producer_process, args=(ring, who, size, ready))
        p.start()
        assert ready.wait(60)
        time.sleep(rnd.uniform(0.001, 0.02))
        kill(p)
        skipped_before = ring.skipped
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            while True:
                try:
                    tracker.see(ring.pop(timeout=0.5))
                except fr.QueueEmpty:
                    break
        assert all("unfinished record" in str(w.message) for w in caught)
        assert len(caught) == ring.skipped - skipped_before <= 1
        assert len(ring) == 0 and ring.bytes_used == 0
    produce(ring, 4, 30, "batch")
    while tracker.next[4] < 30:
        tracker.see_batch(ring.pop_batch(50, timeout=10))
    ring.unlink()


@pytest.mark.parametrize("contract", ["mpsc", "spsc"])
@pytest.mark.parametrize("stage", [0, 1], ids=["before-head", "after-head"])
def test_consumer_killed_mid_read_loses_nothing(name, contract, stage):
    """A consumer SIGKILLed while reading a message: killed before it stored its position, the
    next consumer reads that message again; killed after, the message counts as consumed and
    the half-finished cleanup is completed. Nothing else is lost and the ring keeps working."""
    ring = fr.Ring.create(name, 1 << 14, contract=contract)
    produce(ring, 0, 20, "single")
    ready = ctx.Event()
    p = ctx.Process(target=stalled_consumer_process, args=(ring, 3, stage, ready))
    p.start()
    assert ready.wait(60)
    kill(p)
    nxt = ring.pop(timeout=10)
    assert check_value(nxt) == (0, 3 + stage)
    tracker = Tracker(1)
    tracker.next[0] = 3 + stage
    tracker.see(nxt)
    while tracker.next[0] < 20:
        tracker.see_batch(ring.pop_batch(7, timeout=10))
    assert len(ring) == 0 and ring.bytes_used == 0
    # many laps over the space the dead reader held
    producer = threading.Thread(target=produce, args=(ring, 0, 2000, "mixed"), kwargs={"start": 20})
    producer.start()
    while tracker.next[0] < 2020:
        tracker.see_batch(ring.pop_batch(100, timeout=10))
    producer.join(30)
    assert len(ring) == 0 and ring.bytes_used == 0
    ring.unlink()


def test_consumer_killed_at_random_points(name):
    """A consumer killed at a random moment while a producer keeps the ring busy: the next
    consumer continues right after the last message the dead one finished (or with it), with
    no gap and no message lost."""
    ring = fr.Ring.create(name, 1 << 13)
    last = ctx.Value("q", -1, lock=False)
    ready = ctx.Event()
    total = 20_000
    producer = threading.Thread(target=produce, args=(ring, 0, total, "mixed"))
    p = ctx.Process(target=counting_consumer_process, args=(ring, last, ready))
    p.start()
    assert ready.wait(60)
    producer.start()
    time.sleep(random.Random(3).uniform(0.05, 0.3))
    kill(p)
    seen_by_dead = last.value
    assert seen_by_dead >= 0, "the consumer was killed before reading anything"
    first = ring.pop(timeout=10)
    _, seq = check_value(first)
    # the dead consumer may have taken one message it never reported; it loses nothing else
    assert seen_by_dead + 1 <= seq <= seen_by_dead + 2
    tracker = Tracker(1)
    tracker.next[0] = seq
    tracker.see(first)
    while tracker.next[0] < total:
        tracker.see_batch(ring.pop_batch(200, timeout=10))
    producer.join(30)
    ring.unlink()

