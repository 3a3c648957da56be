"""kernels/cuda_topic.py and the GPU paths of TopicRouter and DirectRouter: SEMANTICS.md's
vectors, the slow reference, and the CPU answer bit for bit (the same ids in the same order,
the same queue-group picks, the same round-robin cursors)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastroute as fr
import reference as R
from _sim import SIM
from fastroute import _device, _topic_table
from fastroute._keyed import KeyPlan
from fastroute.kernels import cuda_topic as G
from test_cuda_frame import small_launches  # noqa: F401  (autouse: small blocks, poisoned allocations)
from vectors import EDGE_KEYS, EDGE_TABLE, TOPIC1_BINDINGS, TOPIC1_TABLE




def workloads():
    """benchmarks/workloads.py (the benchmark's seeded bindings and keys)."""
    path = Path(__file__).parents[2] / "benchmarks" / "workloads.py"
    spec = importlib.util.spec_from_file_location("bench_workloads", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same(gpu: fr.Routes, cpu: fr.Routes) -> None:
    """Bit-identical Routes: offsets, destination ids in order, names."""
    gpu = gpu.to_host()
    assert gpu.offsets.tolist() == cpu.offsets.tolist()
    assert gpu.destinations.tolist() == cpu.destinations.tolist()
    assert gpu.names == cpu.names


def both(make_router, batch):
    """(GPU routes, CPU routes) from two routers built alike (stateful ones stay in step)."""
    return make_router().route(batch, backend="gpu"), make_router().route(batch, backend="cpu")


# --------------------------------------------------------------------------- strategies

AMQP_WORDS = ["a", "b", "", "ab", "*", "#", "a*", "é"]
amqp_patterns = st.lists(st.sampled_from(AMQP_WORDS), max_size=6).map(".".join)
amqp_keys = st.lists(st.sampled_from(["a", "b", "", "ab", "*", "#", "c", "é"]), max_size=8).map(".".join)
mqtt_filters = st.builds(
    lambda lv, tail: "#" if tail == "#" else "/".join(lv) + tail,
    st.lists(st.sampled_from(["a", "b", "", "+", "$x", "é"]), min_size=1, max_size=5),
    st.sampled_from(["", "/#", "#"])).filter(R.mqtt_valid_filter)
mqtt_topics = st.one_of(
    st.lists(st.sampled_from(["a", "b", "", "$x", "é", "c"]), min_size=1, max_size=6).map("/".join),
    st.sampled_from(["", "a/+", "a/#", "a\x01", "\ufffe", "\u0085", "é/\ud7ff"]))
nats_subjects = st.builds(lambda t, gt: ".".join(t + ([">"] if gt else [])),
                          st.lists(st.sampled_from(["a", "b", "ab", "*", "c*"]), min_size=1, max_size=5),
                          st.booleans())
nats_keys = st.lists(st.sampled_from(["a", "b", "ab", "", "*", ">", "c*"]), min_size=1, max_size=6).map(".".join)
DIALECT_CASES = {
    "amqp": (amqp_patterns, amqp_keys, st.sampled_from(["q0", "q1", "q2", "q3"])),
    "mqtt": (mqtt_filters, mqtt_topics, st.sampled_from(["c0", "c1", "c2"])),
    "nats": (nats_subjects, nats_keys, st.sampled_from(["s0", "s1", "s2"])),
}


@st.composite
def topic_case(draw, dialect=None, groups=True, max_bindings=20, max_keys=30):
    """(dialect, bindings, keys): bindings may include MQTT shared subscriptions or NATS
    queue members when ``groups``; keys may repeat and include None."""
    dialect = dialect or draw(st.sampled_from(sorted(DIALECT_CASES)))
    patterns, keys, dests = DIALECT_CASES[dialect]
    bindings = []
    for pattern, dest in draw(st.lists(st.tuples(patterns, dests), max_size=max_bindings)):
        kind = draw(st.sampled_from(["plain", "plain", "group"])) if groups else "plain"
        if kind == "group" and dialect == "mqtt":
            bindings.append((f"$share/{draw(st.sampled_from('gh'))}/{pattern}", dest))
        elif kind == "group" and dialect == "nats":
            bindings.append((pattern, dest, draw(st.sampled_from(["w", "v"]))))
        else:
            bindings.append((pattern, dest))
    return dialect, bindings, draw(st.lists(st.one_of(st.none(), keys), max_size=max_keys))


# --------------------------------------------------------------------------- the per-key body on the CPU

def body_answers(table, keys, cap):
    """Per key: (ascending destination ids, group targets) from the device body compiled for
    the CPU, re-run with a bitmap row when its local set overflows (the wide pass)."""
    words = np.empty(G.MAX_WORDS, np.int32)
    stack = np.empty(G.MAX_STACK, np.int32)
    rows = np.empty(G.MAX_SPECS, np.int64)
    dest = np.empty(G.MAX_DEST, np.int32)
    gdest = np.empty(G.MAX_GROUPS, np.int32)
    bm = np.zeros((1, (table.n_dest + 63) // 64 or 1), np.uint64)
    out = []
    for key in keys:
        data = np.frombuffer(key, np.uint8).copy()
        nd, ng, status = G.match_key_cpu(table, data, 0, data.shape[0], words, stack, rows, dest, cap, bm, 0,
                                         False, gdest)
        if status == G.WIDE:
            bm[:] = 0
            nd, ng, status = G.match_key_cpu(table, data, 0, data.shape[0], words, stack, rows, dest, cap, bm,
                                             0, True, gdest)
            ids = [w * 64 + b for w in range(bm.shape[1]) for b in range(64) if int(bm[0, w]) >> b & 1]
        else:
            ids = dest[:nd].tolist()
        assert status == G.OK
        out.append((ids, gdest[:ng].tolist()))
    return out


def cpu_answers(router, keys):
    """Per distinct key: (destination ids, group targets) from the CPU matcher."""
    plan = KeyPlan(fr.MessageBatch.from_pylist(keys=keys), header_keys=False)
    (start, count, buf), groups = router._match(plan)
    out = []
    for u in range(len(keys)):
        gt = groups[1][groups[0][u]:groups[0][u + 1]].tolist() if groups else []
        out.append((buf[start[u]:start[u] + count[u]].tolist(), gt))
    return out


@settings(max_examples=150, deadline=None)
@given(case=topic_case(max_bindings=30, max_keys=40), cap=st.sampled_from([1, 2, G.MAX_DEST]))
def test_device_body_equals_cpu_matcher(case, cap):
    """The device's per-key body (compiled for the CPU) gives each key the CPU matcher's
    destination ids and group targets in the same order, also through the wide pass."""
    dialect, bindings, keys = case
    router = fr.TopicRouter(bindings, dialect=dialect, seed=1)
    distinct = list(dict.fromkeys(k.encode() for k in keys if k is not None))
    assert body_answers(router._table, distinct, cap) == cpu_answers(router, distinct)


@pytest.fixture
def tiny_tables(monkeypatch):
    """Every table-building fallback at once (as tests/test_topic.py's tiny_tables)."""
    for name, value in (("LEAF_BYTES_PER_PATTERN", 0), ("LEAF_BYTES_FIXED", 0), ("DENSE_LUT_MIN_BYTES", 0),
                        ("DENSE_LUT_BYTES_PER_PATTERN", 0), ("BITMAP_MAX_DEST", 0), ("SHORT_AFFIX", 1)):
        monkeypatch.setattr(_topic_table, name, value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=topic_case(dialect="amqp", groups=False, max_bindings=25))
def test_device_body_on_fallback_tables(tiny_tables, case):
    """Split nodes, the hashed lookup and sorted (not bitmap) output, forced: still equal."""
    _, bindings, keys = case
    router = fr.TopicRouter(bindings)
    distinct = list(dict.fromkeys(k.encode() for k in keys if k is not None))
    assert body_answers(router._table, distinct, G.MAX_DEST) == cpu_answers(router, distinct)


def test_device_body_on_the_benchmark_table():
    """10,000 AMQP bindings (15% '*', 5% '#'), 2,000 keys: the body equals the CPU matcher."""
    w = workloads()
    router = fr.TopicRouter(w.amqp_bindings(10_000))
    keys = list(dict.fromkeys(w.amqp_keys(2_000)))
    got = body_answers(router._table, keys, G.MAX_DEST)
    assert got == cpu_answers(router, keys)
    assert sum(len(d) for d, _ in got) > 5 * len(keys)  # a real workload: several queues per key


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), n_dest=st.integers(1, 70), n_gb=st.integers(0, 8),
       seed=st.integers(0, 2 ** 63 - 1), counter=st.integers(0, 2 ** 40), cap=st.sampled_from([1, 4, G.MAX_DEST]))
def test_expand_body_equals_cpu_expansion(data, n, n_dest, n_gb, seed, counter, cap):
    """The device's per-message union (compiled for the CPU): for messages with extra keys and
    queue-group candidates, the ids of the CPU's expand_multi with seeded picks, ascending."""
    from fastroute.kernels.expand import RANDOM, expand_multi

    extras = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    ext_off = np.zeros(n + 1, np.int64)
    np.cumsum(extras, out=ext_off[1:])
    items = n + int(ext_off[-1])
    answers = [sorted(data.draw(st.sets(st.integers(0, n_dest - 1), max_size=6))) for _ in range(items)]
    group_lists = [data.draw(st.lists(st.integers(0, n_gb - 1), max_size=3)) if n_gb else [] for _ in range(items)]
    gb_group = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n_gb, max_size=n_gb)), np.int32)
    gb_dest = np.array(data.draw(st.lists(st.integers(0, n_dest - 1), min_size=n_gb, max_size=n_gb)), np.int32)

    def csr(lists):
        off = np.zeros(len(lists) + 1, np.int64)
        np.cumsum([len(x) for x in lists], out=off[1:])
        return off, np.array([v for x in lists for v in x], np.int32)

    item_off, item_dest = csr(answers)
    item_goff, item_gb = csr(group_lists)
    msg_keys = [k for i in range(n) for k in [i] + list(range(n + ext_off[i], n + ext_off[i + 1]))]
    msg_off = np.zeros(n + 1, np.int64)
    np.cumsum([1 + e for e in extras], out=msg_off[1:])
    cpu_off, cpu = expand_multi(msg_off, np.array(msg_keys, np.int64), item_off, item_dest, item_goff, item_gb,
                                gb_group, gb_dest, RANDOM, np.zeros(3, np.int64), seed, counter)
    dest = np.empty(G.MAX_DEST, np.int32)
    bm = np.zeros((1, (n_dest + 63) // 64), np.uint64)
    for i in range(n):
        args = (i, n, ext_off, item_off, item_dest, item_goff, item_gb, gb_group, gb_dest, RANDOM,
                np.zeros(1, np.int64), seed, counter + i, dest, cap, bm, 0)
        nd = G.expand_one_cpu(*args, False)
        if nd < 0:
            bm[:] = 0
            G.expand_one_cpu(*args, True)
            got = [w * 64 + b for w in range(bm.shape[1]) for b in range(64) if int(bm[0, w]) >> b & 1]
        else:
            got = dest[:nd].tolist()
        assert got == cpu[cpu_off[i]:cpu_off[i + 1]].tolist()


@settings(max_examples=100, deadline=None)
@given(bound=st.lists(st.binary(max_size=6), max_size=20, unique=True), keys=st.lists(st.binary(max_size=6),
                                                                                      max_size=20))
def test_exact_key_body_equals_cpu_lookup(bound, keys):
    """The device's exact-key probe (compiled for the CPU) finds the id the CPU lookup finds."""
    from fastroute.kernels.keys import build_string_table, hash_bytes, lookup_string

    col = fr.BinaryColumn.from_pylist(bound)
    slots, hashes = build_string_table(col.offsets, col.data)
    for key in keys + bound:
        data = np.frombuffer(key, np.uint8).copy()
        h = np.uint64(hash_bytes(data, 0, len(key)))
        want = lookup_string(slots, hashes, col.offsets, col.data, data, 0, len(key), h)
        assert G.lookup_cpu(slots, hashes, col.offsets, col.data, data, 0, len(key)) == want
        assert want == (bound.index(key) if key in bound else -1)


# --------------------------------------------------------------------------- published vectors

def test_routing_suite_topic1_vectors_on_the_device(launch_shape):
    """RabbitMQ's topic1 table through the GPU path: every key reaches exactly its bindings."""
    router = fr.TopicRouter(TOPIC1_BINDINGS)
    keys = list(TOPIC1_TABLE)
    routes = router.route(keys, backend="gpu")
    for key, got in zip(keys, routes.to_lists()):
        assert set(got) == set(TOPIC1_TABLE[key].split()), key
    assert_same(routes, router.route(keys, backend="cpu"))


def test_edge_case_table_on_the_device():
    """SEMANTICS §1 edge cases (empty words, '.', '..') through the GPU path."""
    router = fr.TopicRouter([(p, p) for p in EDGE_TABLE])
    got = router.route(EDGE_KEYS, backend="gpu").to_lists()
    for pattern, marks in EDGE_TABLE.items():
        for key, mark, dests in zip(EDGE_KEYS, marks, got):
            assert (pattern in dests) == (mark == "Y"), (pattern, key)


MQTT_VECTORS = [("foo/#", "foo/", True), ("foo/#", "foo", True), ("foo//+", "foo//bar", True),
                ("foo/+/+/baz", "foo///baz", True), ("A/B/+/#", "A/B/B/C", True), ("#", "/foo/bar", True),
                ("+/+", "/finance", True), ("$SYS/#", "$SYS/x", True), ("test/6/#", "test/3", False),
                ("foo/+", "foo/bar/baz", False), ("#", "$SYS/bar", False), ("+", "/finance", False),
                ("+/monitor/Clients", "$SYS/monitor/Clients", False), ("#", "a/+", False), ("#", "a/#", False),
                ("#", "", False), ("#", "a\x7f", False), ("#", "\u00a0", True)]
NATS_VECTORS = [("foo", "*", True), ("foo.bar", ">", True), ("stats.test.22", "stats.*.*", True),
                ("foo*", "foo*", True), ("foo>bar", "foo>bar", True), ("foo.bar", "bar.>", False),
                ("stats.test", "stats.test.*", False), ("foo", "foo.>", False), ("a..b", "a.*.b", False)]


def test_mqtt_and_nats_vectors_on_the_device():
    """mosquitto's and nats-server's published (filter, topic) cases through the GPU path."""
    for filt, topic, hit in MQTT_VECTORS:
        assert fr.TopicRouter([(filt, "c")], dialect="mqtt").route([topic], backend="gpu")[0] == (
            ["c"] if hit else []), (filt, topic)
    for subject, filt, hit in NATS_VECTORS:
        assert fr.TopicRouter([(filt, "s")], dialect="nats").route([subject], backend="gpu")[0] == (
            ["s"] if hit else []), (filt, subject)


# --------------------------------------------------------------------------- routers on the device

@SIM
@given(case=topic_case(max_bindings=12, max_keys=24))
def test_topic_router_gpu_equals_cpu(launch_shape, case):
    """Random bindings of every dialect (shared subscriptions and queue groups included):
    the GPU routes equal the CPU's bit for bit, and plain bindings equal the reference."""
    dialect, bindings, keys = case
    batch = fr.MessageBatch.from_pylist(keys=keys)
    gpu, cpu = both(lambda: fr.TopicRouter(bindings, dialect=dialect, seed=5), batch)
    assert_same(gpu, cpu)
    plain = [b for b in bindings if len(b) == 2 and not b[0].startswith("$share/")]
    if len(plain) == len(bindings):
        for key, row in zip(keys, gpu.to_lists()):
            assert set(row) == R.topic_route(plain, key, dialect)


@st.composite
def cc_headers(draw):
    """A message's headers: maybe CC / BCC lists mixing str with other values."""
    row = {}
    for name in ("CC", "BCC"):
        if draw(st.booleans()):
            row[name] = draw(st.lists(st.one_of(amqp_keys, st.integers(0, 3), st.binary(max_size=2)), max_size=3))
    if draw(st.booleans()):
        row["other"] = "x"
    return row or None


@SIM
@given(bindings=st.lists(st.tuples(amqp_patterns, st.sampled_from(["q0", "q1", "q2"])), max_size=12),
       rows=st.lists(st.tuples(st.one_of(st.none(), amqp_keys), cc_headers()), min_size=1, max_size=16))
def test_cc_and_bcc_on_the_device(bindings, rows):
    """CC and BCC keys are extracted on the device; topic and direct answers equal the CPU's
    and the reference (the union over all routing keys)."""
    keys = [k for k, _ in rows]
    headers = [h for _, h in rows]
    batch = fr.MessageBatch.from_pylist(keys=keys, headers=headers)
    gpu, cpu = both(lambda: fr.TopicRouter(bindings), batch)
    assert_same(gpu, cpu)
    for (key, h), row in zip(rows, gpu.to_lists()):
        assert set(row) == R.topic_route(bindings, key, "amqp", h)
    direct = [(p, d) for p, d in bindings if "*" not in p and "#" not in p]
    gpu, cpu = both(lambda: fr.DirectRouter(direct), batch)
    assert_same(gpu, cpu)
    for (key, h), row in zip(rows, gpu.to_lists()):
        assert set(row) == R.direct_route(direct, key, h)


def test_cc_that_is_not_an_array_is_refused_on_the_device():
    """The device finds the first message whose CC is not a list and raises the CPU's error."""
    router = fr.TopicRouter([("a", "q")])
    batch = fr.MessageBatch.from_pylist(keys=["a", "a", "a"], headers=[{"CC": ["a"]}, None, {"BCC": "b"}])
    with pytest.raises(fr.BatchError, match="message 2") as exc:
        router.route(batch, backend="gpu")
    assert exc.value.index == 2


def test_nats_queue_groups_pick_like_the_cpu_across_batches():
    """Seeded queue-group picks on the device equal the CPU's, batch after batch."""
    bindings = [("orders.*", "w1", "workers"), ("orders.>", "w2", "workers"), ("orders.eu", "w3", "workers"),
                ("orders.*", "a1", "audit"), ("orders.*", "tap", None), ("orders.>", "w1", "audit")]
    keys = ["orders.eu", "orders.us", "orders.us.x", None, "orders.eu"] * 8
    gpu_router = fr.TopicRouter(bindings, dialect="nats", seed=11)
    cpu_router = fr.TopicRouter(bindings, dialect="nats", seed=11)
    for _ in range(2):
        assert_same(gpu_router.route(keys, backend="gpu"), cpu_router.route(keys, backend="cpu"))


def test_mqtt_shared_subscriptions_keep_the_cpu_cursors():
    """Round-robin members on the device path follow the CPU's cursors across batches."""
    subs = [("$share/g/a/+", "m1"), ("$share/g/a/+", "m2"), ("$share/g/a/+", "m3"), ("$share/h/a/+", "h1"),
            ("a/#", "plain"), ("$share/g/b", "m1")]
    gpu_router = fr.TopicRouter(subs, dialect="mqtt")
    cpu_router = fr.TopicRouter(subs, dialect="mqtt")
    for keys in (["a/1", "a/2", "b", "$x/1"], ["a/3", "a/4", "b"]):
        assert_same(gpu_router.route(keys, backend="gpu"), cpu_router.route(keys, backend="cpu"))


def test_wide_keys_take_the_bitmap_pass(launch_shape):
    """Keys with more destinations than the local set (cap lowered to 2) are matched again
    with bitmap rows: same ids, ascending. Messages with CC keys go through the wide union."""
    bindings = [(f"k.{i % 7}.#", f"d{i}") for i in range(60)] + [("#", "all"), ("k.*", "two")]
    router = fr.TopicRouter(bindings)
    keys = ["k.3.x", "k.9", "z", None, "k.1.a", "k.3.x"]
    batch = fr.MessageBatch.from_pylist(keys=keys)
    dt = G.upload_table(router._table, lambda a: _device.upload_cached(router, "topic", a))
    dev = batch.to_device()
    off, dest, _, _ = G.topic_items(dt, dev.keys.offsets, dev.keys.data, dev.keys.validity, False, cap=2)
    cpu = router.route(batch, backend="cpu")
    assert off.copy_to_host().tolist() == cpu.offsets.tolist()
    assert dest.copy_to_host().tolist() == cpu.destinations.tolist()
    empty64 = _device.to_device_array(np.zeros(0, np.int64))
    empty32 = _device.to_device_array(np.zeros(0, np.int32))
    ext = _device.to_device_array(np.zeros(len(keys) + 1, np.int64))
    o2, d2 = G.expand(len(keys), ext, off, dest, empty64, empty32, empty32, empty32, 0, 0, 0, len(router.names),
                      cap=2)
    assert o2.copy_to_host().tolist() == cpu.offsets.tolist()
    assert d2.copy_to_host().tolist() == cpu.destinations.tolist()


@settings(SIM, max_examples=10)
@pytest.mark.parametrize("width", [0, 1, 3, None])
@given(case=topic_case(max_bindings=12, max_keys=24))
def test_stash_width_does_not_change_the_answer(launch_shape, monkeypatch, width, case):
    """Keys whose destinations fit the stash are copied by the fill pass, the others matched
    again: with no stash, a narrow one (most keys matched again) or the default, the GPU
    routes equal the CPU's."""
    dialect, bindings, keys = case
    if width is not None:
        monkeypatch.setattr(G, "STASH_BYTES", 4 * max(1, len(keys)) * width)
        assert G.stash_width(len(keys), G.MAX_DEST) == width
    batch = fr.MessageBatch.from_pylist(keys=keys)
    gpu, cpu = both(lambda: fr.TopicRouter(bindings, dialect=dialect, seed=5), batch)
    assert_same(gpu, cpu)


def test_stash_width_stays_within_its_budget(monkeypatch):
    """The per-key width shrinks as batches grow, never past the local set size."""
    monkeypatch.setattr(G, "STASH_BYTES", 4 << 20)
    assert G.stash_width(1, G.MAX_DEST) == G.MAX_DEST
    assert G.stash_width(1 << 15, G.MAX_DEST) == 32
    assert G.stash_width(1 << 20, 2) == 1
    assert G.stash_width(1 << 21, G.MAX_DEST) == 0


def test_keys_past_the_device_limits_route_on_the_cpu(monkeypatch):
    """A key with more words than a thread holds, or a table deeper than its stack, is routed
    on the CPU with the same answer."""
    router = fr.TopicRouter([("#", "all"), ("a.#", "a"), ("*.*", "two")])
    keys = ["a." * (G.MAX_WORDS + 3) + "z", "a.b", "x"]
    assert_same(router.route(keys, backend="gpu"), router.route(keys, backend="cpu"))
    monkeypatch.setattr(G, "MAX_STACK", 1)
    assert not G.fits(router._table)
    assert_same(router.route(keys[1:], backend="gpu"), router.route(keys[1:], backend="cpu"))


def test_device_batches_give_device_routes_and_upload_the_table_once(monkeypatch):
    """A device batch routes to device Routes; the table is uploaded once per router."""
    router = fr.TopicRouter([("a.*", "qa"), ("#.b", "qb")])
    batch = fr.MessageBatch.from_pylist(keys=["a.b", "c.b", None, "a.x"])
    first = router.route(batch.to_device(), backend="gpu")
    assert first.device == "gpu"
    assert_same(first, router.route(batch, backend="cpu"))
    table_arrays = [id(a) for a in router._table if isinstance(a, np.ndarray)]
    uploads = []
    real = _device.to_device_array

    def spy(x, *args, **kw):
        if id(x) in table_arrays:
            uploads.append(x)
        return real(x, *args, **kw)

    monkeypatch.setattr(_device, "to_device_array", spy)
    second = router.route(batch.to_device(), backend="gpu")
    assert uploads == []
    assert_same(second, router.route(batch, backend="cpu"))


def test_direct_router_on_the_device(launch_shape):
    """Exact keys (empty and repeated ones, nulls, a queue bound twice) and the default
    exchange equal the CPU and the reference."""
    bindings = [("a", "q1"), ("b", "q2"), ("a", "q3"), ("", "q4"), ("a", "q1"), ("ключ", "q2")]
    keys = ["a", "b", "", None, "zz", "a", "ключ", "A"]
    gpu, cpu = both(lambda: fr.DirectRouter(bindings), keys)
    assert_same(gpu, cpu)
    assert [set(r) for r in gpu.to_lists()] == [R.direct_route(bindings, k) for k in keys]
    default = fr.DirectRouter.default_exchange(["a", "b"])
    assert default.route(["b", "c", "a"], backend="gpu").to_lists() == [["b"], [], ["a"]]


def test_empty_batches_and_routers_on_the_device():
    """No messages, no bindings, only null keys: the CPU's (empty) answers."""
    for router in (fr.TopicRouter([("#", "q")]), fr.TopicRouter([]), fr.DirectRouter([("a", "q")])):
        for keys in ([], [None, None], ["a"]):
            assert_same(router.route(keys, backend="gpu"), router.route(keys, backend="cpu"))


@pytest.mark.gpu
def test_benchmark_workload_on_a_real_gpu():
    """On a real GPU: 10,000 AMQP bindings, 200,000 keys, host and device batches equal the CPU."""
    import numba

    if numba.config.ENABLE_CUDASIM:
        pytest.skip("sized for a real GPU")
    w = workloads()
    router = fr.TopicRouter(w.amqp_bindings(10_000))
    batch = fr.MessageBatch.from_pylist(keys=w.amqp_keys(200_000))
    cpu = router.route(batch, backend="cpu")
    assert_same(router.route(batch, backend="gpu"), cpu)
    assert_same(router.route(batch.to_device(), backend="gpu"), cpu)
