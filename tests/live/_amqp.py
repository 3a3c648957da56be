"""A scratch RabbitMQ session for the tests: declare, publish with confirms, drain, clean up."""

from __future__ import annotations

import contextlib
import struct
import time
from collections import Counter
from typing import NamedTuple

import pika
import pika.data
import pika.exceptions

#: Longest wait for the messages a queue reported to arrive at its consumer.
DRAIN_TIMEOUT_S = 20.0


class Field(NamedTuple):
    """A header value sent with an explicit AMQP 0-9-1 field type.

    pika picks one type per Python type (int → I or l, bool → t, str → S, bytes → x,
    None → V) and cannot send floats at all; this names the type instead. ``code`` is one
    of ``b B s u I i l L`` (integers), ``f`` (float32), ``d`` (float64) or ``T`` (timestamp).
    """

    code: str
    value: object

    def plain(self):
        """The value as the broker decodes it, and as a MessageBatch header holds it."""
        if self.code == "f":
            return struct.unpack(">f", struct.pack(">f", self.value))[0]
        return float(self.value) if self.code == "d" else int(self.value)


_FIELD_FORMATS = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q",
                  "L": ">q", "f": ">f", "d": ">d", "T": ">Q"}


def plain(value):
    """``value`` with every Field replaced by its decoded Python value (recursively)."""
    if isinstance(value, Field):
        return value.plain()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@contextlib.contextmanager
def typed_fields():
    """Let pika encode Field values and Python floats (as ``d``) in tables and arrays.

    pika 1.x has no float encoder; the patch only adds cases that would otherwise raise,
    and is removed on exit.
    """
    original = pika.data.encode_value

    def encode_value(pieces, value):
        if isinstance(value, float):
            value = Field("d", value)
        if isinstance(value, Field):
            pieces.append(value.code.encode() + struct.pack(_FIELD_FORMATS[value.code], value.value))
            return 1 + struct.calcsize(_FIELD_FORMATS[value.code])
        return original(pieces, value)

    pika.data.encode_value = encode_value
    try:
        yield
    finally:
        pika.data.encode_value = original


class AmqpScratch:
    """One connection with publisher confirms that deletes every exchange and queue it declared.

    Names are ``{prefix}.{kind}{n}``, so a unique prefix per run keeps reruns apart. Messages
    carry their sequence number as the body, which is how :meth:`drain` tells them apart.
    Use as a context manager; clean-up also runs when the test fails.
    """

    def __init__(self, params: pika.ConnectionParameters, prefix: str):
        self.params = params
        self.prefix = prefix
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self._exchanges: list = []
        self._queues: list = []
        self._count = 0

    def __enter__(self) -> "AmqpScratch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{self.prefix}.{kind}{self._count}"

    def exchange(self, kind: str, arguments: dict | None = None) -> str:
        """Declare a transient exchange of ``kind`` (topic, direct, fanout, headers); its name."""
        name = self._name(kind)
        self.channel.exchange_declare(name, kind, durable=False, auto_delete=False, arguments=arguments)
        self._exchanges.append(name)
        return name

    def queue(self) -> str:
        """Declare an exclusive transient queue (gone with the connection at the latest)."""
        name = self._name("q")
        self.channel.queue_declare(name, durable=False, exclusive=True)
        self._queues.append(name)
        return name

    def bind(self, queue: str, exchange: str, key="", arguments: dict | None = None) -> None:
        with typed_fields():
            self.channel.queue_bind(queue, exchange, routing_key=key, arguments=arguments)

    def publish(self, exchange: str, keys: list, headers: list | None = None) -> None:
        """Publish message i with routing key ``keys[i]`` and body ``str(i)``, each confirmed.

        ``headers[i]`` (a dict, or None for no headers) becomes the message's header table,
        encoded by pika (int → I or l, bool → t, str → S, bytes → x, None → V, list → A,
        dict → F) or as :class:`Field` says (floats → d). Raises pika's NackError when the
        broker refuses a message.
        """
        with typed_fields():
            for seq, key in enumerate(keys):
                h = None if headers is None else headers[seq]
                props = pika.BasicProperties(headers=h) if h is not None else None
                self.channel.basic_publish(exchange, key, str(seq).encode(), props)

    def refusal(self, exchange: str, key, headers: dict):
        """Publish one message on a channel of its own; the broker's (code, text) if it refused it.

        Returns None when the message was accepted. A refusal closes that channel only.
        """
        channel = self.connection.channel()
        channel.confirm_delivery()
        try:
            with typed_fields():
                channel.basic_publish(exchange, key, b"probe", pika.BasicProperties(headers=headers))
        except pika.exceptions.ChannelClosedByBroker as exc:
            return exc.reply_code, exc.reply_text
        channel.close()
        return None

    def drain(self, queues: list) -> dict:
        """Consume everything in ``queues``: {queue: Counter of message sequence numbers}.

        Call after :meth:`publish` returned: by then every confirmed message is in its queues,
        so each queue's message count says how many deliveries to wait for. Raises
        AssertionError when a queue yields fewer messages than it reported, or more.
        """
        got = {q: Counter() for q in queues}
        expected = {q: self.channel.queue_declare(q, passive=True).method.message_count for q in queues}
        tags = []
        for q in queues:
            if expected[q]:
                def on_message(_ch, _method, _props, body, q=q):
                    got[q][int(body)] += 1
                tags.append(self.channel.basic_consume(q, on_message, auto_ack=True))
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while any(sum(got[q].values()) < expected[q] for q in queues) and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.05)
        for tag in tags:
            self.channel.basic_cancel(tag)
        for q in queues:
            n = sum(got[q].values())
            assert n == expected[q], f"queue {q}: reported {expected[q]} messages, consumed {n}"
            assert self.channel.queue_declare(q, passive=True).method.message_count == 0, \
                f"queue {q}: messages left after draining"
        return got

    def close(self) -> None:
        """Delete what was declared (queues first), then close.

        A channel or connection the broker closed (after a failed test) is reopened for the
        clean-up; exclusive queues vanish with their connection anyway.
        """
        if not self.connection.is_open:
            self.connection = pika.BlockingConnection(self.params)
            self._queues = []
        try:
            ch = self.channel if self.channel.is_open else self.connection.channel()
            for q in self._queues:
                ch.queue_delete(q)
            for x in reversed(self._exchanges):
                ch.exchange_delete(x)
        finally:
            if self.connection.is_open:
                self.connection.close()
