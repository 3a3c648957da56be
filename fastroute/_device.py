"""Moving batches and routes between host and GPU memory, and caching tables per device.

Representation: a device-resident column, batch or Routes holds **numba CUDA device arrays**
(``numba.cuda.cudadrv.devicearray.DeviceNDArray``) where the host form holds numpy arrays;
names, header names and every other Python object stay on the host. Device arrays expose
``__cuda_array_interface__``, so ``cupy.asarray(routes.destinations)`` (or PyTorch's
``torch.as_tensor``) views them without a copy, and any array with that interface (CuPy,
PyTorch, numba) is adopted here without a copy. CuPy is never needed by these functions.

A device batch keeps the host layout exactly: a binary column's ``offsets`` (int64, n+1),
``data`` (uint8) and ``validity`` (None, or bool per item) are device arrays, and so are the
arrays of its :class:`~fastroute.HeaderTable` and its metadata columns. Routes likewise.

Device batches go to GPU paths (``backend="gpu"``; :func:`fastroute._backend.place` keeps them
there under ``"auto"``). A CPU kernel cannot read device memory: :func:`host_batch` gives the
host copy for a CPU path (numba refuses a device array passed to a CPU kernel with a typing
error).

Tables that a router compiles once (topic tables, hash tables) are uploaded once per device
through :func:`upload_cached` and reused by every later call on that device.

Importing this module needs neither numba's CUDA target nor a GPU; every function that
touches device memory raises :class:`~fastroute.BackendUnavailable` (with the reason) when
the GPU cannot be used.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from ._errors import BatchError

# ------------------------------------------------------------------------------ arrays


def cuda():
    """The ``numba.cuda`` module, or BackendUnavailable saying why the GPU cannot be used."""
    from ._backend import require_gpu

    return require_gpu()


def is_device_array(x) -> bool:
    """True for a GPU array: a numba device array or anything with __cuda_array_interface__."""
    if x is None or isinstance(x, np.ndarray):
        return False
    # numba's device arrays (and the simulator's stand-ins) carry __cuda_ndarray__
    return bool(getattr(x, "__cuda_ndarray__", False)) or hasattr(x, "__cuda_array_interface__")


def to_device_array(x, dtype=None, what: str = "array"):
    """A 1-D device array of ``x``: numpy (or a sequence) is copied to the current device;
    a device array is used as it is (a foreign one, e.g. CuPy, is wrapped without a copy).

    Raises BatchError naming ``what`` when a device array is not 1-D and C-contiguous or
    has another dtype than ``dtype`` (converting would need a device kernel per dtype, so
    the caller converts). BackendUnavailable when no GPU is usable.
    """
    cu = cuda()
    if is_device_array(x):
        if not getattr(x, "__cuda_ndarray__", False):
            x = cu.as_cuda_array(x)
        if len(x.shape) != 1 or not x.is_c_contiguous():
            raise BatchError(f"{what} must be a 1-D contiguous device array, got shape {tuple(x.shape)}")
        if dtype is not None and np.dtype(x.dtype) != np.dtype(dtype):
            raise BatchError(f"{what} must have dtype {np.dtype(dtype)} on the device, got {x.dtype}")
        return x
    host = np.ascontiguousarray(x, dtype=dtype)
    if host.ndim != 1:
        raise BatchError(f"{what} must be 1-D, got shape {host.shape}")
    return cu.to_device(host)


def to_host_array(x):
    """A numpy array of ``x``: a device array is copied to the host, numpy passes through."""
    if x is None or isinstance(x, np.ndarray):
        return x
    if not getattr(x, "__cuda_ndarray__", False):
        x = cuda().as_cuda_array(x)
    return x.copy_to_host()


def device_empty(n: int, dtype):
    """An uninitialised device array of n items."""
    return cuda().device_array(int(n), dtype=np.dtype(dtype))


def device_zeros(n: int, dtype):
    """A device array of n zero items (filled by a kernel: nothing crosses the bus)."""
    from .kernels.cuda_scan import fill

    out = device_empty(n, dtype)
    fill(out, 0)
    return out


def where(x) -> str:
    """"gpu" for a device array, "cpu" for anything else."""
    return "gpu" if is_device_array(x) else "cpu"


def current_device_id() -> int:
    """The id of the CUDA device this thread uses (what device caches are keyed on)."""
    ctx = cuda().current_context()
    # numba's Device has an id; a context that does not say is the only (first) device
    return int(getattr(ctx.device, "id", 0))


# ------------------------------------------------------------------------------ columns

def column_to_device(column):
    """A device copy of a host :class:`~fastroute.BinaryColumn` (a device one is returned as is).

    Only the bytes the column uses cross the bus: a column viewing part of a larger buffer
    is uploaded with offsets rebased to 0.
    """
    from ._batch import BinaryColumn

    if is_device_array(column.offsets):
        return column
    offsets, data = column.offsets, column.data
    base, end = int(offsets[0]), int(offsets[-1])
    if base != 0 or end != data.shape[0]:
        data = data[base:end]
        offsets = offsets - base if base else offsets
    validity = None if column.validity is None else to_device_array(column.validity, np.bool_)
    return BinaryColumn._from_trusted(to_device_array(offsets, np.int64), to_device_array(data, np.uint8),
                                      validity)


def column_to_host(column):
    """A host copy of a device :class:`~fastroute.BinaryColumn` (a host one is returned as is)."""
    from ._batch import BinaryColumn

    if not is_device_array(column.offsets):
        return column
    return BinaryColumn(to_host_array(column.offsets), to_host_array(column.data),
                        to_host_array(column.validity))


def device_column(offsets, data, validity=None, what: str = "column"):
    """A device :class:`~fastroute.BinaryColumn` over device (or host) arrays, without copying
    device arrays.

    ``offsets``: int64, n+1, rising from ``offsets[0] >= 0`` to at most ``len(data)``;
    ``data``: uint8; ``validity``: None or bool per item (False = null). Checks dtypes,
    shapes, both ends of ``offsets`` and (with one device pass) that they never decrease.

    Raises BatchError naming ``what`` and the first bad entry.
    """
    from ._batch import BinaryColumn
    from .kernels.cuda_scan import first_descent

    offsets = to_device_array(offsets, np.int64, f"{what} offsets")
    data = to_device_array(data, np.uint8, f"{what} data")
    n = offsets.shape[0] - 1
    if n < 0:
        raise BatchError(f"{what} offsets must have n+1 >= 1 entries, got 0")
    first = int(offsets[0:1].copy_to_host()[0])
    last = int(offsets[n:n + 1].copy_to_host()[0])
    if first < 0 or last > data.shape[0]:
        raise BatchError(f"{what} offsets must lie within data (0..{data.shape[0]}), got {first}..{last}")
    bad = first_descent(offsets)
    if bad >= 0:
        raise BatchError(f"{what} offsets must not decrease; item {bad} ends before it starts", bad)
    if validity is not None:
        validity = to_device_array(validity, np.bool_, f"{what} validity")
        if validity.shape[0] != n:
            raise BatchError(f"{what} validity must have one flag per item ({n}), got {validity.shape[0]}")
    return BinaryColumn._from_trusted(offsets, data, validity)


def null_column(n: int):
    """A device column of n null items, made on the device."""
    from ._batch import BinaryColumn

    return BinaryColumn._from_trusted(device_zeros(n + 1, np.int64), device_empty(0, np.uint8),
                                      device_zeros(n, np.bool_))


# ------------------------------------------------------------------------------ batches

#: HeaderTable's constructor arguments, in order.
_HEADER_FIELDS = ("offsets", "names", "name_ids", "types", "ints", "floats", "blob_offsets", "blob_data")
_META = ("partition", "offset", "timestamp")
#: What :func:`batch_to_device` can upload.
PARTS = ("keys", "values", "headers", "metadata")


def _headers_moved(headers, move):
    from ._headers import HeaderTable

    return HeaderTable._from_trusted(*(headers.names if name == "names" else move(getattr(headers, name))
                                       for name in _HEADER_FIELDS))


def _batch_of(keys, values, headers, meta):
    """A MessageBatch around already-consistent columns, skipping the numpy checks (which
    would copy device arrays to the host)."""
    from ._batch import MessageBatch

    batch = MessageBatch.__new__(MessageBatch)
    batch.keys, batch.values, batch.headers = keys, values, headers
    for name, arr in zip(_META, meta):
        setattr(batch, name, arr)
    batch._unique = None
    return batch


def batch_device(batch) -> str:
    """"gpu" when ``batch`` is device-resident, else "cpu"."""
    return where(batch.keys.offsets)


def batch_to_device(batch, parts=PARTS):
    """A device-resident copy of ``batch`` (a device batch is returned as is).

    ``parts`` names what to upload, among :data:`PARTS`; a binary column left out is
    replaced by a device column of nulls, headers and metadata left out become None.
    Routing needs only ``("keys",)`` (plus ``"headers"`` for CC/BCC or headers routing),
    which saves moving the values. Raises BackendUnavailable when no GPU is usable.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts must be among {PARTS}, got {sorted(unknown)}")
    if batch_device(batch) == "gpu":
        return batch
    n = len(batch)
    keys = column_to_device(batch.keys) if "keys" in parts else null_column(n)
    values = column_to_device(batch.values) if "values" in parts else null_column(n)
    headers = None
    if "headers" in parts and batch.headers is not None:
        headers = _headers_moved(batch.headers, lambda a: to_device_array(a))
    meta = [None] * len(_META)
    if "metadata" in parts:
        meta = [None if getattr(batch, m) is None else to_device_array(getattr(batch, m)) for m in _META]
    return _batch_of(keys, values, headers, meta)


