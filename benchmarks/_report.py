"""Timing and ratio reporting shared by the benchmark suites."""

from __future__ import annotations

import time


def best_rate(fn, items, repeats: int = 3):
    """(items per second of the fastest of ``repeats`` runs of fn(items), fn's last result)."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(items)
        best = min(best, time.perf_counter() - start)
    return len(items) / best, result


def report(benchmark, capsys, title: str, n_items: int, baselines: dict, unit: str = "keys") -> float:
    """Record fastroute's rate (median of pytest-benchmark's rounds) and each baseline's, with
    ratios, in ``extra_info``, and print a small table. ``baselines`` maps a short name to
    (label, items per second). Returns fastroute's rate."""
    ours = n_items / benchmark.stats.stats.median
    benchmark.extra_info[f"{unit}_per_s"] = round(ours)
    lines = [f"\n{title}",
             f"  {'implementation':<52}{unit + '/s':>14}{'fastroute is':>14}",
             f"  {'fastroute':<52}{ours:>14,.0f}{'':>14}"]
    for key, (label, rate) in baselines.items():
        ratio = ours / rate
        benchmark.extra_info[f"{key}_{unit}_per_s"] = round(rate)
        benchmark.extra_info[f"ratio_vs_{key}"] = round(ratio, 1)
        lines.append(f"  {label:<52}{rate:>14,.0f}{ratio:>13,.1f}x")
    with capsys.disabled():
        print("\n".join(lines))
    return ours
