"""kernels/cuda_hashing.py and the GPU paths of Partitioner, RoundRobinRouter, RandomRouter and
FanoutRouter: bit for bit the CPU answers, the published vectors and the references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import cuda, njit

import fastroute as fr
import reference as ref
import reference_gpu as rg
import reference_hashing as rh
from _sim import SIM, dev, host, keys, u64
from fastroute.kernels import cuda_hashing as G
from fastroute.kernels import hashing as H

ALGORITHMS = ["murmur2", "consistent", "fnv1a", "murmur2_random", "consistent_random", "fnv1a_random"]


@cuda.jit
def _hash_all(which, offsets, data, out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        if which == 0:
            out[i] = G.murmur2_gpu(data, offsets[i], offsets[i + 1])
        elif which == 1:
            out[i] = G.crc32_gpu(data, offsets[i], offsets[i + 1])
        else:
            out[i] = G.fnv1a_gpu(data, offsets[i], offsets[i + 1])


def device_hashes(which: int, items: list) -> list:
    col = fr.BinaryColumn.from_pylist(items)
    out = cuda.device_array(len(items), np.uint32)
    _hash_all[3, 4](which, dev(col.offsets), dev(col.data) if col.data.size else dev(np.zeros(1, np.uint8)), out)
    return host(out).tolist()


# --------------------------------------------------------------- published vectors (SEMANTICS §8-9)

JAVA_MURMUR2 = [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
                (b"a-little-bit-longer-string", -1486304829),
                (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), (b"abc", 479470107)]
PREAMBLE = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
RDK_MURMUR2 = [(b"kafka", 0xD067CF64), (b"giberish123456789", 0x8F552B0C), (b"1234", 0x9FC97B14),
               (b"234", 0xE7C009CA), (b"34", 0x873930DA), (b"4", 0x5A4B5CA1), (PREAMBLE, 0x78424F1C),
               (PREAMBLE[1:], 0x4A62B377), (PREAMBLE[2:], 0xE0E4E09E), (PREAMBLE[3:], 0x62B8B43F),
               (b"", 0x106E08D9)]
RDK_FNV1A = [(b"kafka", 0xD33C4E1), (b"giberish123456789", 0x77A58295), (b"1234", 0x23BDD03),
             (b"234", 0x2DEA3CD2), (b"34", 0x740FA83E), (b"4", 0x310CA263), (PREAMBLE, 0x65CBD69C),
             (PREAMBLE[1:], 0x6E49C79A), (PREAMBLE[2:], 0x69EED356), (PREAMBLE[3:], 0x6ABCC023),
             (b"", 0x7EE3623B)]
# SEMANTICS §8: key, then partitions for n = 2, 3, 6, 10, 12, 16, 100
COUNTS = [2, 3, 6, 10, 12, 16, 100]
JAVA_PARTITIONS = [(b"", [1, 0, 3, 1, 9, 9, 81]), (b"21", [0, 0, 0, 0, 0, 12, 40]),
                   (b"abc", [1, 0, 3, 7, 3, 11, 7]), (b"foobar", [0, 0, 0, 6, 6, 14, 66]),
                   (b"kafka", [0, 1, 4, 0, 4, 4, 80]), (b"a-little-bit-long-string", [0, 2, 2, 2, 8, 0, 12]),
                   (b"a-little-bit-longer-string", [1, 2, 5, 9, 11, 3, 19]),
                   ("ключ", [0, 2, 2, 4, 8, 0, 24])]
# SEMANTICS §9, librdkafka 0048-partitioner.c with 17 partitions: NULL, "", 23456, long, hejsan
RDK_KEYS = [None, b"", b"23456", b"this is another string with more length to it perhaps", b"hejsan"]
RDK_17 = {"consistent": [0, 0, 7, 15, 14], "murmur2": [11, 11, 9, 11, 5], "fnv1a": [0, 0, 6, 0, 4]}


def test_device_murmur2_matches_java_and_librdkafka_vectors():
    """The device murmur2 gives the Java client's and librdkafka's published values."""
    got = device_hashes(0, [k for k, _ in JAVA_MURMUR2 + RDK_MURMUR2])
    want = [v & 0xFFFFFFFF for _, v in JAVA_MURMUR2 + RDK_MURMUR2]
    assert got == want


def test_device_fnv1a_matches_librdkafka_vectors():
    """The device fnv1a gives librdkafka's published values (sign folded)."""
    assert device_hashes(2, [k for k, _ in RDK_FNV1A]) == [v for _, v in RDK_FNV1A]