def batch_to_host(batch):
    """A host copy of a device batch (a host batch is returned as is), checked as any batch is."""
    from ._batch import MessageBatch

    if batch_device(batch) == "cpu":
        return batch
    headers = None
    if batch.headers is not None:
        from ._headers import HeaderTable

        h = batch.headers
        headers = HeaderTable(*(to_host_array(getattr(h, name)) if name != "names" else h.names
                                for name in _HEADER_FIELDS))
    return MessageBatch(column_to_host(batch.keys), column_to_host(batch.values), headers,
                        *(to_host_array(getattr(batch, m)) for m in _META))


def host_batch(batch):
    """``batch`` itself when host-resident, else its host copy (for a CPU path)."""
    return batch if batch_device(batch) == "cpu" else batch_to_host(batch)


def column_take(column, rows):
    """The device twin of :meth:`BinaryColumn.take`: the items ``rows`` of a device column.

    ``rows``: an int64 device array of in-range item numbers (unchecked). The items are laid
    end to end in a new buffer (offsets from 0); a validity array is gathered too. All on the
    device (kernels/cuda_splice.py).
    """
    from ._batch import BinaryColumn
    from .kernels import cuda_splice as K

    offsets, data = K.gather_binary(column.offsets, column.data, rows)
    validity = None if column.validity is None else K.take(column.validity, rows)
    return BinaryColumn._from_trusted(offsets, data, validity)


