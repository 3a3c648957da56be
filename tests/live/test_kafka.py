"""Kafka partitioners held against librdkafka (and the Java client's rule) producing to Tansu.

Every key is produced once per librdkafka partitioner and partition count; the partition each
message landed in comes from its delivery report and is read back from the broker. Keyed
placements must equal ``reference.partition`` and ``fastroute.Partitioner`` exactly; placements
the client draws at random (null keys, and empty keys under ``consistent_random``) are checked
only for eligibility (a partition in range), as SEMANTICS.md §9 specifies.
"""

from __future__ import annotations

import random
import warnings

import pytest

import reference

from . import _kafka
from ._support import fastroute_class, seed_hint

pytestmark = [pytest.mark.broker, pytest.mark.timeout(180)]

ALGORITHMS = ("consistent", "murmur2", "fnv1a", "consistent_random", "murmur2_random", "fnv1a_random")
COUNTS = (1, 7, 17, 100)

#: Keys with published partitions (SEMANTICS.md §8 and §9), always produced first.
VECTOR_KEYS = [
    None, b"", b"23456", b"this is another string with more length to it perhaps", b"hejsan",
    b"21", b"abc", b"foobar", b"kafka", b"a-little-bit-long-string", b"a-little-bit-longer-string",
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", "ключ".encode(),
    b"giberish123456789", b"1234", b"234", b"34", b"4", b"PreAmbleWillBeRemoved,ThePrePartThatIs",
]

#: Published partitions, (algorithm, partition count, key) -> partition. §9 `0048-partitioner.c`
#: at 17 partitions; §8 Java client table at 100 partitions (murmur2 as librdkafka computes it).
PUBLISHED = {
    ("consistent", 17, None): 0, ("consistent", 17, b""): 0, ("consistent", 17, b"23456"): 7,
    ("consistent", 17, VECTOR_KEYS[3]): 15, ("consistent", 17, b"hejsan"): 14,
    ("murmur2", 17, None): 11, ("murmur2", 17, b""): 11, ("murmur2", 17, b"23456"): 9,
    ("murmur2", 17, VECTOR_KEYS[3]): 11, ("murmur2", 17, b"hejsan"): 5,
    ("fnv1a", 17, None): 0, ("fnv1a", 17, b""): 0, ("fnv1a", 17, b"23456"): 6,
    ("fnv1a", 17, VECTOR_KEYS[3]): 0, ("fnv1a", 17, b"hejsan"): 4,
    ("murmur2", 100, b""): 81, ("murmur2", 100, b"21"): 40, ("murmur2", 100, b"abc"): 7,
    ("murmur2", 100, b"foobar"): 66, ("murmur2", 100, b"kafka"): 80,
    ("murmur2", 100, b"a-little-bit-long-string"): 12, ("murmur2", 100, b"a-little-bit-longer-string"): 19,
    ("murmur2", 100, VECTOR_KEYS[11]): 77, ("murmur2", 100, "ключ".encode()): 24,
}


def draw_keys(rng: random.Random) -> list:
    """Vector keys, then nulls, empties, ASCII and non-ASCII text, raw bytes and long keys."""
    keys = list(VECTOR_KEYS)
    for _ in range(220):
        kind = rng.random()
        if kind < 0.08:
            keys.append(None)
        elif kind < 0.14:
            keys.append(b"")
        elif kind < 0.45:
            keys.append(f"user-{rng.randrange(10 ** rng.randint(1, 9))}".encode())
        elif kind < 0.65:
            keys.append("".join(rng.choice("aé€ключ传感器𝄞") for _ in range(rng.randint(1, 12))).encode())
        elif kind < 0.95:
            keys.append(rng.randbytes(rng.randint(1, 40)))
        else:
            keys.append(rng.randbytes(rng.randint(200, 1500)))
    return keys


class Placements:
    """What the broker reported and stored for every (algorithm, partition count)."""

    def __init__(self, keys, topics):
        self.keys = keys
        self.topics = topics          # partition count -> topic
        self.reported = {}            # (algorithm, n) -> partition per key (delivery reports)
        self.stored = {}              # (algorithm, n) -> partition per key (read back)
        self.java = {}                # n -> partition per key (kafka-python's default partitioner)


def _java_client_partitions(bootstrap: str, topic: str, keys: list, tag: str) -> list:
    """Partitions chosen by kafka-python's DefaultPartitioner (the Java client's murmur2 rule)."""
    with warnings.catch_warnings():
        # kafka-python 3.0 loads its protocol schemas through a deprecated importlib API
        warnings.filterwarnings("ignore", "(read|open)_text is deprecated", DeprecationWarning)
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        try:
            futures = [producer.send(topic, key=k, value=f"{tag}{i}".encode()) for i, k in enumerate(keys)]
            producer.flush(30)
            return [f.get(timeout=30).partition for f in futures]
        finally:
            producer.close(10)


