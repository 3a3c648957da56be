"""Running a nogil kernel over chunks of work on a pool of threads.

A parallel numba kernel (``prange``) costs seconds of compilation for its gufunc wrapper
and, under OpenMP, busy-waits when the machine is loaded. For kernels whose per-chunk body
is already a serial ``nogil`` function, plain Python threads give the same parallelism:
each call releases the GIL for the length of its chunk.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

_pool = None
_lock = threading.Lock()


def thread_count() -> int:
    """Threads to split work across: numba's thread count (NUMBA_NUM_THREADS)."""
    return max(1, numba.get_num_threads())


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=thread_count(), thread_name_prefix="fastroute")
        return _pool


def _forget_pool() -> None:
    # a forked child inherits the pool object but none of its threads
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def map_chunks(fn, n_chunks: int) -> list:
    """[fn(0), ..., fn(n_chunks - 1)], run on the pool when there is more than one chunk."""
    if n_chunks <= 1 or thread_count() == 1:
        return [fn(c) for c in range(n_chunks)]
    return list(_get_pool().map(fn, range(n_chunks)))
