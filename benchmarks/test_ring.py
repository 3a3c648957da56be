"""Ring throughput and latency, side by side with the transports a user would otherwise pick.

Run:  .venv/bin/python -m pytest benchmarks/test_ring.py --benchmark-columns=min,median,ops

Every scenario runs its baselines first, then fastroute (spsc and mpsc), in the same pytest run;
each fastroute result carries its ratio to every baseline in ``extra_info`` (``x_<baseline>``),
and a ratio table is printed at the end (and written to .benchmarks/ring-results.json).

Cross-process scenarios: a spawned child sends, this process receives; the timed unit is one
round of n messages, from the "go" to the last message received. In-process scenarios: a
producer thread and this thread. Latency: this process sends one 100-byte message, a child
echoes it back on a second channel; p50 / p99 of the round trip.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import NamedTuple

import pytest

from _ring_util import (CROSS_PROCESS_BASELINES, IN_PROCESS_BASELINES, CrossProcess, InProcess,
                        PingPong, format_table, percentile)

ROUNDS = 5
RINGS = ("fastroute-mpsc", "fastroute-spsc")


class Scenario(NamedTuple):
    name: str
    unit: str            # how the README reports it: "msg/s" or "GB/s"
    rig: type
    size: int            # bytes per message
    batch: int | None    # messages per call, None = one at a time
    capacity: int        # ring bytes, and faster-fifo's max_size_bytes: 1 MiB for batches of
                         # small messages (stays in a core's L2: +45% over 4 MiB), else 4 MiB
                         # (singles: +10-20% over 1 MiB, as a producer waits less often)
    counts: dict         # transport -> messages per timed round


SCENARIOS = [
    Scenario("cross-process, 100 B, one at a time", "msg/s", CrossProcess, 100, None, 1 << 22,
             {"mp.Queue": 20_000, "faster-fifo": 100_000, "pyzmq": 100_000,
              "fastroute-mpsc": 300_000, "fastroute-spsc": 300_000}),
    Scenario("cross-process, 100 B, batches of 1,000", "msg/s", CrossProcess, 100, 1000, 1 << 20,
             {"mp.Queue": 300_000, "faster-fifo": 300_000, "pyzmq": 300_000,
              "fastroute-mpsc": 3_000_000, "fastroute-spsc": 3_000_000}),
    Scenario("cross-process, 64 KiB, one at a time", "GB/s", CrossProcess, 65536, None, 1 << 22,
             {"mp.Queue": 2_000, "faster-fifo": 4_000, "pyzmq": 4_000,
              "fastroute-mpsc": 20_000, "fastroute-spsc": 20_000}),
    Scenario("cross-process, 64 KiB, batches of 16", "GB/s", CrossProcess, 65536, 16, 1 << 22,
             {"mp.Queue": 2_400, "faster-fifo": 4_000, "pyzmq": 4_000,
              "fastroute-mpsc": 24_000, "fastroute-spsc": 24_000}),
    Scenario("threads, 100 B, one at a time", "msg/s", InProcess, 100, None, 1 << 22,
             {"queue.SimpleQueue": 200_000, "fastroute-mpsc": 200_000, "fastroute-spsc": 200_000}),
    Scenario("threads, 100 B, batches of 1,000", "msg/s", InProcess, 100, 1000, 1 << 20,
             {"queue.SimpleQueue": 2_000_000, "fastroute-mpsc": 2_000_000,
              "fastroute-spsc": 2_000_000}),
]
BY_NAME = {s.name: s for s in SCENARIOS}
LATENCY = "cross-process round trip, 100 B"
LATENCY_TRIPS = {"mp.Queue": 3_000, "faster-fifo": 10_000, "pyzmq": 10_000,
                 "fastroute-mpsc": 30_000, "fastroute-spsc": 30_000}


@pytest.fixture(scope="module")
def results(request):
    """Figures of this run, by (scenario, transport); reported when the module ends."""
    found: dict = {}
    yield found
    scenarios = [(s.name, s.unit) for s in SCENARIOS] + [(LATENCY, "us")]
    lines = format_table(found, scenarios)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():   # shown even when output is captured
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)
    out = pathlib.Path(request.config.rootpath) / ".benchmarks" / "ring-results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                               "results": [[s, k, v] for (s, k), v in found.items()],
                               "table": lines}, indent=1))


def _cases():
    for s in SCENARIOS:
        for kind in s.counts:
            yield pytest.param(s.name, kind, id=f"{s.name}-{kind}")


@pytest.mark.parametrize("scenario, kind", list(_cases()))
def test_throughput(benchmark, results, scenario, kind):
    """Messages per second through one transport (baselines run before fastroute)."""
    s = BY_NAME[scenario]
    n = s.counts[kind]
    rig = s.rig(kind, s.capacity, s.size, s.batch)
    try:
        benchmark.pedantic(rig.round, args=(n,), rounds=ROUNDS, warmup_rounds=1, iterations=1)
    finally:
        rig.close()
    if benchmark.stats is None:   # --benchmark-disable: ran once, measured nothing
        return
    rate = n / benchmark.stats.stats.median
    results[(scenario, kind)] = rate
    benchmark.extra_info.update(scenario=scenario, transport=kind, messages_per_round=n,
                                messages_per_s=rate, gb_per_s=rate * s.size / 1e9)
    if kind in RINGS:
        for base in CROSS_PROCESS_BASELINES + IN_PROCESS_BASELINES:
            if (scenario, base) in results:
                benchmark.extra_info[f"x_{base}"] = rate / results[(scenario, base)]


@pytest.mark.parametrize("kind", CROSS_PROCESS_BASELINES + RINGS)
def test_round_trip_latency(benchmark, results, kind):
    """Round trip of one 100-byte message to a child process and back: p50 and p99."""
    pp = PingPong(kind, 1 << 20, 100)
    samples: list[int] = []
    try:
        pp.measure(1000)                      # warm up both processes and their caches
        trips = LATENCY_TRIPS[kind]
        benchmark.pedantic(lambda: samples.extend(pp.measure(trips)), rounds=3, iterations=1)
    finally:
        pp.close()
    p50, p99 = percentile(samples, 0.50) / 1e3, percentile(samples, 0.99) / 1e3
    results[(LATENCY, kind)] = (p50, p99)
    benchmark.extra_info.update(scenario=LATENCY, transport=kind, p50_us=p50, p99_us=p99,
                                round_trips=len(samples))
    if kind in RINGS:
        for base in CROSS_PROCESS_BASELINES:
            if (LATENCY, base) in results:
                benchmark.extra_info[f"p99_x_lower_than_{base}"] = results[(LATENCY, base)][1] / p99
