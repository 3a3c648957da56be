"""Ring: the Python API (construction, naming, push/pop, batches, blocking, close, errors)."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import struct
import threading
import time
import uuid
from multiprocessing import shared_memory

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
from reference_ring import record_size


@pytest.fixture
def name():
    """A fresh ring name, unlinked after the test if the test left it behind."""
    n = f"fr-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    yield n
    try:
        os.unlink(f"/dev/shm/{n}")
    except FileNotFoundError:
        pass


@pytest.fixture(params=["mpsc", "spsc"])
def ring(request):
    r = fr.Ring(1 << 16, contract=request.param)
    yield r
    r.detach()


def later(delay, fn, *args):
    """Run fn(*args) in a thread after `delay` seconds; returns the started thread."""
    def run():
        time.sleep(delay)
        fn(*args)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------- construction

@pytest.mark.parametrize("capacity, rule", [
    (4095, "at least 4096"), (1000, "at least 4096"), (0, "at least 4096"),
    (3 << 12, "power of two"), (4097, "power of two"), (1 << 33, "at most 4294967296"),
])
def test_bad_capacity_names_the_rule(capacity, rule):
    """A capacity that is too small, too large or not a power of two raises ValueError naming
    the rule (for anonymous and named rings alike)."""
    with pytest.raises(ValueError, match=rule):
        fr.Ring(capacity)
    with pytest.raises(ValueError, match=rule):
        fr.Ring.create("never-created", capacity)
    assert not os.path.exists("/dev/shm/never-created")


@pytest.mark.parametrize("capacity", [4096.0, "4096", True, None])
def test_capacity_must_be_an_int(capacity):
    """A capacity that is not an int raises TypeError naming the type."""
    with pytest.raises(TypeError, match="capacity must be an int"):
        fr.Ring(capacity)


def test_bad_contract_and_liveness():
    """Unknown contracts and non-positive liveness timeouts are refused by name."""
    with pytest.raises(ValueError, match="'spsc'.*'mpsc'.*got 'mpmc'"):
        fr.Ring(4096, contract="mpmc")
    with pytest.raises(ValueError, match="liveness_timeout"):
        fr.Ring(4096, liveness_timeout=0)


def test_properties(ring):
    """capacity, max_message, contract, name, len, bytes_used and closed describe the ring."""
    assert ring.capacity == 1 << 16
    assert ring.max_message == (1 << 16) // 8
    assert ring.contract in ("mpsc", "spsc")
    assert ring.name is None
    assert len(ring) == 0 and ring.bytes_used == 0 and not ring.closed
    ring.push(b"abc")
    ring.push(b"")
    assert len(ring) == 2
    assert ring.bytes_used == record_size(None, b"abc") + record_size(None, b"")
    assert "len=2" in repr(ring) and "capacity=65536" in repr(ring)


# ---------------------------------------------------------------- naming and processes

def test_create_attach_unlink(name):
    """A named ring is shared memory of mode 0600 that attach() opens with the creator's
    capacity and contract; unlink() removes the name and mapped handles keep working."""
    a = fr.Ring.create(name, 1 << 14, contract="spsc")
    st_ = os.stat(f"/dev/shm/{name}")
    assert stat.S_IMODE(st_.st_mode) == 0o600
    b = fr.Ring.attach(name)
    assert (b.capacity, b.contract, b.name) == (1 << 14, "spsc", name)
    a.push(b"one")
    assert b.pop(timeout=0) == b"one"
    a.unlink()
    assert not os.path.exists(f"/dev/shm/{name}")
    a.push(b"two")
    assert b.pop(timeout=0) == b"two"
    with pytest.raises(FileNotFoundError):
        a.unlink()


def test_create_refuses_existing_name(name):
    """Creating a ring under a taken name raises FileExistsError naming it."""
    a = fr.Ring.create(name, 4096)
    with pytest.raises(FileExistsError, match=name):
        fr.Ring.create(name, 4096)
    a.unlink()


def test_attach_missing_name():
    """Attaching to a name that does not exist raises FileNotFoundError naming it."""
    with pytest.raises(FileNotFoundError, match="no such ring"):
        fr.Ring.attach(f"fr-missing-{uuid.uuid4().hex}")


def test_attach_to_memory_that_is_not_a_ring(name):
    """Shared memory without the ring magic is refused with a clear ValueError."""
    shm = shared_memory.SharedMemory(name, create=True, size=4096 + 1024)
    try:
        shm.buf[:8] = b"NOTARING"
        with pytest.raises(ValueError, match="not a fastroute ring"):
            fr.Ring.attach(name)
    finally:
        shm.close()
        shm.unlink()


def test_attach_to_ring_of_another_version(name):
    """A ring whose header says another layout version is refused, naming both versions."""
    r = fr.Ring.create(name, 4096)
    with open(f"/dev/shm/{name}", "r+b") as f:   # version: uint32 after the 8-byte magic
        f.seek(8)
        f.write(struct.pack("<I", 77))
    with pytest.raises(ValueError, match="version 77.*reads version 1"):
        fr.Ring.attach(name)
    r.unlink()


def test_attach_to_ring_with_wrong_size(name):
    """A header whose capacity disagrees with the memory's size is not trusted."""
    r = fr.Ring.create(name, 4096)
    with open(f"/dev/shm/{name}", "r+b") as f:   # capacity: uint64 at offset 16
        f.seek(16)
        f.write(struct.pack("<Q", 1 << 20))
    with pytest.raises(ValueError, match="not a fastroute ring"):
        fr.Ring.attach(name)
    r.unlink()


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 201, ".", "..", "nul\0"])
def test_bad_names(bad):
    """Names that cannot be a shared-memory object name are refused."""
    with pytest.raises(ValueError, match="ring name"):
        fr.Ring.create(bad, 4096)


