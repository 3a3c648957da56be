"""Process entry points and message functions shared by the ring's stress and crash tests.

Children are started with the spawn (or forkserver) method: numba's threading layer is not
fork-safe, and spawn is how users hand a Ring to other processes. Everything here is importable
at module level so a spawned child can find it.

Messages carry their producer, sequence number and a CRC of their body, so a consumer can prove
that nothing was lost, duplicated, reordered within a producer, or torn.
"""

from __future__ import annotations

import os
import random
import signal
import struct
import time
import zlib

import fastroute as fr

_HEAD = struct.Struct("<IIIII")  # producer, sequence, body crc32, body length, keyed (0/1)


def make_value(who: int, seq: int, size: int | None = None, keyed: bool = False) -> bytes:
    """The value of message ``seq`` of producer ``who``: a header then a body derived from both.
    ``keyed`` records that the message travels with ``make_key(who, seq)`` (pushed in a batch)."""
    if size is None:
        size = (seq * 37) % 181
    body = random.Random(who * 1_000_003 + seq).randbytes(size)
    return _HEAD.pack(who, seq, zlib.crc32(body), size, keyed) + body


def make_key(who: int, seq: int) -> bytes | None:
    """Keys vary too: null for some messages, empty for others."""
    if seq % 5 == 0:
        return None
    if seq % 5 == 1:
        return b""
    return f"{who}.{seq}".encode()


def check_value(value: bytes) -> tuple[int, int]:
    """(producer, sequence) of a value made by make_value; AssertionError when it is torn."""
    return _check(value)[:2]


def _check(value: bytes) -> tuple[int, int, bool]:
    who, seq, crc, size, keyed = _HEAD.unpack_from(value)
    body = value[_HEAD.size:]
    assert len(body) == size, f"message {who}/{seq}: body of {len(body)} bytes, expected {size}"
    assert zlib.crc32(body) == crc, f"message {who}/{seq}: body checksum mismatch"
    return who, seq, bool(keyed)


class Tracker:
    """Checks each producer's messages arrive once each, in order, intact."""

    def __init__(self, producers: int):
        self.next = [0] * producers

    def see(self, value: bytes, key=...) -> None:
        """Check one message; ``key`` is checked when given (pop_batch gives keys, pop does not)."""
        who, seq, keyed = _check(value)
        assert seq == self.next[who], f"producer {who}: got message {seq}, expected {self.next[who]}"
        if key is not ...:
            expected = make_key(who, seq) if keyed else None
            assert key == expected, f"producer {who} message {seq}: key {key!r}, expected {expected!r}"
        self.next[who] += 1

    def see_batch(self, batch) -> None:
        for key, value in zip(batch.keys.to_pylist(), batch.values.to_pylist()):
            self.see(value, key)

    @property
    def total(self) -> int:
        return sum(self.next)


def produce(ring, who: int, count: int, mode: str, start: int = 0) -> None:
    """Push messages start..start+count-1 of producer ``who``: singly, in batches, or mixed."""
    seq = start
    rnd = random.Random(who)
    while seq < start + count:
        single = mode == "single" or (mode == "mixed" and rnd.random() < 0.3)
        if single:
            ring.push(make_value(who, seq))
            seq += 1
            continue
        n = min(rnd.randint(1, 200), start + count - seq)
        batch = fr.MessageBatch.from_pylist(
            keys=[make_key(who, s) for s in range(seq, seq + n)],
            values=[make_value(who, s, keyed=True) for s in range(seq, seq + n)])
        assert ring.push_batch(batch) == n
        seq += n


def producer_process(ring, who: int, count: int, mode: str, start_at: float = 0.0) -> None:
    """A producer child: waits until ``start_at`` (time.time()) so producers overlap, then pushes."""
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    produce(ring, who, count, mode)


def stalled_producer_process(ring, before: int, length: int, stage: int, ready) -> None:
    """Push ``before`` messages, then stop in the middle of writing one, and wait to be killed."""
    produce(ring, 0, before, "single")
    ring._test_stall_producer(length, stage)
    ready.set()
    time.sleep(600)


def stalled_consumer_process(ring, pops: int, stage: int, ready) -> None:
    """Pop ``pops`` messages, then stop in the middle of reading the next, and wait to be killed."""
    for _ in range(pops):
        ring.pop()
    ring._test_stall_consumer(stage)
    ready.set()
    time.sleep(600)


def big_message_producer_process(ring, who: int, size: int, ready) -> None:
    """Push large messages until killed. The message is built once and only its header is
    rewritten, so nearly all the time goes to the copy into the ring: a kill at a random moment
    usually lands in the middle of a write."""
    body = random.Random(who).randbytes(size)
    crc = zlib.crc32(body)
    buf = bytearray(_HEAD.pack(who, 0, crc, size, 0) + body)
    seq = 0
    ready.set()
    while True:
        _HEAD.pack_into(buf, 0, who, seq, crc, size, 0)
        ring.push(buf)
        seq += 1


def counting_consumer_process(ring, last, ready) -> None:
    """Pop messages forever, storing the sequence number of each in ``last`` after the pop."""
    ready.set()
    while True:
        _, seq = check_value(ring.pop())
        last.value = seq


def kill(process) -> None:
    """SIGKILL a multiprocessing child (no cleanup runs in it) and reap it."""
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    assert process.exitcode == -signal.SIGKILL, f"child exit code {process.exitcode}"
