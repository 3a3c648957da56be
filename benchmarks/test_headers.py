"""Headers-exchange routing of 100,000 messages (3–5 headers each) through 10, 100 and 1,000
bindings: fastroute against the plain Python loop over the bindings (``headers_route`` in
``tests/reference.py``, which follows RabbitMQ's rules one message at a time).

The Python loop runs on a slice of the same messages, sized so that one run takes about a
second, and is scaled per message (its cost per message does not depend on the batch size);
the best of two runs is used. Each test checks that fastroute and the loop agree on the slice
before reporting, and prints a ratio table; the figures also go to ``extra_info`` (see
``--benchmark-json``). Building the batch's HeaderTable from Python dicts is not timed (a
consumer hands over columns); its cost per message is reported beside the table.

    .venv/bin/python -m pytest benchmarks/test_headers.py --benchmark-columns=min,median,ops
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastroute as fr
from _report import best_rate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference as ref  # noqa: E402

N_MESSAGES = 100_000

TYPES = ["pdf", "doc", "xls", "png", "jpg", "txt", "csv", "zip", "html", "json",
         "xml", "mp3", "mp4", "gif", "svg", "tar", "gz", "md", "rtf", "odt"]
REGIONS = ["eu-west", "eu-east", "eu-north", "us-west", "us-east", "ap-south", "ap-north", "sa-east"]
TENANTS = [f"tenant-{k}" for k in range(1000)]
FORMATS = [b"v1", b"v2", b"v3"]
VERSIONS = [1.0, 1.5, 2.0, 2.5]
NAMES = ["tenant", "type", "region", "priority", "format", "version", "retry", "x-trace"]


def _value(name: str, rng):
    if name == "tenant":
        return TENANTS[rng.integers(len(TENANTS))]
    if name == "type":
        return TYPES[rng.integers(len(TYPES))]
    if name == "region":
        return REGIONS[rng.integers(len(REGIONS))]
    if name == "priority":
        return int(rng.integers(10))
    if name == "format":
        return FORMATS[rng.integers(len(FORMATS))]
    if name == "version":
        return VERSIONS[rng.integers(len(VERSIONS))]
    if name == "retry":
        return bool(rng.integers(2))
    return f"trace-{rng.integers(1 << 40):x}"


def header_rows(n: int, seed: int = 1) -> list:
    """n header dicts of 3–5 distinct names (tenant, type, region, priority, format, version,
    retry, x-trace) with str, int, float, bytes and bool values."""
    rng = np.random.default_rng(seed)
    rows = []
    for count in rng.integers(3, 6, n):
        names = [NAMES[k] for k in rng.choice(len(NAMES), count, replace=False)]
        rows.append({name: _value(name, rng) for name in names})
    return rows


def bindings(n: int, seed: int = 2) -> list:
    """n bindings onto n/2 queues, a mix of what headers exchanges carry:

    50% all of (tenant, type); 20% all of (type, priority); 10% any of two region / format /
    version values; 10% all of (tenant, retry present); 10% all of (type, an x- argument that
    all ignores).
    """
    rng = np.random.default_rng(seed)
    queues = max(1, n // 2)
    out = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            args = {"tenant": _value("tenant", rng), "type": _value("type", rng)}
        elif kind < 0.7:
            args = {"x-match": "all", "type": _value("type", rng), "priority": _value("priority", rng)}
        elif kind < 0.8:
            first, second = rng.choice(["region", "format", "version"], 2, replace=False)
            args = {"x-match": "any", str(first): _value(str(first), rng), str(second): _value(str(second), rng)}
        elif kind < 0.9:
            args = {"tenant": _value("tenant", rng), "retry": None}
        else:
            args = {"x-match": "all", "type": _value("type", rng), "x-owner": "ops"}
        out.append((args, f"q{rng.integers(queues)}"))
    return out


@pytest.fixture(scope="module")
def messages():
    """(100k-message MessageBatch with headers, the header dicts, µs per message to build it)."""
    rows = header_rows(N_MESSAGES)
    start = time.perf_counter()
    batch = fr.MessageBatch.from_pylist(values=[b""] * N_MESSAGES, headers=rows)
    build_us = (time.perf_counter() - start) / N_MESSAGES * 1e6
    return batch, rows, build_us


def python_loop(binds, rows):
    """The loop a user would write: every binding's rule against every message."""
    return [ref.headers_route(binds, row) for row in rows]



@pytest.mark.parametrize("n_bindings", [10, 100, 1000])
def test_headers_router(benchmark, capsys, messages, n_bindings):
    """HeadersRouter vs the Python loop over the bindings, per message."""
    batch, rows, build_us = messages
    binds = bindings(n_bindings)
    router = fr.HeadersRouter(binds)
    router.route(batch)  # compile or load from cache, and size the output, outside the timing
    sl = max(200, 200_000 // n_bindings)
    loop_rate, loop_routes = best_rate(lambda r: python_loop(binds, r), rows[:sl], repeats=2)
    routes = benchmark(router.route, batch)
    assert [set(x) for x in routes.to_lists()[:sl]] == loop_routes
    ours = N_MESSAGES / benchmark.stats.stats.median
    ratio = ours / loop_rate
    fanout = routes.destinations.shape[0] / N_MESSAGES
    benchmark.extra_info.update(messages_per_s=round(ours), python_loop_messages_per_s=round(loop_rate),
                                ratio_vs_python_loop=round(ratio, 1), destinations_per_message=round(fanout, 2),
                                python_loop_slice=sl, headertable_build_us_per_message=round(build_us, 2))
    lines = [f"\nheaders exchange, {n_bindings} bindings: {N_MESSAGES:,} messages, {fanout:.2f} destinations "
             f"per message (fastroute: median of the rounds)",
             f"  {'implementation':<46}{'messages/s':>14}{'fastroute is':>14}",
             f"  {'fastroute HeadersRouter':<46}{ours:>14,.0f}{'':>14}",
             f"  {f'Python loop over the bindings ({sl:,}, scaled)':<46}{loop_rate:>14,.0f}{ratio:>13,.1f}x",
             f"  (building the HeaderTable from dicts, not timed above: {build_us:.2f} µs per message)"]
    with capsys.disabled():
        print("\n".join(lines))
