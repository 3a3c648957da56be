"""Ring: a lock-free ring buffer in shared memory that moves whole batches between threads and
processes.

This is the only module that talks to the compiled ``fastroute._ring`` library: it turns its
status codes into exceptions and its buffers into bytes and :class:`MessageBatch` objects.
The layout and the commit protocol are described in ``native/ring.h``.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
import time
import warnings

import numpy as np

from ._batch import BinaryColumn, MessageBatch
from ._errors import FrameError, QueueClosed, QueueEmpty, QueueFull
from ._ring import ffi, lib

__all__ = ["Ring"]

_CONTRACTS = {"spsc": lib.FR_RING_SPSC, "mpsc": lib.FR_RING_MPSC}
_CONTRACT_NAMES = {v: k for k, v in _CONTRACTS.items()}
_MIN = lib.FR_RING_MIN_CAPACITY
_MAX = lib.FR_RING_MAX_CAPACITY
_ALL_BYTES = (1 << 64) - 1
_POP_SCRATCH = 1 << 16
_DEFAULT_CAPACITY = 1 << 22
_DEFAULT_LIVENESS = 3.0

_OK = lib.FR_RING_OK
_SKIPPED = lib.FR_RING_SKIPPED
_NULL_VALUE = lib.FR_RING_NULL_VALUE
_FULL = lib.FR_RING_FULL
_EMPTY = lib.FR_RING_EMPTY
_CLOSED = lib.FR_RING_CLOSED
_TOO_BIG = lib.FR_RING_TOO_BIG
_CORRUPT = lib.FR_RING_CORRUPT
_SMALL = lib.FR_RING_SMALL_BUFFER
_DETACHED = lib.FR_RING_DETACHED
_INTERRUPTED = lib.FR_RING_INTERRUPTED
_NOTED = lib.FR_RING_NOTED

_unpack = ffi.unpack
_pop_registered = lib.fr_ring_pop_registered
_from_buffer = ffi.from_buffer
_NULL = ffi.NULL


def _timeout_ns(timeout) -> int:
    """None -> -1 (wait forever); seconds -> nanoseconds. Raises ValueError when negative."""
    if timeout is None:
        return -1
    if not timeout >= 0:  # also catches NaN
        raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
    if timeout >= 9e9:  # beyond int64 nanoseconds (about 292 years), including inf
        return -1
    return int(timeout * 1e9)


def _check_capacity(capacity) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
        raise TypeError(f"capacity must be an int (bytes), got {type(capacity).__name__}")
    capacity = int(capacity)
    if capacity < _MIN:
        raise ValueError(f"capacity must be at least {_MIN} bytes, got {capacity}")
    if capacity > _MAX:
        raise ValueError(f"capacity must be at most {_MAX} bytes, got {capacity}")
    if capacity & (capacity - 1):
        raise ValueError(f"capacity must be a power of two (e.g. {1 << capacity.bit_length()}), "
                         f"got {capacity}")
    return capacity


def _check_contract(contract) -> int:
    code = _CONTRACTS.get(contract)
    if code is None:
        raise ValueError(f"contract must be 'spsc' (one producer) or 'mpsc' (many producers), "
                         f"got {contract!r}")
    return code


def _shm_name(name) -> bytes:
    """The POSIX shared-memory name for a ring name. Raises ValueError for an unusable name."""
    if not isinstance(name, str):
        raise TypeError(f"ring name must be a str, got {type(name).__name__}")
    if not name or len(name) > 200 or "/" in name or "\0" in name or name in (".", ".."):
        raise ValueError(f"ring name must be 1 to 200 characters without '/' or NUL, got {name!r}")
    return b"/" + os.fsencode(name)


def _check_liveness(seconds) -> float:
    if not seconds > 0:
        raise ValueError(f"liveness_timeout must be a number of seconds > 0, got {seconds!r}")
    return float(seconds)


def _reattach(name: str, liveness_timeout: float) -> "Ring":
    # module-level so pickle finds it by name in a spawned child
    return Ring.attach(name, liveness_timeout=liveness_timeout)


class Ring:
    """A bounded queue of messages in one flat memory region, shared by threads or processes.

    Producers push single messages (``push``) or whole batches (``push_batch``); the consumer
    pops single values (``pop``) or batches (``pop_batch``, keys and null flags preserved).
    Messages come out in the order their batches were claimed; each producer's messages keep
    their order. Copies and waits run in C without the GIL.

    ``Ring(capacity)`` makes an anonymous ring for the threads of this process (and the
    children it forks); ``Ring.create(name, capacity)`` makes a named one in shared memory
    (mode 0600) that other processes open with ``Ring.attach(name)``, and that pickles by name,
    so it can be passed to ``multiprocessing`` children under spawn and forkserver.

    Contracts: ``"mpsc"`` (default) allows many concurrent producers (one compare-and-swap per
    batch); ``"spsc"`` allows one producer at a time and is a little cheaper. Either way there
    is one consumer at a time; breaking the contract corrupts the ring.

    Args:
        capacity: data bytes, a power of two from 4096 to 2**32. A message (key + value) may
            use at most capacity / 8 bytes.
        contract: ``"mpsc"`` or ``"spsc"``.
        liveness_timeout: seconds a consumer waits on a record whose producer stopped
            mid-write before skipping it, once that producer's process is gone (counted in
            ``skipped``, with a RuntimeWarning).

    Raises:
        ValueError: a capacity that is not a power of two or out of range (naming the rule),
            an unknown contract.
    """

    __slots__ = ("_h", "_name", "_capacity", "_contract", "_max_message", "_push_fn",
                 "_push_batch_fn", "_buf", "_info", "_peek", "_liveness",
                 "_skipped_seen", "__weakref__")

    def __init__(self, capacity: int = _DEFAULT_CAPACITY, *, contract: str = "mpsc",
                 liveness_timeout: float = _DEFAULT_LIVENESS):
        capacity = _check_capacity(capacity)
        code = _check_contract(contract)
        liveness_timeout = _check_liveness(liveness_timeout)
        out = ffi.new("fr_ring **")
        rc = lib.fr_ring_open_anonymous(capacity, code, out)
        if rc != _OK:
            _raise_open(rc, None, "create")
        self._setup(out[0], None, liveness_timeout)

    @classmethod
    def create(cls, name: str, capacity: int = _DEFAULT_CAPACITY, *, contract: str = "mpsc",
               liveness_timeout: float = _DEFAULT_LIVENESS) -> "Ring":
        """Create a named ring in shared memory (mode 0600) and open it.

        Raises FileExistsError when a shared-memory object of that name exists, ValueError for
        a bad name or capacity (naming the rule).
        """
        shm = _shm_name(name)
        capacity = _check_capacity(capacity)
        code = _check_contract(contract)
        liveness_timeout = _check_liveness(liveness_timeout)
        out = ffi.new("fr_ring **")
        rc = lib.fr_ring_create(shm, capacity, code, out)
        if rc != _OK:
            _raise_open(rc, name, "create")
        ring = cls.__new__(cls)
        ring._setup(out[0], name, liveness_timeout)
        return ring

    @classmethod
    def attach(cls, name: str, *, liveness_timeout: float = _DEFAULT_LIVENESS) -> "Ring":
        """Open the named ring another process created (capacity and contract come from it).

        Raises FileNotFoundError when no ring of that name exists; ValueError when the memory
        is not a fastroute ring, or one of another layout version.
        """
        shm = _shm_name(name)
        liveness_timeout = _check_liveness(liveness_timeout)
        out = ffi.new("fr_ring **")
        version = ffi.new("uint32_t *")
        rc = lib.fr_ring_attach(shm, out, version)
        if rc != _OK:
            _raise_open(rc, name, "attach to", int(version[0]))
        ring = cls.__new__(cls)
        ring._setup(out[0], name, liveness_timeout)
        return ring

    def _setup(self, handle, name, liveness_timeout):
        self._h = ffi.gc(handle, lib.fr_ring_free)
        self._name = name
        stats = self._stats()
        self._capacity = int(stats[lib.FR_STAT_CAPACITY])
        self._max_message = int(stats[lib.FR_STAT_MAX_MESSAGE])
        self._contract = _CONTRACT_NAMES[int(stats[lib.FR_STAT_CONTRACT])]
        mpsc = self._contract == "mpsc"
        self._push_fn = lib.fr_ring_push_mpsc if mpsc else lib.fr_ring_push_spsc
        self._push_batch_fn = lib.fr_ring_push_batch_mpsc if mpsc else lib.fr_ring_push_batch_spsc
        self._info = ffi.new("uint64_t[2]")
        self._set_pop_buffer(min(_POP_SCRATCH, self._max_message))
        self._peek = ffi.new("uint64_t[]", lib.FR_PEEK_INFO_N)
        self._skipped_seen = int(stats[lib.FR_STAT_SKIPPED])
        self.liveness_timeout = liveness_timeout

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str | None:
        """The shared-memory name, or None for an anonymous ring."""
        return self._name

    @property
    def capacity(self) -> int:
        """Data bytes of the ring (a power of two)."""
        return self._capacity

    @property
    def max_message(self) -> int:
        """The largest message (key + value bytes) the ring takes: capacity / 8."""
        return self._max_message

    @property
    def contract(self) -> str:
        """``"spsc"`` or ``"mpsc"``, as the ring was created."""
        return self._contract

    @property
    def bytes_used(self) -> int:
        """Bytes claimed by producers and not yet handed back by the consumer (with headers
        and padding)."""
        return int(self._stats()[lib.FR_STAT_BYTES_USED])

    @property
    def closed(self) -> bool:
        """True once any handle called :meth:`close`."""
        return bool(self._stats()[lib.FR_STAT_CLOSED])

    @property
    def skipped(self) -> int:
        """Unfinished records skipped because their producer died mid-write (all handles)."""
        return int(self._stats()[lib.FR_STAT_SKIPPED])

    @property
    def liveness_timeout(self) -> float:
        """Seconds before the consumer skips a record left unfinished by a dead producer."""
        return self._liveness

    @liveness_timeout.setter
    def liveness_timeout(self, seconds: float) -> None:
        self._liveness = _check_liveness(seconds)
        lib.fr_ring_set_liveness(self._h, int(self._liveness * 1e9))

    def __len__(self) -> int:
        """Messages committed and not yet popped (a snapshot while producers run)."""
        return int(self._stats()[lib.FR_STAT_COUNT])

    def _stats(self):
        out = ffi.new("uint64_t[]", lib.FR_STAT_N)
        lib.fr_ring_stats(self._h, out)
        return out

    def _label(self) -> str:
        return "anonymous ring" if self._name is None else f"ring {self._name!r}"

    # ------------------------------------------------------------------ producers

    def push(self, data, timeout: float | None = None) -> None:
        """Append one message (``data`` is its value; its key is null).

        Args:
            data: bytes, bytearray or a contiguous memoryview.
            timeout: None waits for room as long as it takes; 0 never waits; else seconds.

        Raises:
            QueueFull: no room before the timeout, or (at once) a message larger than
                capacity / 8, naming the limit.
            QueueClosed: the ring was closed.
        """
        if type(data) is not bytes:
            data = _as_buffer(data)
        rc = self._push_fn(self._h, data, len(data), -1 if timeout is None else _timeout_ns(timeout))
        if rc:  # FR_RING_OK is 0
            self._push_retry(rc, data, timeout)

    def _push_retry(self, rc, data, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while rc == _INTERRUPTED:  # a signal: let Python run its handler, then wait on
            rc = self._push_fn(self._h, data, len(data), _left(deadline))
        if rc != _OK:
            self._raise(rc, "push", len(data), timeout)

    def push_batch(self, batch, timeout: float | None = None) -> int:
        """Append the messages of a batch, whole messages only, in order.

        Args:
            batch: a :class:`MessageBatch` (keys, values and null flags travel; headers and
                metadata do not; a device batch is copied to the host first), or a sequence
                of bytes values.
            timeout: None waits until every message went in; 0 takes what fits now; else
                seconds to wait for room.

        Returns:
            How many messages went in: all of them, unless the timeout expired or the ring
            was closed meanwhile (then the first ones).

        Raises:
            QueueFull: not one message went in before the timeout, or (at once, before any
                goes in) a message larger than capacity / 8, naming it and the limit.
            QueueClosed: the ring was closed before any message went in.

        Cost: one copy of each message into the ring, in C without the GIL; one claim of
        shared space per run of messages up to capacity / 4 bytes.
        """
        if not isinstance(batch, MessageBatch):
            batch = MessageBatch.from_pylist(values=list(batch))
        elif batch.device == "gpu":
            batch = batch.to_host()
        n = len(batch)
        if n == 0:
            return 0
        keys, values = batch.keys, batch.values
        ko = _from_buffer("int64_t[]", keys.offsets)
        kd = _from_buffer("uint8_t[]", keys.data)
        kv = _NULL if keys.validity is None else _from_buffer("uint8_t[]", keys.validity)
        vo = _from_buffer("int64_t[]", values.offsets)
        vd = _from_buffer("uint8_t[]", values.data)
        vv = _NULL if values.validity is None else _from_buffer("uint8_t[]", values.validity)
        ns = -1 if timeout is None else _timeout_ns(timeout)
        rc = self._push_batch_fn(self._h, ko, kd, kv, vo, vd, vv, n, ns)
        if rc == n:
            return n
        # partial or failed: go on from where it stopped until it says why (a timeout, a
        # close, or a signal to let Python handle)
        deadline = None if timeout is None else time.monotonic() + timeout
        done = 0
        while True:
            if rc >= 0:
                done += rc
                if done == n:
                    return n
            elif rc != _INTERRUPTED:
                if done:
                    return done
                if rc == _TOO_BIG:
                    self._raise_too_big(batch)
                self._raise(rc, "push_batch", None, timeout)
            rc = self._push_batch_fn(self._h, ko + done, kd, _NULL if kv == _NULL else kv + done,
                                     vo + done, vd, _NULL if vv == _NULL else vv + done,
                                     n - done, _left(deadline))

    # ------------------------------------------------------------------ consumer

    def pop(self, timeout: float | None = None) -> bytes | None:
        """Remove the next message and return its value (its key is dropped).

        Returns None for a message whose value is null (only a batch can carry one).

        Raises:
            QueueEmpty: nothing arrived before the timeout (0 never waits; None waits).
            QueueClosed: the ring is closed and every committed message was read.
        """
        n = _pop_registered(self._h, -1 if timeout is None else _timeout_ns(timeout))
        if n >= 0:
            return _unpack(self._buf, n)
        return self._pop_slow(n, timeout)

    def _set_pop_buffer(self, size: int) -> None:
        # the C handle keeps pointers to these; they live as long as this object or until
        # replaced here (single consumer: no other thread is inside pop meanwhile)
        self._buf = ffi.new("char[]", size)
        lib.fr_ring_set_pop_buffers(self._h, self._buf, size, self._info)

    def _pop_slow(self, rc, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        while rc < 0 and rc != _NOTED:
            if rc == _SMALL:
                self._set_pop_buffer(int(self._info[0]))
            elif rc != _INTERRUPTED:
                self._raise(rc, "pop", None, timeout)
            rc = _pop_registered(self._h, _left(deadline))
        if rc >= 0:
            return _unpack(self._buf, rc)
        flags = self._info[1]
        if flags & _SKIPPED:
            self._warn_skipped()
        if flags & _NULL_VALUE:
            return None
        return _unpack(self._buf, self._info[0])

    def pop_batch(self, max_messages: int, max_bytes: int | None = None,
                  timeout: float | None = None) -> MessageBatch:
        """Remove up to ``max_messages`` messages and return them as one batch.

        Waits (as ``timeout`` allows) for at least one message, then takes what is committed,
        without waiting for more. Keys, values and null keys/values come out exactly as they
        went in.

        Args:
            max_messages: the most messages to take (>= 1).
            max_bytes: the most key + value bytes to take; the first message is taken even
                when it alone is larger. None: no limit.
            timeout: None waits as long as it takes; 0 never waits; else seconds.

        Raises:
            QueueEmpty: nothing arrived before the timeout.
            QueueClosed: the ring is closed and every committed message was read.

        Cost: two calls into C (measure, then copy) without the GIL and a few numpy
        allocations; no Python work per message.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, (int, np.integer)) \
                or max_messages < 1:
            raise ValueError(f"max_messages must be an int >= 1, got {max_messages!r}")
        if max_bytes is None:
            max_bytes = _ALL_BYTES
        elif isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) \
                or max_bytes < 0:
            raise ValueError(f"max_bytes must be None or an int >= 0, got {max_bytes!r}")
        ns = -1 if timeout is None else _timeout_ns(timeout)
        h, info = self._h, self._peek
        rc = lib.fr_ring_peek_batch(h, max_messages, max_bytes, ns, info)
        if rc < 0:
            deadline = None if timeout is None else time.monotonic() + timeout
            while rc == _INTERRUPTED:
                rc = lib.fr_ring_peek_batch(h, max_messages, max_bytes, _left(deadline), info)
            if rc < 0:
                self._raise(rc, "pop_batch", None, timeout)
        n, kb, vb, key_nulls, value_nulls = info[0], info[1], info[2], info[3], info[4]
        offsets = np.empty(2 * n + 2, np.int64)
        data = np.empty(kb + vb, np.uint8)
        valid = np.empty(2 * n, np.bool_)
        po = _from_buffer("int64_t[]", offsets)
        pd = _from_buffer("uint8_t[]", data)
        pv = _from_buffer("uint8_t[]", valid)
        status = lib.fr_ring_take_batch(h, po, pd, pv, po + (n + 1), pd + kb, pv + n)
        if status != _OK:
            self._raise(status, "pop_batch", None, timeout)
        if rc & _SKIPPED:
            self._warn_skipped()
        return MessageBatch(_column(offsets[:n + 1], data[:kb], valid[:n] if key_nulls else None),
                            _column(offsets[n + 1:], data[kb:], valid[n:] if value_nulls else None))

    # ------------------------------------------------------------------ control

    def close(self) -> None:
        """Close the ring for every handle and process: wakes every waiter; later pushes raise
        QueueClosed; the consumer still reads what was committed, then gets QueueClosed."""
        lib.fr_ring_close(self._h)

    def unlink(self) -> None:
        """Remove the ring's name from the system; mapped handles keep working until detached.

        Raises ValueError for an anonymous ring, FileNotFoundError when the name is gone.
        """
        if self._name is None:
            raise ValueError("an anonymous ring has no name to unlink")
        if lib.fr_ring_unlink(_shm_name(self._name)) != _OK:
            e = ffi.errno
            raise OSError(e, f"cannot unlink ring {self._name!r}: {os.strerror(e)}")

    def detach(self) -> None:
        """Unmap this handle (other handles and processes are not affected). Idempotent.

        Later calls on this handle raise ValueError. A call already running in another
        thread finishes first: the memory is unmapped when the last one returns.
        """
        self._h = lib.fr_ring_detached()

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc) -> None:
        self.detach()

    def __reduce__(self):
        if self._name is None:
            raise TypeError("an anonymous ring cannot be pickled: it lives in one process; "
                            "create a named ring with Ring.create(name, capacity) to share it")
        return _reattach, (self._name, self._liveness)

    def __repr__(self) -> str:
        if self._h == lib.fr_ring_detached():
            return f"Ring(name={self._name!r}, detached)"
        s = self._stats()
        return (f"Ring(name={self._name!r}, capacity={self._capacity}, contract={self._contract!r}, "
                f"len={int(s[lib.FR_STAT_COUNT])}, bytes_used={int(s[lib.FR_STAT_BYTES_USED])}, "
                f"closed={bool(s[lib.FR_STAT_CLOSED])})")

    # ------------------------------------------------------------------ crash-test hooks

    def _test_stall_producer(self, length: int, stage: int) -> None:
        """Claim room for one message of ``length`` bytes and stop mid-write, as a producer
        killed there would (stage 0: before the marker, mpsc only; 1: after half the body).
        For crash tests only: the ring waits on this record until the process is gone."""
        rc = lib.fr_ring_test_stall_producer(self._h, length, stage)
        if rc != _OK:
            self._raise(rc, "_test_stall_producer", length, 0)

    def _test_stall_consumer(self, stage: int) -> None:
        """Read the next message and stop, as a consumer killed there would (stage 0: before
        storing head; 1: after storing head, with half the record zeroed). Crash tests only."""
        rc = lib.fr_ring_test_stall_consumer(self._h, stage)
        if rc != _OK:
            self._raise(rc, "_test_stall_consumer", None, 0)

    def _test_poke(self, position: int, word: int) -> None:
        """Overwrite the 8-byte word at a data position (corruption tests only)."""
        lib.fr_ring_test_poke(self._h, position, word)

    # ------------------------------------------------------------------ errors

    def _warn_skipped(self) -> None:
        """Warn about records skipped since this handle last looked (the C call that skipped
        may have ended empty-handed, so the shared counter is the authority)."""
        stats = self._stats()
        total = int(stats[lib.FR_STAT_SKIPPED])
        new = total - self._skipped_seen
        if new <= 0:
            return
        self._skipped_seen = total
        warnings.warn(f"{self._label()}: skipped {new} unfinished record(s) left by a "
                      f"producer that died mid-write ({total} skipped in all, "
                      f"{int(stats[lib.FR_STAT_SKIPPED_BYTES])} bytes)", RuntimeWarning,
                      stacklevel=_caller_level())

    def _raise_too_big(self, batch: MessageBatch):
        sizes = batch.keys.lengths() + batch.values.lengths()
        i = int(np.argmax(sizes > self._max_message))
        raise QueueFull(f"{self._label()}: message {i} of the batch has {int(sizes[i])} bytes of "
                        f"key and value, more than the limit of {self._max_message} bytes "
                        f"(capacity {self._capacity} / 8); nothing was pushed")

    def _raise(self, rc, op, size, timeout):
        label = self._label()
        if rc == _FULL:
            raise QueueFull(f"{label}: no room for the message{'' if size is None else f' of {size} bytes'} "
                            f"within timeout={timeout!r} ({self.bytes_used} of {self._capacity} "
                            f"bytes in use)")
        if rc == _TOO_BIG:
            raise QueueFull(f"{label}: a message of {size} bytes is larger than the limit of "
                            f"{self._max_message} bytes (capacity {self._capacity} / 8)")
        if rc in (_EMPTY, _CLOSED) and not op.startswith("push"):
            self._warn_skipped()
        if rc == _EMPTY:
            raise QueueEmpty(f"{label}: no message within timeout={timeout!r}")
        if rc == _CLOSED:
            if op.startswith("push"):
                raise QueueClosed(f"{label} is closed: {op} refused")
            raise QueueClosed(f"{label} is closed and every committed message was read")
        if rc == _CORRUPT:
            pos = int(lib.fr_ring_error_position(self._h))
            raise FrameError(f"{label} is corrupt: {op} found a record header or position that "
                             f"no producer writes (data offset {pos & (self._capacity - 1)})", pos)
        if rc == _DETACHED:
            raise ValueError(f"{op} on a detached {label}")
        raise RuntimeError(f"{label}: {op} failed with status {rc}")