def test_pickle_by_name(name):
    """A named ring pickles by name: unpickling attaches to the same memory."""
    r = fr.Ring.create(name, 4096, liveness_timeout=1.5)
    twin = pickle.loads(pickle.dumps(r))
    assert twin.name == name and twin.liveness_timeout == 1.5
    twin.push(b"via twin")
    assert r.pop(timeout=0) == b"via twin"
    r.unlink()


def test_anonymous_ring_does_not_pickle():
    """Pickling an anonymous ring raises TypeError pointing at Ring.create."""
    with pytest.raises(TypeError, match="Ring.create"):
        pickle.dumps(fr.Ring(4096))


# ---------------------------------------------------------------- single messages

def test_push_accepts_bytes_like(ring):
    """bytes, bytearray and memoryviews (contiguous or not) go in; other types do not."""
    ring.push(b"bytes")
    ring.push(bytearray(b"bytearray"))
    ring.push(memoryview(b"view"))
    ring.push(memoryview(b"s-t-r-i-d-e-d")[::2])
    ring.push(np.arange(4, dtype=np.uint8).data)
    ring.push(memoryview(np.array([1, 2], dtype="<i4")))   # 2 items, 8 bytes
    assert [ring.pop(timeout=0) for _ in range(6)] == [
        b"bytes", b"bytearray", b"view", b"strided", b"\x00\x01\x02\x03",
        b"\x01\x00\x00\x00\x02\x00\x00\x00"]
    class Raw(bytes):
        pass

    ring.push(Raw(b"subclass"))
    ring.push(np.array([[1, 2], [3, 4]], dtype=np.uint8))     # any contiguous buffer
    ring.push(np.array([[1, 2], [3, 4]], dtype=np.uint8).T)   # a non-contiguous one is copied
    assert [ring.pop(timeout=0) for _ in range(3)] == [b"subclass", b"\x01\x02\x03\x04",
                                                       b"\x01\x03\x02\x04"]
    with pytest.raises(TypeError, match="got str; encode it first"):
        ring.push("text")
    with pytest.raises(TypeError, match="got int"):
        ring.push(5)