@pytest.fixture(scope="module")
def placements(tansu, run_id, live_seed):
    keys = draw_keys(random.Random(f"{live_seed}/kafka"))
    topics = {n: f"fastroute.live.{run_id}.p{n}" for n in COUNTS}
    _kafka.create_topics(tansu, {t: n for n, t in topics.items()})
    try:
        out = Placements(keys, topics)
        for n, topic in topics.items():
            for algorithm in ALGORITHMS:
                out.reported[algorithm, n] = _kafka.produce(tansu, topic, keys, algorithm, f"{algorithm}:")
            out.java[n] = _java_client_partitions(tansu, topic, keys, "java:")
            stored = _kafka.read_back(tansu, topic, n, len(keys) * (len(ALGORITHMS) + 1))
            for algorithm in ALGORITHMS:
                out.stored[algorithm, n] = [stored.get(f"{algorithm}:{i}".encode()) for i in range(len(keys))]
            java_stored = [stored.get(f"java:{i}".encode()) for i in range(len(keys))]
            assert java_stored == out.java[n], f"{topic}: kafka-python's messages are stored elsewhere than reported"
        yield out
    finally:
        _kafka.delete_topics(tansu, topics.values())


def _mismatches(keys, got, n, want) -> list:
    """(index, key, got, expected) where ``got`` breaks ``want``.

    ``want`` holds per key an exact partition, or None where any partition in 0..n-1 is right.
    """
    bad = []
    for i, (key, p, w) in enumerate(zip(keys, got, want)):
        if p is None or not 0 <= p < n or (w is not None and p != w):
            bad.append((i, key, p, f"any of 0..{n - 1}" if w is None else w))
    return bad


def _fail(what: str, bad: list, seed: int) -> None:
    lines = [f"{what}: {len(bad)} keys differ ({seed_hint(seed)}):"]
    lines += [f"  #{i} key={key!r}: got {got}, expected {want}" for i, key, got, want in bad[:12]]
    pytest.fail("\n".join(lines))


def test_broker_stores_each_message_in_the_reported_partition(placements):
    """Reading every partition back from Tansu finds each message where its delivery report said."""
    for (algorithm, n), reported in placements.reported.items():
        assert placements.stored[algorithm, n] == reported, f"{algorithm}, {n} partitions"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_librdkafka_matches_the_reference(placements, algorithm, live_seed):
    """librdkafka's partitioner places keyed messages as reference.partition says, random ones in range."""
    for n in COUNTS:
        want = [reference.partition(k, n, algorithm) for k in placements.keys]
        bad = _mismatches(placements.keys, placements.reported[algorithm, n], n, want)
        if bad:
            _fail(f"librdkafka {algorithm} vs reference, {n} partitions", bad, live_seed)


def test_librdkafka_matches_the_published_vectors(placements):
    """The partitions librdkafka picks for the published keys are the published ones."""
    index = {k: VECTOR_KEYS.index(k) for k in VECTOR_KEYS}
    for (algorithm, n, key), want in PUBLISHED.items():
        got = placements.reported[algorithm, n][index[key]]
        assert got == want, f"{algorithm}, {n} partitions, key {key!r}: broker {got}, published {want}"


def test_java_client_partitioner_matches_the_reference(placements, live_seed):
    """kafka-python's default partitioner (Java's murmur2 rule; null keys random) agrees with the reference."""
    for n in COUNTS:
        want = [None if k is None else reference.partition(k, n, "murmur2") for k in placements.keys]
        bad = _mismatches(placements.keys, placements.java[n], n, want)
        if bad:
            _fail(f"kafka-python default partitioner vs reference, {n} partitions", bad, live_seed)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_partitioner_matches_librdkafka(placements, algorithm, live_seed):
    """fastroute.Partitioner gives every keyed message librdkafka's partition, every message one in range."""
    import fastroute as fr

    Partitioner = fastroute_class("Partitioner")
    batch = fr.MessageBatch.from_pylist(keys=placements.keys)
    for n in COUNTS:
        routes = Partitioner(n, algorithm=algorithm).route(batch)
        got = routes.to_lists()
        assert len(got) == len(placements.keys)
        single = [i for i, dests in enumerate(got) if len(dests) != 1]
        assert not single, f"{algorithm}, {n} partitions: messages {single[:10]} lack exactly one partition"
        mine = [int(d[0]) for d in got]
        broker = placements.reported[algorithm, n]
        # Where the client draws at random, only the range is fixed; elsewhere the broker's pick.
        want = [None if reference.partition(k, n, algorithm) is None else p
                for k, p in zip(placements.keys, broker)]
        bad = _mismatches(placements.keys, mine, n, want)
        if bad:
            _fail(f"fastroute.Partitioner({n}, {algorithm!r}) vs librdkafka", bad, live_seed)


def test_partitioner_murmur2_matches_the_java_client(placements, live_seed):
    """fastroute's murmur2 partitioner agrees with kafka-python's default partitioner on every non-null key."""
    import fastroute as fr

    Partitioner = fastroute_class("Partitioner")
    batch = fr.MessageBatch.from_pylist(keys=placements.keys)
    for n in COUNTS:
        mine = [int(d[0]) for d in Partitioner(n, algorithm="murmur2_random").route(batch).to_lists()]
        java = placements.java[n]
        bad = [(i, k, mine[i], java[i]) for i, k in enumerate(placements.keys)
               if k is not None and mine[i] != java[i]]
        if bad:
            _fail(f"fastroute murmur2_random vs kafka-python, {n} partitions", bad, live_seed)
