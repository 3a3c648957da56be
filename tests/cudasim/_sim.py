"""Helpers shared by the CUDA kernel tests: hypothesis settings and strategies, device copies."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: The simulator runs every GPU thread as a Python thread: keep examples few and small.
SIM = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: Keys: bytes of 0..24 (every murmur2 tail, crc32's 8-byte blocks) or None (null).
keys = st.lists(st.one_of(st.none(), st.binary(max_size=24)), max_size=60)
#: Seeds and stream positions, with the edges of uint64 (draws wrap past 2^64).
u64 = st.one_of(st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64 - 7]))


def dev(a):
    """A device copy of a numpy array."""
    from numba import cuda

    return cuda.to_device(np.ascontiguousarray(a))


def host(a):
    """A host copy of a device array."""
    return a.copy_to_host()


def random_routes(rng, n: int, n_names: int, max_fanout: int = 4):
    """CSR routes of n messages, each to a sorted set of distinct ids below n_names."""
    fan = rng.integers(0, min(n_names, max_fanout) + 1, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(fan, out=offsets[1:])
    parts = [np.sort(rng.choice(n_names, f, replace=False)) for f in fan]
    dest = np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)
    return offsets, dest
