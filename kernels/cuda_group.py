"""Grouping of routed messages by destination on the GPU: the twin of ``group.group_by_destination``.

CSR routes list deliveries in message order. Grouping them by destination, with message
indices ascending inside each group, is a *stable* sort of the deliveries by destination id,
which atomics alone cannot give (their order is the scheduler's). So:

1. count pass: each delivery adds one to its destination's count (atomics; order-free), and
   an exclusive scan of the counts gives ``group_offsets``;
2. fill pass: a stable least-significant-digit radix sort of (destination, message) pairs on
   :data:`RADIX_BITS`-bit digits of the destination id. Per digit, each thread owns a chunk of
   :data:`~.cuda_launch.SCAN_CHUNK` consecutive deliveries and counts its digits; one prefix
   sum over the (digit, chunk) matrix, digit-major, gives every chunk's first slot per digit;
   each thread then writes its chunk out in order. Chunks in order, items in order within a
   chunk: each pass is stable, so the result is too.

Cost: ``ceil(bits(n_names - 1) / RADIX_BITS)`` passes over the deliveries (4 passes for
10,000 destinations), each a read and a scattered write of 12 bytes per delivery.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import cuda_launch as L
from .cuda_launch import KERNEL
from .cuda_scan import exclusive_scan, fill

#: Bits of the destination id sorted per pass (16 counters per thread, in local memory).
RADIX_BITS = 4
_RADIX = 1 << RADIX_BITS
_MASK = _RADIX - 1


@cuda.jit(**KERNEL)
def _rows_and_counts(offsets, destinations, rows, counts):
    n = offsets.shape[0] - 1
    for i in range(cuda.grid(1), n, cuda.gridsize(1)):
        for k in range(offsets[i], offsets[i + 1]):
            rows[k] = i
            cuda.atomic.add(counts, destinations[k], 1)


@cuda.jit(**KERNEL)
def _digit_counts(keys, shift, chunk, nchunks, hist):
    m = keys.shape[0]
    for c in range(cuda.grid(1), nchunks, cuda.gridsize(1)):
        tally = cuda.local.array(_RADIX, np.int64)
        for b in range(_RADIX):
            tally[b] = 0
        end = (c + 1) * chunk
        if end > m:
            end = m
        for k in range(c * chunk, end):
            tally[(keys[k] >> shift) & _MASK] += 1
        for b in range(_RADIX):
            hist[b * nchunks + c] = tally[b]


@cuda.jit(**KERNEL)
def _digit_scatter(keys, rows, shift, chunk, nchunks, slots, keys_out, rows_out):
    m = keys.shape[0]
    for c in range(cuda.grid(1), nchunks, cuda.gridsize(1)):
        cursor = cuda.local.array(_RADIX, np.int64)
        for b in range(_RADIX):
            cursor[b] = slots[b * nchunks + c]
        end = (c + 1) * chunk
        if end > m:
            end = m
        for k in range(c * chunk, end):
            key = keys[k]
            b = (key >> shift) & _MASK
            p = cursor[b]
            keys_out[p] = key
            rows_out[p] = rows[k]
            cursor[b] = p + 1


def radix_passes(n_names: int) -> int:
    """How many digit passes sort destination ids below ``n_names``."""
    bits = max(0, int(n_names) - 1).bit_length()
    return -(-bits // RADIX_BITS)


def group_by_destination(offsets, destinations, n_names: int):
    """Transpose device CSR routes: return (group_offsets[n_names+1], message_indices).

    Same answer as ``kernels.group.group_by_destination`` (int64 arrays), on device arrays:
    ``offsets`` int64 (n+1), ``destinations`` int32 ids below ``n_names``, each message's ids
    distinct. Message indices are ascending within each destination.
    """
    n = offsets.shape[0] - 1
    m = destinations.shape[0]
    counts = cuda.device_array(int(n_names), np.int64)
    fill(counts, 0)
    rows = cuda.device_array(m, np.int64)
    L.launch(_rows_and_counts, n)(offsets, destinations, rows, counts)
    group_offsets = exclusive_scan(counts)
    passes = radix_passes(n_names)
    if m == 0 or passes == 0:
        return group_offsets, rows
    chunk = max(1, int(L.SCAN_CHUNK))
    nchunks = -(-m // chunk)
    keys, keys_out = destinations, cuda.device_array(m, np.int32)
    rows_out = cuda.device_array(m, np.int64)
    hist = cuda.device_array(_RADIX * nchunks, np.int64)
    for p in range(passes):
        shift = np.int32(p * RADIX_BITS)
        L.launch(_digit_counts, nchunks)(keys, shift, np.int64(chunk), np.int64(nchunks), hist)
        slots = exclusive_scan(hist)
        L.launch(_digit_scatter, nchunks)(keys, rows, shift, np.int64(chunk), np.int64(nchunks), slots,
                                          keys_out, rows_out)
        if keys is destinations:  # the caller's array is read, never written
            keys = cuda.device_array(m, np.int32)
        keys, keys_out = keys_out, keys
        rows, rows_out = rows_out, rows
    return group_offsets, rows
