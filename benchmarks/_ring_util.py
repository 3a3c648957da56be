"""Support for benchmarks/test_ring.py: every transport behind one small interface, the child
process that sends or echoes, and the ratio table.

A Channel is one direction of one transport. It pickles into a spawned child (a Ring by name,
a multiprocessing or faster-fifo queue by handle, a ZeroMQ socket by its ipc:// address) and
opens a sender or a receiver in whichever process asks. Baselines are configured the way that
favours them: faster-fifo moves raw bytes (identity dumps/loads, so get_many hands back views
of its buffer instead of copies), ZeroMQ uses its defaults (zero-copy sends above 64 KiB).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import time
import uuid

import fastroute as fr

RING_KINDS = ("fastroute-spsc", "fastroute-mpsc")
CROSS_PROCESS_BASELINES = ("mp.Queue", "faster-fifo", "pyzmq")
IN_PROCESS_BASELINES = ("queue.SimpleQueue",)

_ctx = mp.get_context("spawn")


def identity(x):
    return x


class Channel:
    """One direction of a transport: `kind` is a name from RING_KINDS or the baselines."""

    def __init__(self, kind: str, capacity: int, cross_process: bool = True):
        self.kind = kind
        self.capacity = capacity
        self._endpoint = None
        if kind in RING_KINDS:
            contract = kind.split("-")[1]
            if cross_process:
                self.name = f"fr-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                self.handle = fr.Ring.create(self.name, capacity, contract=contract)
            else:
                self.name = None
                self.handle = fr.Ring(capacity, contract=contract)
        elif kind == "mp.Queue":
            self.handle = _ctx.Queue()
        elif kind == "faster-fifo":
            import faster_fifo

            self.handle = faster_fifo.Queue(max_size_bytes=capacity, loads=identity, dumps=identity)
        elif kind == "pyzmq":
            self.handle = f"ipc:///tmp/fr-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        elif kind == "queue.SimpleQueue":
            self.handle = queue.SimpleQueue()
        else:
            raise ValueError(f"unknown transport {kind!r}")

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_endpoint"] = None
        return state

    def close(self) -> None:
        if self.kind in RING_KINDS and self.name is not None:
            self.handle.unlink()
        if self._endpoint is not None and self.kind == "pyzmq":
            self._endpoint.close(linger=0)

    def _zmq(self, kind: int, bind: bool):
        import zmq

        sock = zmq.Context.instance().socket(kind)
        sock.setsockopt(zmq.SNDHWM, 0)   # unbounded, like the queues it is compared with
        sock.setsockopt(zmq.RCVHWM, 0)
        (sock.bind if bind else sock.connect)(self.handle)
        self._endpoint = sock
        return sock

    # ---- senders: (one(message), many(prepared), prepare(list of bytes))

    def sender(self):
        h = self.handle
        if self.kind in RING_KINDS:
            return h.push, h.push_batch, lambda msgs: fr.MessageBatch.from_pylist(values=msgs)
        if self.kind == "mp.Queue":
            return h.put, h.put, list
        if self.kind == "faster-fifo":
            return h.put, h.put_many, list
        if self.kind == "pyzmq":
            import zmq

            sock = self._zmq(zmq.PUSH, bind=False)
            return sock.send, sock.send_multipart, list
        if self.kind == "queue.SimpleQueue":
            return h.put, h.put, list
        raise ValueError(self.kind)

    # ---- receivers: (one() -> message, many(max) -> how many arrived)

    def receiver(self):
        h = self.handle
        if self.kind in RING_KINDS:
            return h.pop, lambda k: len(h.pop_batch(k))
        if self.kind == "mp.Queue":
            return h.get, lambda k: len(h.get())
        if self.kind == "faster-fifo":
            return h.get, lambda k: len(h.get_many(max_messages_to_get=k))
        if self.kind == "pyzmq":
            import zmq

            sock = self._zmq(zmq.PULL, bind=True)
            return sock.recv, lambda k: len(sock.recv_multipart())
        if self.kind == "queue.SimpleQueue":
            return h.get, lambda k: len(h.get())
        raise ValueError(self.kind)


def make_messages(size: int, count: int) -> list[bytes]:
    """``count`` distinct messages of ``size`` random bytes (made before any timing)."""
    return [os.urandom(size) for _ in range(count)]


def send_loop(channel: Channel, size: int, batch: int | None, commands) -> None:
    """Send on ``channel`` whenever ``commands`` yields a count: one at a time or in batches."""
    one, many, prepare = channel.sender()
    msgs = make_messages(size, batch or 1000)
    prepared = prepare(msgs) if batch else None
    for n in commands:
        if batch:
            for _ in range(n // batch):
                many(prepared)
        else:
            m = len(msgs)
            for i in range(n):
                one(msgs[i % m])


def child_sender(conn, channel: Channel, size: int, batch: int | None) -> None:
    """A child process that sends ``n`` messages each time the parent sends ("send", n)."""
    def commands():
        conn.send("ready")
        while True:
            cmd, n = conn.recv()
            if cmd == "stop":
                return
            yield n

    send_loop(channel, size, batch, commands())


def child_echo(conn, inbound: Channel, outbound: Channel) -> None:
    """A child process that sends back every message it receives (latency ping-pong)."""
    recv_one, _ = inbound.receiver()
    send_one, _, _ = outbound.sender()
    conn.send("ready")
    while True:
        cmd, n = conn.recv()
        if cmd == "stop":
            return
        for _ in range(n):
            # bytes() costs nothing for bytes; faster-fifo's raw mode hands out a memoryview
            send_one(bytes(recv_one()))
        conn.send("done")


def receive(n: int, batch: int | None, recv_one, recv_many) -> None:
    """Take n messages: one call per message, or batches of up to ``batch``."""
    if batch:
        got = 0
        while got < n:
            got += recv_many(batch)
    else:
        for _ in range(n):
            recv_one()


class CrossProcess:
    """A child process sending on one channel to this process; ``round(n)`` moves n messages
    (the benchmark times it)."""

    def __init__(self, kind: str, capacity: int, size: int, batch: int | None):
        self.channel = Channel(kind, capacity)
        self.batch = batch
        self.recv_one, self.recv_many = self.channel.receiver()
        self.conn, child_conn = _ctx.Pipe()
        self.proc = _ctx.Process(target=child_sender, args=(child_conn, self.channel, size, batch),
                                 daemon=True)
        self.proc.start()
        assert self.conn.poll(120) and self.conn.recv() == "ready"

    def round(self, n: int) -> None:
        self.conn.send(("send", n))
        receive(n, self.batch, self.recv_one, self.recv_many)

    def close(self) -> None:
        self.conn.send(("stop", 0))
        self.proc.join(30)
        if self.proc.exitcode is None:
            self.proc.kill()
        self.channel.close()


class InProcess:
    """A producer thread sending to this thread; ``round(n)`` moves n messages."""

    def __init__(self, kind: str, capacity: int, size: int, batch: int | None):
        self.channel = Channel(kind, capacity, cross_process=False)
        self.batch = batch
        self.recv_one, self.recv_many = self.channel.receiver()
        self.commands = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=send_loop, args=(self.channel, size, batch, iter(self.commands.get, None)),
            daemon=True)
        self.thread.start()

    def round(self, n: int) -> None:
        self.commands.put(n)
        receive(n, self.batch, self.recv_one, self.recv_many)

    def close(self) -> None:
        self.commands.put(None)
        self.thread.join(30)
        self.channel.close()


class PingPong:
    """A child that echoes; ``measure(k)`` returns k round-trip times in nanoseconds."""

    def __init__(self, kind: str, capacity: int, size: int):
        self.out = Channel(kind, capacity)
        self.back = Channel(kind, capacity)
        self.send_one, _, _ = self.out.sender()
        self.recv_one, _ = self.back.receiver()
        self.msg = make_messages(size, 1)[0]
        self.conn, child_conn = _ctx.Pipe()
        self.proc = _ctx.Process(target=child_echo, args=(child_conn, self.out, self.back),
                                 daemon=True)
        self.proc.start()
        assert self.conn.poll(120) and self.conn.recv() == "ready"

    def measure(self, k: int) -> list[int]:
        self.conn.send(("echo", k))
        send, recv, msg, clock = self.send_one, self.recv_one, self.msg, time.perf_counter_ns
        out = [0] * k
        for i in range(k):
            t0 = clock()
            send(msg)
            recv()
            out[i] = clock() - t0
        assert self.conn.recv() == "done"
        return out

    def close(self) -> None:
        self.conn.send(("stop", 0))
        self.proc.join(30)
        if self.proc.exitcode is None:
            self.proc.kill()
        self.out.close()
        self.back.close()


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def format_table(results: dict, scenarios: list[tuple[str, str]]) -> list[str]:
    """Markdown lines: per scenario, each transport's figure and fastroute's ratio to it.

    ``results[(scenario, kind)]`` is messages/s (higher is better), or for a latency scenario
    (unit "us") a (p50, p99) pair in microseconds (lower is better).
    """
    lines = ["| scenario | transport | result | fastroute-spsc vs this | fastroute-mpsc vs this |",
             "|---|---|---|---|---|"]
    for scenario, unit in scenarios:
        mine = {k: results.get((scenario, k)) for k in RING_KINDS}
        for (sc, kind), value in results.items():
            if sc != scenario:
                continue
            ratios = []
            for ring in RING_KINDS:
                ours = mine[ring]
                if ours is None or kind in RING_KINDS:
                    ratios.append("")
                elif unit == "us":
                    ratios.append(f"p99 {value[1] / ours[1]:.1f}× lower")
                else:
                    r = ours / value
                    ratios.append(f"{r:.1f}× faster" if r >= 1 else f"{1 / r:.1f}× slower")
            if unit == "us":
                shown = f"p50 {value[0]:.1f} µs, p99 {value[1]:.1f} µs"
            elif unit == "GB/s":
                shown = f"{value * 65536 / 1e9:.2f} GB/s ({value / 1e3:.1f} k msg/s)"
            else:
                shown = f"{value / 1e6:.2f} M msg/s"
            lines.append(f"| {scenario} | {kind} | {shown} | {ratios[0]} | {ratios[1]} |")
    return lines
