"""Zero-copy conversion between MessageBatch and pyarrow (optional dependency)."""

from __future__ import annotations

import numpy as np

from ._errors import BatchError


def _pyarrow():
    try:
        import pyarrow
    except ImportError:
        raise ImportError('Arrow support needs pyarrow: pip install "fastroute[arrow]"') from None
    return pyarrow


def _column_from_arrow(arr, what: str):
    """A BinaryColumn sharing ``arr``'s data buffer (and offsets, when they are 64-bit)."""
    from ._batch import BinaryColumn

    pa = _pyarrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = arr.view(pa.large_binary() if pa.types.is_large_string(t) else pa.binary())
        t = arr.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        raise BatchError(f"{what}: expected an Arrow binary or string array, got {t}")
    n = len(arr)
    validity_buf, offsets_buf, data_buf = arr.buffers()
    odt = np.int64 if pa.types.is_large_binary(t) else np.int32
    offsets = np.frombuffer(offsets_buf, odt, n + 1, arr.offset * np.dtype(odt).itemsize)
    data = (np.frombuffer(data_buf, np.uint8) if data_buf is not None and data_buf.size
            else np.zeros(0, np.uint8))
    validity = None
    if arr.null_count:
        bits = np.frombuffer(validity_buf, np.uint8)
        validity = np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset:].astype(np.bool_)
    return BinaryColumn(offsets, data, validity)


def _column_to_arrow(col):
    pa = _pyarrow()
    n = len(col)
    validity = None
    if col.validity is not None:
        validity = pa.py_buffer(np.packbits(col.validity, bitorder="little"))
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [validity, pa.py_buffer(col.offsets), pa.py_buffer(col.data)],
        null_count=col.null_count)


def batch_from_arrow(cls, data, values=None):
    pa = _pyarrow()
    meta = {}
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        names = data.schema.names
        if "key" not in names and "value" not in names:
            raise BatchError(f"an Arrow table needs a 'key' or 'value' column, got columns {names}")
        keys = _column_from_arrow(data.column("key"), "key") if "key" in names else None
        vals = _column_from_arrow(data.column("value"), "value") if "value" in names else None
        for m in ("partition", "offset", "timestamp"):
            if m in names:
                col = data.column(m)
                if isinstance(col, pa.ChunkedArray):
                    col = col.combine_chunks()
                if pa.types.is_timestamp(col.type):
                    col = col.cast(pa.timestamp("ms")).cast(pa.int64())
                meta[m] = col.to_numpy(zero_copy_only=False)
    else:
        keys = _column_from_arrow(data, "keys")
        vals = None if values is None else _column_from_arrow(values, "values")
    return cls(keys, vals, None, **meta)


def batch_to_arrow(batch):
    pa = _pyarrow()
    cols = {"key": _column_to_arrow(batch.keys), "value": _column_to_arrow(batch.values)}
    for m in ("partition", "offset", "timestamp"):
        arr = getattr(batch, m)
        if arr is not None:
            cols[m] = pa.array(arr)
    return pa.table(cols)
