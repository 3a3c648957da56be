"""Topic routing throughput: fastroute against the Python routers a user would otherwise use.

AMQP: 200,000 keys in a prebuilt batch through 100 / 1,000 / 10,000 / 100,000 bindings
(3–6 words, 50 words per level, 15% '*', 5% '#'), against a dict-of-dicts trie and kombu's
in-memory TopicExchange. MQTT: the same shape of filters against paho-mqtt's MQTTMatcher.
Baselines run on a slice of the keys and are scaled per key; each test first checks that
fastroute and the baseline agree on that slice (kombu's regex rules differ from RabbitMQ's,
so its disagreements are counted and reported instead).

    .venv/bin/python -m pytest benchmarks/test_topic.py --benchmark-columns=min,median,ops
"""

from __future__ import annotations

import time

import pytest

import fastroute as fr
from _report import best_rate, report
from baselines import DictTrie, kombu_topic, paho_matcher
from workloads import amqp_bindings, amqp_keys, mqtt_filters, mqtt_topics

N_KEYS = 200_000


@pytest.fixture(scope="module")
def keys():
    raw = amqp_keys(N_KEYS)
    return raw, fr.MessageBatch.from_keys(raw)


@pytest.mark.parametrize("n_bindings", [100, 1_000, 10_000, 100_000])
def test_amqp_topic(benchmark, capsys, keys, n_bindings):
    """AMQP topic routing vs a Python dict trie and kombu's TopicExchange."""
    raw, batch = keys
    bindings = amqp_bindings(n_bindings)
    start = time.perf_counter()
    router = fr.TopicRouter(bindings)
    compile_s = time.perf_counter() - start
    router.route(batch)  # warm: kernels loaded, buffers sized
    benchmark.group = "amqp-topic"
    routes = benchmark.pedantic(router.route, args=(batch,), rounds=5, iterations=1)

    text_keys = [k.decode() for k in raw]
    trie = DictTrie(bindings)
    trie_slice = text_keys[:max(2_000, min(20_000, 20_000_000 // n_bindings))]
    trie_rate, trie_answers = best_rate(lambda ks: [trie.match(k) for k in ks], trie_slice, repeats=2)
    assert [set(x) for x in routes.to_lists()[:len(trie_slice)]] == trie_answers

    kombu = kombu_topic(bindings)
    kombu_slice = text_keys[:max(50, min(2_000, 2_000_000 // n_bindings))]
    kombu_rate, kombu_answers = best_rate(lambda ks: [kombu(k) for k in ks], kombu_slice, repeats=1)
    differ = sum(set(x) != k for x, k in zip(routes.to_lists(), kombu_answers))
    benchmark.extra_info.update(bindings=n_bindings, compile_s=round(compile_s, 3),
                                table_bytes_per_binding=round(router.table_nbytes / n_bindings, 1),
                                destinations_per_key=round(routes.destinations.size / N_KEYS, 1),
                                kombu_keys_differing=f"{differ}/{len(kombu_slice)}")
    report(benchmark, capsys,
           f"AMQP topic, {n_bindings:,} bindings, {N_KEYS:,} keys "
           f"(compile {compile_s:.2f} s, {router.table_nbytes / n_bindings:.0f} B/binding, "
           f"{routes.destinations.size / N_KEYS:.1f} destinations/key; kombu differs from RabbitMQ "
           f"on {differ}/{len(kombu_slice)} keys)",
           N_KEYS, {"dict_trie": (f"Python dict trie ({len(trie_slice):,} keys, scaled)", trie_rate),
                    "kombu": (f"kombu TopicExchange ({len(kombu_slice):,} keys, scaled)", kombu_rate)})


def test_mqtt_topic(benchmark, capsys):
    """MQTT filters (10,000) vs paho-mqtt's MQTTMatcher."""
    filters = mqtt_filters(10_000)
    raw = mqtt_topics(N_KEYS)
    batch = fr.MessageBatch.from_keys(raw)
    router = fr.TopicRouter(filters, dialect="mqtt")
    router.route(batch)
    benchmark.group = "mqtt-topic"
    routes = benchmark.pedantic(router.route, args=(batch,), rounds=5, iterations=1)
    match = paho_matcher(filters)
    head = [k.decode() for k in raw[:20_000]]
    paho_rate, answers = best_rate(lambda ks: [match(k) for k in ks], head, repeats=2)
    assert [set(x) for x in routes.to_lists()[:len(head)]] == answers
    report(benchmark, capsys, f"MQTT filters, 10,000 subscriptions, {N_KEYS:,} topics", N_KEYS,
           {"paho": ("paho-mqtt MQTTMatcher (20,000 topics, scaled)", paho_rate)})


def test_batch_from_pylist(benchmark, capsys):
    """Building a batch of 1M messages (16-byte keys, 100-byte values) from Python lists."""
    import pyarrow as pa

    n = 1_000_000
    ks = [b"k%015d" % i for i in range(n)]
    vs = [b"v" * 100] * n
    benchmark.group = "batch"
    batch = benchmark.pedantic(fr.MessageBatch.from_pylist, kwargs=dict(keys=ks, values=vs),
                               rounds=3, iterations=1)
    assert len(batch) == n
    arrow_rate, _ = best_rate(lambda _: (pa.array(ks, pa.binary()), pa.array(vs, pa.binary())), ks, repeats=2)
    report(benchmark, capsys, f"MessageBatch.from_pylist, {n:,} messages", n,
           {"pyarrow": ("pyarrow.array(list, binary) for keys and values", arrow_rate)}, unit="messages")