def test_device_crc32_check_value():
    """The device crc32 gives the CRC-32/ISO-HDLC check value and 0048-partitioner's values."""
    got = device_hashes(1, [b"123456789", b"23456", RDK_KEYS[3], b"hejsan", b""])
    assert got == [0xCBF43926, 0xB1B451D7, 0xB0150DF7, 0xD077037E, 0]


@SIM
@given(items=st.lists(st.binary(max_size=40), min_size=1, max_size=30))
def test_device_hashes_match_reference(launch_shape, items):
    """murmur2, crc32 and fnv1a on the device equal the readable references on random keys."""
    assert device_hashes(0, items) == [ref.murmur2(k) & 0xFFFFFFFF for k in items]
    assert device_hashes(1, items) == [ref.crc32(k) for k in items]
    assert device_hashes(2, items) == [ref.fnv1a(k) for k in items]


def test_java_partition_table_on_the_gpu(launch_shape):
    """Partitioner(n, 'murmur2') with backend='gpu' reproduces SEMANTICS §8's partition table."""
    batch = fr.MessageBatch.from_keys([k for k, _ in JAVA_PARTITIONS])
    for col, n in enumerate(COUNTS):
        got = fr.Partitioner(n).route(batch, backend="gpu").destinations.tolist()
        assert got == [row[col] for _, row in JAVA_PARTITIONS], n


@pytest.mark.parametrize("algorithm", ["consistent", "murmur2", "fnv1a"])
def test_librdkafka_table_on_the_gpu(algorithm):
    """librdkafka's 0048-partitioner expectations with 17 partitions, null key included."""
    got = fr.Partitioner(17, algorithm).route(RDK_KEYS, backend="gpu").destinations.tolist()
    assert got == RDK_17[algorithm]


# --------------------------------------------------------------- kernels equal the CPU kernels

def column(items):
    col = fr.BinaryColumn.from_pylist(items)
    validity = np.zeros(0, np.bool_) if col.validity is None else col.validity
    return col, validity


@SIM
@given(items=keys, n_partitions=st.sampled_from([1, 2, 7, 1000, 2 ** 31 - 1]),
       algorithm=st.sampled_from([H.MURMUR2, H.CRC32, H.FNV1A]),
       null_rule=st.sampled_from([H.NULL_HASHED, H.NULL_RANDOM, H.EMPTY_RANDOM]), seed=u64, counter=u64)
def test_partitions_kernel_equals_cpu_kernel(launch_shape, items, n_partitions, algorithm, null_rule, seed,
                                            counter):
    """The device partitions driver equals hashing.partitions for every algorithm and null rule."""
    col, validity = column(items)
    cpu = H.partitions(col.offsets, col.data, validity, n_partitions, algorithm, null_rule, np.uint64(seed),
                       np.uint64(counter))
    gpu = G.partitions(dev(col.offsets), dev(col.data) if col.data.size else dev(np.zeros(1, np.uint8)),
                       None if col.validity is None else dev(col.validity), n_partitions, algorithm,
                       null_rule, seed, counter)
    assert host(gpu).dtype == np.int32
    assert np.array_equal(host(gpu), cpu)


_partition_of_cpu = njit(G.make_partition_of(H.murmur2_cpu, H.crc32_cpu, H.fnv1a_cpu, H.mix64_cpu))


@njit
def _partitions_via_body(offsets, data, validity, has_nulls, n_partitions, algorithm, null_rule, seed, counter):
    out = np.empty(offsets.shape[0] - 1, np.int32)
    for i in range(out.shape[0]):
        out[i] = _partition_of_cpu(offsets, data, validity, has_nulls, i, n_partitions, algorithm, null_rule,
                                   seed, counter)
    return out


@SIM
@given(items=keys, n_partitions=st.integers(1, 2 ** 31 - 1), seed=u64, counter=u64,
       algorithm=st.sampled_from([H.MURMUR2, H.CRC32, H.FNV1A]),
       null_rule=st.sampled_from([H.NULL_HASHED, H.NULL_RANDOM, H.EMPTY_RANDOM]))
def test_partition_body_compiled_for_the_cpu_equals_cpu_driver(items, n_partitions, seed, counter, algorithm,
                                                               null_rule):
    """The device per-key body, compiled with njit, equals hashing.partitions: one body, two targets."""
    col, validity = column(items)
    has_nulls = col.validity is not None
    v = validity if has_nulls else np.zeros(1, np.bool_)
    got = _partitions_via_body(col.offsets, col.data, v, has_nulls, np.int64(n_partitions), np.int64(algorithm),
                               np.int64(null_rule), np.uint64(seed), np.uint64(counter))
    want = H.partitions(col.offsets, col.data, validity, n_partitions, algorithm, null_rule, np.uint64(seed),
                        np.uint64(counter))
    assert np.array_equal(got, want)


