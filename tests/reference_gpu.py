"""Slow, readable references for the whole-array steps the GPU path adds: prefix sums and
grouping of routes by destination (the per-key rules are in reference.py and
reference_hashing.py)."""

from __future__ import annotations


def exclusive_scan(values) -> list:
    """[0, v0, v0+v1, ...]: n+1 running totals of n values."""
    out = [0]
    for v in values:
        out.append(out[-1] + int(v))
    return out


def group_by_destination(offsets, destinations, n_names: int):
    """(group offsets, message indices): per destination id, the messages that go there, in
    message order."""
    groups = [[] for _ in range(n_names)]
    for i in range(len(offsets) - 1):
        for k in range(int(offsets[i]), int(offsets[i + 1])):
            groups[int(destinations[k])].append(i)
    bounds = exclusive_scan(len(g) for g in groups)
    return bounds, [i for g in groups for i in g]


def first_descent(offsets) -> int:
    """The first i where offsets[i+1] < offsets[i], or -1."""
    for i in range(len(offsets) - 1):
        if offsets[i + 1] < offsets[i]:
            return i
    return -1


def fanout(n: int, m: int):
    """Routes of n messages to all of ids 0..m-1: (offsets, ids)."""
    return [i * m for i in range(n + 1)], [k for _ in range(n) for k in range(m)]
