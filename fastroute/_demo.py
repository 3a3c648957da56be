"""`fastroute demo`: a synthetic workload routed, framed and moved through the in-process ring."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np


def _progress(done: int, total: int, started: float, out) -> None:
    width = 32
    frac = done / total if total else 1.0
    bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
    rate = done / max(time.perf_counter() - started, 1e-9)
    out.write(f"\r  [{bar}] {done:>10,}/{total:,} messages  {rate / 1e6:6.2f} M msg/s")
    out.flush()


def _workload(n_bindings: int, n_keys: int, seed: int):
    """(bindings, a pool of distinct routing keys): 3–6 words, 50 words per level, 15% '*',
    5% '#' in bindings; keys draw from the same vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = [[f"l{lv}w{k}" for k in range(50)] for lv in range(6)]
    bindings = []
    for i in range(n_bindings):
        words = []
        for lv in range(rng.integers(3, 7)):
            r = rng.random()
            words.append("*" if r < 0.15 else "#" if r < 0.20 else vocab[lv][rng.integers(50)])
        bindings.append((".".join(words), f"queue-{i % 64:02d}"))
    lengths = rng.integers(3, 7, n_keys)
    picks = rng.integers(0, 50, (n_keys, 6))
    keys = [".".join(vocab[lv][picks[i, lv]] for lv in range(lengths[i])) for i in range(n_keys)]
    return bindings, keys


def run_demo(messages: int = 1_000_000, bindings: int = 2_000, partitions: int = 12,
             batch_size: int = 100_000, seed: int = 7, out=None) -> dict:
    """Route ``messages`` synthetic messages through AMQP topic bindings and a Kafka murmur2
    partitioner, encode one frame per destination and move the frames through an in-process
    ring to a consumer thread that decodes them. Returns the summary figures."""
    import fastroute as fr
    from fastroute import codec

    out = out or sys.stderr
    t0 = time.perf_counter()
    rules, key_pool = _workload(bindings, 20_000, seed)
    topic = fr.TopicRouter(rules)
    partitioner = fr.Partitioner(partitions, algorithm="murmur2")
    pool = fr.MessageBatch.from_keys(key_pool)
    rng = np.random.default_rng(seed + 1)
    value_bytes = 100
    values = rng.integers(0, 256, batch_size * value_bytes, dtype=np.uint8)
    value_offsets = np.arange(batch_size + 1, dtype=np.int64) * value_bytes
    out.write(f"fastroute demo: {messages:,} messages, {len(rules):,} AMQP topic bindings to "
              f"{len(topic.names)} queues, murmur2 over {partitions} partitions, "
              f"batches of {batch_size:,}\n")
    # warm the kernels (compiled, or loaded from numba's cache) before timing
    warm = pool.take(np.arange(min(1000, len(pool))))
    codec.encode_frames(warm, topic.route(warm))
    partitioner.route(warm)
    setup_s = time.perf_counter() - t0

    ring = fr.Ring(1 << 28)  # a frame can hold a whole batch (a queue bound to "#")
    per_queue = np.zeros(len(topic.names), np.int64)
    per_partition = np.zeros(partitions, np.int64)
    received = {"frames": 0, "messages": 0, "bytes": 0}
    consumer_error: list = []

    def consume():
        try:
            while True:
                try:
                    frame = ring.pop()
                except fr.QueueClosed:  # closed by the producer and drained
                    return
                got = codec.decode_frame(frame)
                received["frames"] += 1
                received["messages"] += len(got)
                received["bytes"] += len(frame)
        except Exception as exc:        # surfaced in the main thread
            consumer_error.append(exc)

    consumer = threading.Thread(target=consume, name="fastroute-demo-consumer")
    consumer.start()
    started = time.perf_counter()
    done = unroutable = deliveries = 0
    names = topic.names
    try:
        while done < messages:
            n = min(batch_size, messages - done)
            idx = rng.integers(0, len(pool), n)
            keyed = pool.take(idx)
            batch = fr.MessageBatch(keyed.keys, fr.BinaryColumn(value_offsets[:n + 1], values))
            routes = topic.route(batch)
            parts = partitioner.route(batch)
            per_partition += np.bincount(parts.destinations, minlength=partitions)
            counts = np.bincount(routes.destinations, minlength=len(names))
            per_queue[:counts.shape[0]] += counts[:per_queue.shape[0]]
            deliveries += routes.destinations.shape[0]
            unroutable += routes.unroutable().shape[0]
            for frame in codec.encode_frames(batch, routes).values():
                ring.push(frame)
            done += n
            _progress(done, messages, started, out)
    finally:
        ring.close()
        consumer.join()
    if consumer_error:
        raise consumer_error[0]
    elapsed = time.perf_counter() - started
    out.write("\n")
    summary = {
        "messages": done, "seconds": elapsed, "setup_seconds": setup_s,
        "messages_per_s": done / elapsed, "deliveries": deliveries,
        "deliveries_per_message": deliveries / max(done, 1), "unroutable": unroutable,
        "frames": received["frames"], "frame_bytes": received["bytes"],
        "delivered_messages": received["messages"],
        "per_queue": dict(zip(names, per_queue.tolist())),
        "per_partition": per_partition.tolist(),
    }
    _print_summary(summary, out)
    return summary


def _print_summary(s: dict, out) -> None:
    out.write(f"  routed {s['messages']:,} messages in {s['seconds']:.2f} s "
              f"({s['messages_per_s'] / 1e6:.2f} M messages/s; setup and kernel loading "
              f"{s['setup_seconds']:.2f} s before that)\n")
    out.write(f"  {s['deliveries']:,} deliveries ({s['deliveries_per_message']:.1f} per message), "
              f"{s['unroutable']:,} unroutable\n")
    out.write(f"  ring: {s['frames']:,} frames, {s['frame_bytes'] / 1e6:.1f} MB, "
              f"{s['delivered_messages']:,} messages decoded by the consumer "
              f"({s['frame_bytes'] / 1e6 / s['seconds']:.0f} MB/s)\n")
    top = sorted(s["per_queue"].items(), key=lambda kv: -kv[1])[:8]
    out.write("  busiest queues: " + ", ".join(f"{k} {v:,}" for k, v in top) + "\n")
    parts = s["per_partition"]
    out.write(f"  partitions (murmur2, {len(parts)}): min {min(parts):,} / max {max(parts):,} messages\n")
