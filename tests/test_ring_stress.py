"""Stress: several producers (threads, then processes) against one consumer. Sequence numbers,
keys and checksums prove that no message is lost, duplicated, reordered within its producer,
or torn."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import threading
import time
import uuid

import pytest

import fastroute as fr
from ring_workers import Tracker, produce, producer_process


@pytest.fixture
def name():
    n = f"fr-stress-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    yield n
    try:
        os.unlink(f"/dev/shm/{n}")
    except FileNotFoundError:
        pass


def stop(procs) -> None:
    """Join producers that finished; kill any still running (the consumer failed), so a failed
    check never leaves the test waiting on producers blocked on a full ring."""
    for p in procs:
        p.join(30)
        if p.exitcode is None:
            p.kill()
            p.join()


def consume(ring, tracker: Tracker, total: int, seed: int = 0) -> None:
    """Read until `total` messages arrived, mixing pop and pop_batch of random sizes."""
    rnd = random.Random(seed)
    while tracker.total < total:
        if rnd.random() < 0.2:
            tracker.see(ring.pop(timeout=60))
        else:
            tracker.see_batch(ring.pop_batch(rnd.randint(1, 500), timeout=60))
    with pytest.raises(fr.QueueEmpty):
        ring.pop(timeout=0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("capacity", [1 << 13, 1 << 16])
def test_threads_many_producers(capacity):
    """Four producer threads (single, batch and mixed pushes) into one mpsc ring."""
    ring = fr.Ring(capacity, contract="mpsc")
    modes = ["single", "batch", "mixed", "batch"]
    per = 4000
    threads = [threading.Thread(target=produce, args=(ring, who, per, mode))
               for who, mode in enumerate(modes)]
    for t in threads:
        t.start()
    tracker = Tracker(len(modes))
    consume(ring, tracker, per * len(modes))
    for t in threads:
        t.join(30)
    assert tracker.next == [per] * len(modes)
    assert len(ring) == 0 and ring.bytes_used == 0


@pytest.mark.timeout(120)
def test_thread_single_producer_spsc():
    """One producer thread into an spsc ring that wraps many times."""
    ring = fr.Ring(1 << 12, contract="spsc")
    per = 8000
    t = threading.Thread(target=produce, args=(ring, 0, per, "mixed"))
    t.start()
    tracker = Tracker(1)
    consume(ring, tracker, per, seed=3)
    t.join(30)
    assert tracker.next == [per]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_processes_many_producers(name, method):
    """Three producer processes, handed the ring by pickling (spawn / forkserver), into one
    mpsc ring small enough that producers block and the ring wraps many times."""
    ctx = mp.get_context(method)
    ring = fr.Ring.create(name, 1 << 14, contract="mpsc")
    modes = ["batch", "mixed", "single"]
    per = 3000
    start_at = time.time() + 1.0   # producers begin together, after all have started
    procs = [ctx.Process(target=producer_process, args=(ring, who, per, mode, start_at))
             for who, mode in enumerate(modes)]
    for p in procs:
        p.start()
    tracker = Tracker(len(modes))
    try:
        consume(ring, tracker, per * len(modes), seed=1)
    finally:
        stop(procs)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert tracker.next == [per] * len(modes)
    ring.unlink()


@pytest.mark.timeout(240)
def test_process_single_producer_spsc(name):
    """One producer process into an spsc ring."""
    ctx = mp.get_context("spawn")
    ring = fr.Ring.create(name, 1 << 13, contract="spsc")
    per = 6000
    p = ctx.Process(target=producer_process, args=(ring, 0, per, "mixed"))
    p.start()
    tracker = Tracker(1)
    try:
        consume(ring, tracker, per, seed=2)
    finally:
        stop([p])
    assert p.exitcode == 0 and tracker.next == [per]
    ring.unlink()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_processes_soak(name):
    """Longer run: four producer processes, a ring of minimum size, 50,000 messages each."""
    ctx = mp.get_context("spawn")
    ring = fr.Ring.create(name, 1 << 12, contract="mpsc")
    per = 50_000
    start_at = time.time() + 1.5
    procs = [ctx.Process(target=producer_process, args=(ring, who, per, mode, start_at))
             for who, mode in enumerate(["batch", "mixed", "single", "batch"])]
    for p in procs:
        p.start()
    tracker = Tracker(4)
    try:
        consume(ring, tracker, per * 4, seed=4)
    finally:
        stop(procs)
    assert tracker.next == [per] * 4
    ring.unlink()