def test_pop_order_and_empty(ring):
    """Messages come out in order; timeout=0 on an empty ring raises QueueEmpty at once."""
    for i in range(100):
        ring.push(b"m%d" % i)
    assert [ring.pop(timeout=0) for _ in range(100)] == [b"m%d" % i for i in range(100)]
    with pytest.raises(fr.QueueEmpty):
        ring.pop(timeout=0)
    with pytest.raises(fr.QueueEmpty):
        ring.pop(timeout=0.01)


def test_full_with_timeout_zero_and_too_big():
    """A full ring refuses at once with timeout=0; a message over capacity/8 is refused at
    once even with timeout=None, naming the limit."""
    r = fr.Ring(4096)
    while True:
        try:
            r.push(b"x" * 56, timeout=0)
        except fr.QueueFull as e:
            assert "no room" in str(e)
            break
    assert len(r) == 4096 // 64
    with pytest.raises(fr.QueueFull, match="limit of 512 bytes"):
        r.push(b"x" * 513, timeout=None)
    r.pop(timeout=0)
    r.push(b"x" * 56, timeout=0)


def test_large_messages_round_trip():
    """Messages up to capacity/8 (beyond the pop scratch buffer) come back intact."""
    r = fr.Ring(1 << 20)
    rng = np.random.default_rng(1)
    sizes = [0, 1, 65535, 65536, 65537, 100_000, (1 << 20) // 8]
    values = [rng.integers(0, 256, s, dtype=np.uint8).tobytes() for s in sizes]
    for v in values:
        r.push(v)
        assert r.pop(timeout=0) == v


def test_infinite_timeout_means_wait(ring):
    """timeout=inf (or anything past int64 nanoseconds) waits like None."""
    later(0.05, ring.push, b"late")
    assert ring.pop(timeout=float("inf")) == b"late"
    later(0.05, ring.push, b"later")
    assert ring.pop_batch(5, timeout=1e300).values.to_pylist() == [b"later"]


def test_negative_timeout_refused(ring):
    """A negative timeout is a ValueError, not an infinite wait."""
    with pytest.raises(ValueError, match="timeout"):
        ring.pop(timeout=-1)
    with pytest.raises(ValueError, match="timeout"):
        ring.push(b"x", timeout=-0.5)


# ---------------------------------------------------------------- batches

@given(keys=st.lists(st.one_of(st.none(), st.binary(max_size=30)), min_size=1, max_size=60),
       data=st.data())
def test_batch_round_trip_exact(keys, data):
    """pop_batch gives back keys, values and null keys/values exactly as push_batch took them."""
    values = data.draw(st.lists(st.one_of(st.none(), st.binary(max_size=80)),
                                min_size=len(keys), max_size=len(keys)))
    batch = fr.MessageBatch.from_pylist(keys=keys, values=values)
    r = fr.Ring(1 << 16)
    assert r.push_batch(batch) == len(batch)
    out = r.pop_batch(len(batch) + 5, timeout=0)
    assert out.equals(batch)
    assert out.keys.to_pylist() == keys and out.values.to_pylist() == values


def test_batch_from_sliced_columns():
    """A batch whose columns start inside their buffers (a take/slice) travels correctly."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", None, b"ccc", b"dd"],
                                        values=[b"1", b"22", None, b"4444"])
    part = batch.take([2, 3, 1])
    kc = fr.BinaryColumn(batch.keys.offsets[1:], batch.keys.data, batch.keys.validity[1:])
    vc = fr.BinaryColumn(batch.values.offsets[1:], batch.values.data, batch.values.validity[1:])
    offset_batch = fr.MessageBatch(kc, vc)
    r = fr.Ring(4096)
    r.push_batch(part)
    r.push_batch(offset_batch)
    assert r.pop_batch(3, timeout=0).equals(part)
    assert r.pop_batch(10, timeout=0).equals(offset_batch)


def test_push_batch_of_plain_values_and_pop_mixing(ring):
    """push_batch takes a list of bytes; pop reads batch messages singly (value only)."""
    assert ring.push_batch([b"a", b"bb", b""]) == 3
    assert ring.push_batch([]) == 0
    batch = fr.MessageBatch.from_pylist(keys=[b"k"], values=[None])
    ring.push_batch(batch)
    ring.push(b"single")
    assert ring.pop(timeout=0) == b"a"
    out = ring.pop_batch(2, timeout=0)
    assert out.values.to_pylist() == [b"bb", b""] and out.keys.null_count == 2
    assert ring.pop(timeout=0) is None          # a null value
    out = ring.pop_batch(5, timeout=0)
    assert out.values.to_pylist() == [b"single"] and out.keys.to_pylist() == [None]


def test_push_batch_partial_with_timeout_zero():
    """With timeout=0 a batch goes in as far as whole messages fit, and says how many."""
    r = fr.Ring(4096)
    batch = fr.MessageBatch.from_pylist(values=[b"v" * 56] * 100)   # 64-byte records
    assert r.push_batch(batch, timeout=0) == 64
    with pytest.raises(fr.QueueFull):
        r.push_batch(batch, timeout=0)
    assert len(r.pop_batch(1000, timeout=0)) == 64


def test_push_batch_too_big_names_message_and_pushes_nothing():
    """One oversized message in a batch refuses the whole batch at once, naming its index."""
    r = fr.Ring(4096)
    batch = fr.MessageBatch.from_pylist(keys=[b"", b"kk", b""], values=[b"a", b"x" * 511, b"c"])
    with pytest.raises(fr.QueueFull, match="message 1 of the batch has 513 bytes.*limit of 512"):
        r.push_batch(batch, timeout=None)
    assert len(r) == 0 and r.bytes_used == 0


def test_pop_batch_limits():
    """max_messages and max_bytes bound a batch; the first message comes even when larger."""
    r = fr.Ring(1 << 16)
    r.push_batch([b"x" * 100] * 10)
    assert len(r.pop_batch(3, timeout=0)) == 3
    assert len(r.pop_batch(100, max_bytes=250, timeout=0)) == 2
    assert len(r.pop_batch(100, max_bytes=10, timeout=0)) == 1
    assert len(r.pop_batch(100, timeout=0)) == 4
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_messages"):
            r.pop_batch(bad, timeout=0)
    with pytest.raises(ValueError, match="max_bytes"):
        r.pop_batch(1, max_bytes=-1, timeout=0)


def test_pop_batch_large_batch_across_wraps():
    """A batch bigger than the ring goes in chunk by chunk while a consumer drains it."""
    r = fr.Ring(1 << 14)
    values = [bytes([i % 251]) * (i % 300) for i in range(5000)]
    batch = fr.MessageBatch.from_pylist(values=values)
    got = []
    t = threading.Thread(target=lambda: got.append(r.push_batch(batch, timeout=30)))
    t.start()
    out = []
    while len(out) < len(values):
        out.extend(r.pop_batch(700, timeout=30).values.to_pylist())
    t.join()
    assert got == [5000] and out == values


# ---------------------------------------------------------------- blocking and close

def test_blocking_pop_wakes_on_push(ring):
    """pop(timeout=None) sleeps until another thread pushes."""
    later(0.05, ring.push, b"wake")
    assert ring.pop() == b"wake"
    later(0.05, ring.push_batch, [b"a", b"b"])
    assert ring.pop_batch(10, timeout=10).values.to_pylist() in ([b"a", b"b"], [b"a"])


def test_blocking_push_wakes_on_pop():
    """push(timeout=None) on a full ring sleeps until the consumer makes room."""
    r = fr.Ring(4096)
    while True:
        try:
            r.push(b"x" * 56, timeout=0)
        except fr.QueueFull:
            break
    later(0.05, r.pop)
    r.push(b"y" * 56)
    assert len(r) == 64


def test_timeouts_expire(ring):
    """A finite timeout ends the wait with QueueEmpty (consumer) or QueueFull (producer)."""
    with pytest.raises(fr.QueueEmpty, match="timeout=0.05"):
        ring.pop(timeout=0.05)
    with pytest.raises(fr.QueueEmpty):
        ring.pop_batch(10, timeout=0.05)
    while True:
        try:
            ring.push(b"z" * 1000, timeout=0)
        except fr.QueueFull:
            break
    with pytest.raises(fr.QueueFull, match="no room"):
        ring.push(b"z" * 1000, timeout=0.05)
    with pytest.raises(fr.QueueFull):
        ring.push_batch([b"z" * 1000], timeout=0.05)


def test_close_wakes_waiters_and_drains(ring):
    """close() wakes a blocked consumer (QueueClosed once drained), refuses later pushes, and
    leaves committed messages readable."""
    later(0.05, ring.close)
    with pytest.raises(fr.QueueClosed):
        ring.pop()
    with pytest.raises(fr.QueueClosed, match="push refused"):
        ring.push(b"late")
    with pytest.raises(fr.QueueClosed):
        ring.push_batch([b"late"])
    assert ring.closed


def test_close_keeps_committed_messages():
    """Messages committed before close() are still delivered, then QueueClosed."""
    r = fr.Ring(4096)
    r.push_batch([b"1", b"2", b"3"])
    r.close()
    assert r.pop() == b"1"
    assert r.pop_batch(10).values.to_pylist() == [b"2", b"3"]
    with pytest.raises(fr.QueueClosed, match="every committed message was read"):
        r.pop()
    with pytest.raises(fr.QueueClosed):
        r.pop_batch(1)


def test_close_wakes_blocked_producer():
    """A producer waiting for room is woken by close() with QueueClosed."""
    r = fr.Ring(4096)
    r.push_batch([b"x" * 56] * 64, timeout=0)
    later(0.05, r.close)
    with pytest.raises(fr.QueueClosed):
        r.push(b"x" * 56)


@pytest.mark.timeout(60)
def test_gil_is_released_while_waiting():
    """A thread blocked in pop() does not hold the GIL: this thread keeps running Python."""
    r = fr.Ring(4096)
    got = []
    t = threading.Thread(target=lambda: got.append(r.pop()))
    t.start()
    time.sleep(0.05)
    count = 0
    stop = time.monotonic() + 0.2
    while time.monotonic() < stop:
        count += 1
    assert count > 1000 and t.is_alive()
    r.push(b"done")
    t.join(10)
    assert got == [b"done"]


@pytest.mark.timeout(60)
def test_signal_interrupts_blocking_pop():
    """A signal handler that raises ends a blocking pop (Ctrl-C works); one that returns
    lets the wait go on."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread only")

    class Interrupted(Exception):
        pass

    def raise_(signum, frame):
        raise Interrupted

    r = fr.Ring(4096)
    old = signal.signal(signal.SIGALRM, raise_)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(Interrupted):
            r.pop()
        signal.signal(signal.SIGALRM, lambda s, f: None)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        later(0.3, r.push, b"after the signal")
        assert r.pop() == b"after the signal"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- handle life

def test_detach(name):
    """detach() unmaps one handle: its later calls raise ValueError; others keep working."""
    a = fr.Ring.create(name, 4096)
    b = fr.Ring.attach(name)
    with b:
        b.push(b"x")
    for call in (lambda: b.push(b"y"), lambda: b.pop(timeout=0), lambda: b.pop_batch(1, timeout=0),
                 lambda: b.push_batch([b"z"])):
        with pytest.raises(ValueError, match="detached"):
            call()
    b.detach()
    assert "detached" in repr(b)
    assert a.pop(timeout=0) == b"x"
    a.unlink()


def test_corrupt_record_raises_frame_error():
    """A record header no producer writes is reported as FrameError with its position, and the
    C code reads nothing outside the region."""
    r = fr.Ring(4096)
    r.push(b"hello")
    r._test_poke(0, 3 | (1 << 32))          # length 3 < the 8-byte header
    with pytest.raises(fr.FrameError, match="corrupt") as info:
        r.pop(timeout=0)
    assert info.value.offset == 0
    r2 = fr.Ring(4096)
    r2.push(b"hello")
    r2._test_poke(0, 4000 | (1 << 32))      # runs past the tail
    with pytest.raises(fr.FrameError):
        r2.pop_batch(10, timeout=0)