def _column(offsets, data, validity) -> BinaryColumn:
    """A BinaryColumn over arrays take_batch filled, without BinaryColumn's checks.

    take_batch wrote the offsets rising from 0 and within ``data`` (it stops with
    FR_RING_CORRUPT otherwise), so the numpy passes of BinaryColumn() would only re-prove it,
    at about 8 µs per column, which is most of a pop_batch of small messages.
    """
    return BinaryColumn._from_trusted(offsets, data, validity)


def _as_buffer(data):
    """What push hands to C for a bytes-like object other than bytes: a cffi view of its
    memory (a copy when it is not contiguous). TypeError for anything else, str included."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        raise TypeError("push expects bytes-like data (bytes, bytearray, memoryview, ...), got "
                        "str; encode it first")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"push expects bytes-like data (bytes, bytearray, memoryview, ...), got "
                        f"{type(data).__name__}") from None
    if not view.c_contiguous:
        return view.tobytes()
    return _from_buffer("char[]", view)


def _caller_level() -> int:
    """The warnings stacklevel of the first frame outside this module (the user's call)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _left(deadline) -> int:
    if deadline is None:
        return -1
    return max(0, int((deadline - time.monotonic()) * 1e9))


def _raise_open(rc, name, what, version=0):
    if rc == lib.FR_RING_SYSTEM:
        e = ffi.errno
        label = "an anonymous ring" if name is None else f"ring {name!r}"
        if e == _errno.ENOENT:
            raise FileNotFoundError(e, f"cannot {what} {label}: no such ring "
                                       f"(shared memory /{name} does not exist)")
        if e == _errno.EEXIST:
            raise FileExistsError(e, f"cannot {what} {label}: shared memory /{name} already exists")
        raise OSError(e, f"cannot {what} {label}: {os.strerror(e)}")
    if rc == lib.FR_RING_NOT_A_RING:
        raise ValueError(f"cannot {what} ring {name!r}: shared memory /{name} is not a fastroute "
                         f"ring (no ring magic, or a size that does not match its header)")
    if rc == lib.FR_RING_BAD_VERSION:
        raise ValueError(f"cannot {what} ring {name!r}: it has layout version {version}, this "
                         f"fastroute reads version {lib.FR_RING_VERSION}")
    raise ValueError(f"cannot {what} ring {name!r}: invalid arguments (status {rc})")