def batch_take(batch, rows):
    """The device twin of :meth:`MessageBatch.take`: a device batch of the messages ``rows``.

    ``batch`` is device-resident; ``rows`` an int64 device array of in-range message numbers
    (unchecked, any order). Keys, values, headers and metadata are all gathered on the device,
    so any router can route the result; nothing crosses the bus but the gathers' sizes.
    O(rows + bytes and header entries gathered).
    """
    from ._headers import HeaderTable
    from .kernels import cuda_splice as K

    headers = None
    if batch.headers is not None:
        h = batch.headers
        offsets, pos = K.gather_ranges(h.offsets, rows)
        blob_offsets, blob_data = K.gather_binary(h.blob_offsets, h.blob_data, pos)
        headers = HeaderTable._from_trusted(offsets, h.names, *(K.take(getattr(h, name), pos) for name in
                                                               ("name_ids", "types", "ints", "floats")),
                                            blob_offsets, blob_data)
    meta = [None if getattr(batch, m) is None else K.take(getattr(batch, m), rows) for m in _META]
    return _batch_of(column_take(batch.keys, rows), column_take(batch.values, rows), headers, meta)


def batch_from_device_buffers(key_offsets=None, key_data=None, value_offsets=None, value_data=None, *,
                              key_validity=None, value_validity=None):
    """A device batch over device arrays (CuPy, PyTorch, numba: anything with
    ``__cuda_array_interface__``), without copying them; host arrays are uploaded.

    The device twin of :meth:`MessageBatch.from_buffers`: ``*_offsets`` int64 (n+1),
    ``*_data`` uint8, ``*_validity`` bool (False = null). Omit a pair for an all-null column.

    Raises BatchError for a bad dtype, shape or decreasing offsets (see :func:`device_column`).
    """
    keys = None if key_offsets is None else device_column(key_offsets, key_data, key_validity, "keys")
    values = None if value_offsets is None else device_column(value_offsets, value_data, value_validity,
                                                              "values")
    if keys is None and values is None:
        raise BatchError("a batch needs keys or values (or both)")
    n = len(keys) if keys is not None else len(values)
    if keys is not None and values is not None and len(values) != n:
        raise BatchError(f"keys and values must have the same length, got {n} keys and {len(values)} values")
    return _batch_of(keys if keys is not None else null_column(n),
                     values if values is not None else null_column(n), None, [None] * len(_META))


# ------------------------------------------------------------------------------ routes

def device_routes(offsets, destinations, names):
    """Routes over device ``offsets`` (int64, n+1) and ``destinations`` (int32), unchecked:
    for kernels that have just produced them."""
    from ._routes import Routes

    routes = Routes.__new__(Routes)
    routes.offsets, routes.destinations = offsets, destinations
    routes.names = names if isinstance(names, range) else list(names)
    routes._transpose = None
    return routes


def single_routes(destinations, names, on_device: bool):
    """Routes sending message i to ``destinations[i]`` (a device int32 array): device Routes
    when ``on_device``, else host Routes (only the destinations cross the bus; the offsets
    ``0..n`` are made where they are needed)."""
    from ._routes import Routes
    from .kernels.cuda_scan import iota

    n = destinations.shape[0]
    if on_device:
        return device_routes(iota(n + 1), destinations, names)
    return Routes(np.arange(n + 1, dtype=np.int64), to_host_array(destinations), names, check=False)


