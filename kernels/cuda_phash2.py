"""CUDA twins of kernels/phash2.py: x-consistent-hash seeds and jumps on the device.

The per-message bodies are the very functions of :mod:`.phash2` (``phash2_binary``, ``jump``,
``key_seed``, ``header_seed``) compiled a second time with ``cuda.jit(device=True)``, the
``*_cpu`` helpers they call rebound to their device builds (:func:`.cuda_topic.for_device`),
so the CPU and GPU cannot disagree on a seed or a bucket. One thread per message:

* :func:`key_seeds`: phash2 of each routing key; a null key is the empty binary, as on the CPU;
* :func:`header_seeds`: each message's seed from one header, with the CPU's status codes and
  the index of the first message whose value cannot be hashed;
* :func:`jump_ring`: ``ring[jump(seed, len(ring))]`` with the exs1024 state in a 16-word
  thread-local array; :func:`lookup`: the same answer read from a router's seed table.

Drivers take device arrays and return device arrays; only :func:`header_seeds` copies one
int64 to the host. Nothing here validates input (the router does).

numba's on-disk cache checks only the file a kernel is defined in: after editing
``phash2.py``, touch this file (or clear ``kernels/__pycache__``) so the GPU kernels are rebuilt
from the new per-message functions. The simulator tests would otherwise report the drift.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, uint64

from . import cuda_launch as L
from . import phash2 as P
from .cuda_launch import KERNEL
from .cuda_topic import for_device

_U32 = np.uint32
_EMPTY_BINARY = P.PHASH2_EMPTY_BINARY
#: A seed table has one entry per value of a seed's low bits (jump reads no others).
_SEED_MASK = np.int64((1 << 21) - 1)

jenkins_mix_gpu = cuda.jit(device=True)(P.jenkins_mix)
read_u32le_gpu = cuda.jit(device=True)(P.read_u32le)
phash2_binary_gpu = for_device(P.phash2_binary, read_u32le_cpu=read_u32le_gpu, jenkins_mix_cpu=jenkins_mix_gpu)
jump_gpu = cuda.jit(device=True)(P.jump)
key_seed_gpu = for_device(P.key_seed, phash2_binary_cpu=phash2_binary_gpu)
header_seed_gpu = for_device(P.header_seed, phash2_binary_cpu=phash2_binary_gpu, read_u32le_cpu=read_u32le_gpu)


@cuda.jit(**KERNEL)
def _key_seeds(offsets, data, validity, has_nulls, out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        if has_nulls and not validity[i]:
            out[i] = _EMPTY_BINARY  # a null key's bytes, if any, are not part of it
        else:
            out[i] = key_seed_gpu(offsets, data, i)


@cuda.jit(**KERNEL)
def _header_seeds(offsets, name_ids, types, ints, blob_offsets, blob_data, name_id, seeds, status, first_bad):
    for i in range(cuda.grid(1), seeds.shape[0], cuda.gridsize(1)):
        seed, why = header_seed_gpu(offsets, name_ids, types, ints, blob_offsets, blob_data, i, name_id)
        seeds[i] = seed
        status[i] = why
        if why != 0:
            cuda.atomic.min(first_bad, 0, i)


@cuda.jit(**KERNEL)
def _jump_ring(seeds, ring, out):
    state = cuda.local.array(16, uint64)
    buckets = ring.shape[0]
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = ring[jump_gpu(seeds[i], buckets, state)]


@cuda.jit(**KERNEL)
def _lookup(seeds, table, out):
    for i in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        out[i] = np.int32(table[seeds[i] & _SEED_MASK])


def key_seeds(offsets, data, validity):
    """The device twin of ``phash2.key_seeds`` with the router's null rule: int64 seeds.

    ``offsets`` (int64, n+1), ``data`` (uint8) and ``validity`` (bool, or None when no key
    is null) are device arrays; a null key gets ``PHASH2_EMPTY_BINARY``. Returns an int64
    device array of n.
    """
    n = offsets.shape[0] - 1
    out = cuda.device_array(n, np.int64)
    has_nulls = validity is not None
    if not has_nulls:
        # a kernel argument must be an array; this view is never read (has_nulls is False)
        validity = data.view(np.bool_)
    L.launch(_key_seeds, n)(offsets, data, validity, has_nulls, out)
    return out


def header_seeds(offsets, name_ids, types, ints, blob_offsets, blob_data, name_id: int):
    """The device twin of ``phash2.header_seeds``: (int64 seeds, int8 status, first bad).

    The arrays are a device HeaderTable's; ``name_id`` is the hashed header's id in it.
    Seeds and status are device arrays of n, equal to the CPU's; ``first bad`` is the
    smallest i with a nonzero status, or -1 (the one int copied to the host).
    """
    n = offsets.shape[0] - 1
    seeds = cuda.device_array(n, np.int64)
    status = cuda.device_array(n, np.int8)
    first_bad = cuda.to_device(np.array([n], np.int64))
    L.launch(_header_seeds, n)(offsets, name_ids, types, ints, blob_offsets, blob_data, np.int64(name_id), seeds,
                               status, first_bad)
    bad = int(first_bad.copy_to_host()[0])
    return seeds, status, (-1 if bad == n else bad)


def jump_ring(seeds, ring):
    """The device twin of ``phash2.jump_ring``: int32 ``ring[jump(seed, len(ring))]`` per seed.

    ``seeds`` is an int64 device array, ``ring`` a non-empty int32 device array (bucket → id).
    """
    out = cuda.device_array(seeds.shape[0], np.int32)
    L.launch(_jump_ring, seeds.shape[0])(seeds, ring, out)
    return out


def lookup(seeds, table):
    """int32 ``table[seed & (2^21 - 1)]`` per seed: what :func:`jump_ring` gives, read from a
    router's seed table (an int16 or int32 device array of 2^21 entries)."""
    out = cuda.device_array(seeds.shape[0], np.int32)
    L.launch(_lookup, seeds.shape[0])(seeds, table, out)
    return out


def __getattr__(name):
    # PTX_CHECKS: (kernel, argument types) pairs that tests/cudasim/test_ptx.py compiles for
    # sm_90; built on first use so that importing this module types nothing.
    if name == "PTX_CHECKS":
        from numba import types as T

        i64 = T.int64[::1]
        return [(_key_seeds, (i64, T.uint8[::1], T.boolean[::1], T.boolean, i64)),
                (_header_seeds, (i64, T.int32[::1], T.uint8[::1], i64, i64, T.uint8[::1], T.int64, i64,
                                 T.int8[::1], i64)),
                (_jump_ring, (i64, T.int32[::1], T.int32[::1])),
                (_lookup, (i64, T.int16[::1], T.int32[::1])),
                (_lookup, (i64, T.int32[::1], T.int32[::1]))]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