@SIM
@given(n=st.integers(0, 70), bound=st.integers(1, 2 ** 31 - 1), seed=u64, counter=u64)
def test_random_below_equals_cpu(launch_shape, n, bound, seed, counter):
    """Uniform draws: the same stream positions give the same picks."""
    cpu = H.random_below(n, bound, np.uint64(seed), np.uint64(counter))
    assert np.array_equal(host(G.random_below(n, bound, seed, counter)), cpu)


@SIM
@given(weights=st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0, 1e-300, 7.25]), min_size=1, max_size=9).filter(
    lambda w: sum(w) > 0), n=st.integers(0, 60), seed=u64, counter=u64)
def test_weighted_choice_equals_cpu(launch_shape, weights, n, seed, counter):
    """Weighted draws: same cumulative table, same binary search, same picks (zero weights never)."""
    cumulative = np.cumsum(np.array(weights))
    last = int(np.flatnonzero(np.array(weights) > 0)[-1])
    cpu = H.weighted_choice(n, cumulative, last, np.uint64(seed), np.uint64(counter))
    gpu = host(G.weighted_choice(n, dev(cumulative), last, seed, counter))
    assert np.array_equal(gpu, cpu)
    assert all(weights[k] > 0 for k in gpu.tolist())


@pytest.mark.parametrize("n,m", [(0, 3), (1, 1), (13, 4), (40, 1)])
def test_fanout_kernel_matches_reference(launch_shape, n, m):
    """Fanout routes: message i gets ids 0..m-1."""
    offsets, ids = G.fanout(n, m)
    assert (host(offsets).tolist(), host(ids).tolist()) == rg.fanout(n, m)


# --------------------------------------------------------------- routers: backend="gpu" == "cpu"

@SIM
@given(items=keys, n=st.sampled_from([1, 3, 12, 2 ** 31 - 1]), algorithm=st.sampled_from(ALGORITHMS),
       seed=st.integers(0, 2 ** 63))
def test_partitioner_gpu_equals_cpu_and_reference(launch_shape, items, n, algorithm, seed):
    """Every algorithm, host or device batch: the GPU routes are the CPU routes and the reference stream."""
    batch = fr.MessageBatch.from_keys(items)
    cpu = fr.Partitioner(n, algorithm, seed=seed).route(batch, backend="cpu")
    gpu_host = fr.Partitioner(n, algorithm, seed=seed).route(batch, backend="gpu")
    gpu_dev = fr.Partitioner(n, algorithm, seed=seed).route(batch.to_device(), backend="gpu")
    assert gpu_host.device == "cpu" and gpu_dev.device == "gpu"
    assert gpu_host == cpu and gpu_dev.to_host() == cpu
    assert cpu.destinations.tolist() == rh.partition_stream(items, n, algorithm, seed)


@pytest.mark.parametrize("algorithm", ["murmur2_random", "consistent_random", "fnv1a_random"])
def test_partitioner_stream_carries_across_backends(launch_shape, algorithm):
    """Batches routed on the GPU and the CPU in turn continue one stream: equal to one CPU call."""
    items = [None, b"", b"a", None, b"bb", None, b""] * 5
    whole = fr.Partitioner(5, algorithm, seed=11).route(items, backend="cpu").destinations
    p = fr.Partitioner(5, algorithm, seed=11)
    parts = [p.route(items[0:9], backend="gpu"), p.route(items[9:20], backend="cpu"),
             p.route(fr.MessageBatch.from_keys(items[20:]).to_device(), backend="gpu").to_host()]
    assert np.concatenate([r.destinations for r in parts]).tolist() == whole.tolist()


def test_partitioner_on_a_column_viewing_part_of_a_buffer(launch_shape):
    """Keys whose offsets start past 0 inside a larger buffer are uploaded rebased and hash the same."""
    data = np.frombuffer(b"XXXXhelloworldfoo!YYYY", np.uint8)
    offsets = np.array([4, 9, 14, 14, 18], np.int64)
    batch = fr.MessageBatch.from_buffers(offsets, data, key_validity=[True, True, False, True])
    for algorithm in ALGORITHMS:
        cpu = fr.Partitioner(9, algorithm, seed=2).route(batch, backend="cpu")
        assert fr.Partitioner(9, algorithm, seed=2).route(batch, backend="gpu") == cpu