def empty_routes(n: int, names, on_device: bool):
    """Routes of n messages that go nowhere, on the device when ``on_device``."""
    from ._routes import Routes

    if on_device:
        return device_routes(device_zeros(n + 1, np.int64), device_empty(0, np.int32), names)
    return Routes.empty(n, names)


def routes_device(routes) -> str:
    """"gpu" when ``routes`` is device-resident, else "cpu"."""
    return where(routes.offsets)


def routes_to_device(routes):
    """A device copy of host Routes (device Routes are returned as is)."""
    if routes_device(routes) == "gpu":
        return routes
    return device_routes(to_device_array(routes.offsets, np.int64),
                         to_device_array(routes.destinations, np.int32), routes.names)


def routes_to_host(routes):
    """A host copy of device Routes (host Routes are returned as is)."""
    from ._routes import Routes

    if routes_device(routes) == "cpu":
        return routes
    return Routes(to_host_array(routes.offsets), to_host_array(routes.destinations), routes.names,
                  check=False)


def device_unroutable(routes):
    """Indices of the messages of device Routes that go nowhere, as an int64 device array.

    The device twin of :meth:`Routes.unroutable` (which returns numpy): ascending, computed
    on the device by compacting the empty routes; only their count crosses the bus.
    """
    from .kernels.cuda_splice import unroutable_rows

    return unroutable_rows(routes.offsets)


def device_groups(routes):
    """(group_offsets, group_indices) of device Routes, computed on the device.

    The device twin of ``Routes.group_offsets`` / ``Routes.group_indices``: per destination
    id, the ascending message indices it receives (int64, CSR over ``len(names)`` groups).
    Stable two-pass grouping (kernels/cuda_group.py); cached on the Routes object.
    """
    from .kernels.cuda_group import group_by_destination

    if routes_device(routes) == "cpu":
        return routes.group_offsets, routes.group_indices
    if routes._transpose is None:
        routes._transpose = group_by_destination(routes.offsets, routes.destinations, len(routes.names))
    return routes._transpose


def gpu_routes(batch, compute, parts=("keys",)):
    """Run ``compute(device_batch) -> device Routes`` where the data lives.

    A device batch gives device Routes, with no host copy; a host batch is uploaded
    (only ``parts``, see :func:`batch_to_device`) and the Routes come back to the host, so
    ``backend="gpu"`` on host data returns what the CPU path returns.
    """
    if batch_device(batch) == "gpu":
        return compute(batch)
    return routes_to_host(compute(batch_to_device(batch, parts)))


# ------------------------------------------------------------------------------ table cache

_cache: dict = {}
_cache_lock = threading.Lock()


def _drop_owner(owner_id: int) -> None:
    with _cache_lock:
        for k in [k for k in _cache if k[0] == owner_id]:
            del _cache[k]


def upload_cached(owner, key, arrays):
    """Device copies of ``arrays``, uploaded once per (``owner``, ``key``, device) and reused.

    Args:
        owner: the object the arrays belong to (a router, a compiled table). The cache
            entry lives as long as the owner when it supports weak references; otherwise
            the owner is kept alive by the cache until :func:`forget` is called.
        key: any hashable naming this set of arrays within the owner (e.g. "topic").
        arrays: a tuple/list of numpy arrays, or a dict of name -> numpy array. They must not
            change afterwards: the copies are not refreshed.

    Returns:
        The same structure (tuple or dict) of device arrays.

    Thread-safe; an upload that races another for the same entry keeps the first.
    """
    dev = current_device_id()
    cache_key = (id(owner), key, dev)
    with _cache_lock:
        hit = _cache.get(cache_key)
    if hit is not None and hit[0]() is owner:
        return hit[1]
    if isinstance(arrays, dict):
        uploaded = {name: to_device_array(a) for name, a in arrays.items()}
    else:
        uploaded = tuple(to_device_array(a) for a in arrays)
    try:
        ref = weakref.ref(owner)
        weakref.finalize(owner, _drop_owner, id(owner))
    except TypeError:  # no weak references (tuples, slotted classes): hold it strongly
        ref = (lambda o: (lambda: o))(owner)
    with _cache_lock:
        hit = _cache.get(cache_key)
        if hit is not None and hit[0]() is owner:
            return hit[1]
        _cache[cache_key] = (ref, uploaded)
    return uploaded


def forget(owner) -> None:
    """Drop every device copy cached for ``owner`` (on every device)."""
    _drop_owner(id(owner))


def cached_count() -> int:
    """How many (owner, key, device) entries the table cache holds."""
    with _cache_lock:
        return len(_cache)
