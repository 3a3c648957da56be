"""kernels/cuda_group.py: grouping routes by destination on the device, against the CPU kernel
and the readable reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastroute as fr
import reference_gpu as ref
from _sim import SIM, dev, host, random_routes
from fastroute._device import device_groups
from fastroute.kernels import cuda_group as G
from fastroute.kernels import group as C


def check_groups(offsets, dest, n_names):
    go, gi = G.group_by_destination(dev(offsets), dev(dest), n_names)
    go, gi = host(go), host(gi)
    cpu_go, cpu_gi = C.group_by_destination(offsets, dest, n_names)
    assert go.dtype == np.int64 and gi.dtype == np.int64
    assert np.array_equal(go, cpu_go) and np.array_equal(gi, cpu_gi)
    ref_go, ref_gi = ref.group_by_destination(offsets, dest, n_names)
    assert go.tolist() == ref_go and gi.tolist() == ref_gi


@SIM
@given(n=st.integers(0, 40), n_names=st.sampled_from([1, 2, 3, 15, 16, 17, 255, 256, 257, 4100]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_groups_match_cpu_and_reference(launch_shape, n, n_names, seed):
    """Stable grouping equals the CPU counting sort for 0 to 3 radix passes."""
    offsets, dest = random_routes(np.random.default_rng(seed), n, n_names)
    check_groups(offsets, dest, n_names)


@pytest.mark.parametrize("n_names", [1, 2, 16, 17, 70000])
def test_every_message_to_one_destination(launch_shape, n_names):
    """All deliveries to one id keep message order; the other groups are empty."""
    n = 45
    offsets = np.arange(n + 1, dtype=np.int64)
    dest = np.full(n, n_names - 1, np.int32)
    check_groups(offsets, dest, n_names)


def test_no_deliveries(launch_shape):
    """Unroutable messages only: every group is empty."""
    check_groups(np.zeros(6, np.int64), np.zeros(0, np.int32), 5)


def test_no_messages(launch_shape):
    """An empty batch gives n_names + 1 zero offsets."""
    check_groups(np.zeros(1, np.int64), np.zeros(0, np.int32), 3)


def test_the_input_destinations_are_not_modified(launch_shape):
    """The caller's destination array is read, never used as sort scratch."""
    offsets, dest = random_routes(np.random.default_rng(7), 30, 300)
    d = dev(dest)
    G.group_by_destination(dev(offsets), d, 300)
    assert np.array_equal(host(d), dest)


@pytest.mark.parametrize("n_names,expected", [(0, 0), (1, 0), (2, 1), (16, 1), (17, 2), (256, 2), (257, 3),
                                              (2 ** 31 - 1, 8)])
def test_radix_passes(n_names, expected):
    """Passes cover the bits of the largest id, RADIX_BITS at a time."""
    assert G.RADIX_BITS == 4
    assert G.radix_passes(n_names) == expected


def test_device_groups_of_routed_batch(launch_shape):
    """device_groups on device Routes equals Routes.group_offsets / group_indices on the host."""
    router = fr.FanoutRouter(["a", "b", "c"])
    batch = fr.MessageBatch.from_keys([b"k%d" % i for i in range(23)])
    host_routes = router.route(batch, backend="cpu")
    dev_routes = router.route(batch.to_device(), backend="gpu")
    go, gi = device_groups(dev_routes)
    assert np.array_equal(host(go), host_routes.group_offsets)
    assert np.array_equal(host(gi), host_routes.group_indices)
    assert device_groups(dev_routes)[0] is go  # computed once, cached on the Routes


def test_device_groups_of_host_routes_are_the_host_views():
    """On host Routes, device_groups is the CPU grouping."""
    routes = fr.Partitioner(4).route([b"a", b"b", b"c"], backend="cpu")
    go, gi = device_groups(routes)
    assert go is routes.group_offsets and gi is routes.group_indices