@SIM
@given(cycle=st.lists(st.sampled_from("abcd"), max_size=6), sizes=st.lists(st.integers(0, 25), max_size=4))
def test_round_robin_gpu_equals_cpu_across_batches(launch_shape, cycle, sizes):
    """The cycle continues across batches, whichever backend routes each one."""
    cpu, gpu = fr.RoundRobinRouter(cycle), fr.RoundRobinRouter(cycle)
    cursor = 0
    for k, n in enumerate(sizes):
        batch = fr.MessageBatch.from_keys([b"k"] * n)
        want = cpu.route(batch, backend="cpu")
        got = gpu.route(batch.to_device() if k % 2 else batch, backend="gpu").to_host()
        assert got == want
        if cycle:
            assert got.to_lists() == [[x] for x in rh.round_robin(cycle, cursor, n)]
            cursor = (cursor + n) % len(cycle)
    assert gpu.cursor == cpu.cursor


@SIM
@given(destinations=st.lists(st.sampled_from("abcde"), max_size=6), seed=st.integers(0, 2 ** 32),
       weighted=st.booleans(), sizes=st.lists(st.integers(0, 30), max_size=3), data=st.data())
def test_random_router_gpu_equals_cpu(launch_shape, destinations, seed, weighted, sizes, data):
    """Same seed, same picks on both backends, batch after batch (repeated names, weights)."""
    weights = None
    if weighted and destinations:
        weights = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.5]), min_size=len(destinations),
                                     max_size=len(destinations)).filter(lambda w: sum(w) > 0))
    cpu = fr.RandomRouter(destinations, seed=seed, weights=weights)
    gpu = fr.RandomRouter(destinations, seed=seed, weights=weights)
    first = 0
    for n in sizes:
        batch = fr.MessageBatch.from_keys([b"x"] * n)
        want = cpu.route(batch, backend="cpu")
        got = gpu.route(batch, backend="gpu")
        assert got == want
        if destinations:
            names = [want.names[d] for d in want.destinations.tolist()]
            assert names == rh.random_pick(destinations, seed, first, n, weights)
        first += n


@pytest.mark.parametrize("destinations", [[], ["q"], ["q1", "q2", "q1", "q3"]])
def test_fanout_router_gpu_equals_cpu(launch_shape, destinations):
    """Fanout: every message to every unique destination, host and device batches."""
    router = fr.FanoutRouter(destinations)
    batch = fr.MessageBatch.from_keys([b"a", None, b""] * 7)
    want = router.route(batch, backend="cpu")
    assert router.route(batch, backend="gpu") == want
    on_device = router.route(batch.to_device(), backend="gpu")
    assert on_device.device == "gpu" and on_device.to_host() == want


def test_empty_batches_on_the_gpu(launch_shape):
    """Zero messages route to zero-length routes on every GPU router."""
    empty = fr.MessageBatch.from_keys([])
    for router in (fr.Partitioner(3), fr.Partitioner(3, "consistent_random", seed=1), fr.RoundRobinRouter(["a"]),
                   fr.RandomRouter(["a", "b"], seed=1), fr.FanoutRouter(["a", "b"])):
        for batch in (empty, empty.to_device()):
            routes = router.route(batch, backend="gpu")
            assert len(routes) == 0 and routes.device == batch.device
            assert routes.to_host().offsets.tolist() == [0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keys_without_any_bytes(launch_shape, algorithm):
    """Only empty and null keys (a zero-length data buffer) route as on the CPU."""
    items = [b"", None, b"", None, None]
    cpu = fr.Partitioner(6, algorithm, seed=9).route(items, backend="cpu")
    assert fr.Partitioner(6, algorithm, seed=9).route(items, backend="gpu") == cpu
    on_device = fr.MessageBatch.from_keys(items).to_device()
    assert on_device.keys.data.shape[0] == 0
    assert fr.Partitioner(6, algorithm, seed=9).route(on_device, backend="gpu").to_host() == cpu


@pytest.mark.parametrize("make", [lambda alt: fr.RoundRobinRouter([], alternate=alt),
                                  lambda alt: fr.RandomRouter([], seed=1, alternate=alt),
                                  lambda alt: fr.FanoutRouter([], alternate=alt)])
def test_routers_with_no_destination_send_device_batches_to_the_alternate(make):
    """No destination and an alternate name: every message goes there, device batch or not."""
    batch = fr.MessageBatch.from_keys([b"a", b"b", None])
    want = make("dead").route(batch, backend="cpu")
    assert want.to_lists() == [["dead"]] * 3
    assert make("dead").route(batch, backend="gpu") == want
    assert make("dead").route(batch.to_device(), backend="gpu").to_host() == want
