"""MQTT 5 clients for the tests (paho-mqtt 2.x): subscribe, publish with QoS 1, collect by tag."""

from __future__ import annotations

import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

#: Longest wait for a CONNACK, a SUBACK, a PUBACK or the fence message.
WAIT_S = 15.0


class Subscriber:
    """One MQTT 5 client (one destination) that counts the tagged messages it receives.

    Payloads are ``{tag}{seq}``; anything else on the broker (other runs, other tests) is
    ignored, except the fence payload ``{tag}fence`` that marks the end of a round.
    """

    def __init__(self, host: str, port: int, client_id: str, tag: str):
        self.client_id = client_id
        self.tag = tag.encode()
        self.copies: Counter = Counter()   # seq -> copies received
        self._lock = threading.Lock()
        self._fence = threading.Event()
        self._subacks: dict = {}
        self._suback = threading.Condition()
        self.client = _connect(host, port, client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_message(self, _client, _userdata, msg) -> None:
        body = msg.payload
        if not body.startswith(self.tag):
            return
        rest = body[len(self.tag):]
        if rest == b"fence":
            self._fence.set()
            return
        seq = int(rest)
        with self._lock:
            self.copies[seq] += 1

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        with self._suback:
            self._subacks[mid] = reason_codes
            self._suback.notify_all()

    def subscribe(self, filters: list) -> None:
        """Subscribe to ``filters`` at QoS 1 and wait for the SUBACK.

        Raises AssertionError naming any filter the broker refused.
        """
        opts = mqtt.SubscribeOptions(qos=1)
        rc, mid = self.client.subscribe([(f, opts) for f in filters])
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"{self.client_id}: SUBSCRIBE not sent ({rc})"
        with self._suback:
            ok = self._suback.wait_for(lambda: mid in self._subacks, WAIT_S)
        assert ok, f"{self.client_id}: no SUBACK for {filters}"
        refused = [(f, str(rc)) for f, rc in zip(filters, self._subacks[mid]) if rc.is_failure]
        assert not refused, f"{self.client_id}: broker refused {refused}"

    def wait_fence(self) -> None:
        assert self._fence.wait(WAIT_S), f"{self.client_id}: the fence message never arrived"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _connect(host: str, port: int, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(host, port, clean_start=True)
    client.loop_start()
    assert connected.wait(WAIT_S), f"{client_id}: no CONNACK from {host}:{port}"
    return client


def publish_round(host: str, port: int, client_id: str, topics: list, tag: str,
                  fence_topic: str, subscribers: list) -> None:
    """Publish message i on ``topics[i]`` (payload ``{tag}{i}``, QoS 1), then a fence.

    Every PUBACK is awaited before the fence goes out, so the broker has queued every message
    for every subscriber before it queues the fence; each subscriber (subscribed to
    ``fence_topic``) then has all its messages once its fence arrived, because a client's
    messages are delivered in order.
    """
    client = _connect(host, port, client_id)
    try:
        infos = [client.publish(t, f"{tag}{i}".encode(), qos=1) for i, t in enumerate(topics)]
        deadline = time.monotonic() + WAIT_S
        for i, info in enumerate(infos):
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), f"message {i} on {topics[i]!r} was not acknowledged"
        client.publish(fence_topic, f"{tag}fence".encode(), qos=1).wait_for_publish(WAIT_S)
        for sub in subscribers:
            sub.wait_fence()
    finally:
        client.disconnect()
        client.loop_stop()
