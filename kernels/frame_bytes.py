"""Byte-level primitives shared by the frame, RecordBatch and CRC32C kernels.

numba intrinsics for what plain numba code cannot express efficiently: unaligned
little-endian 64-bit loads and stores, and ``memcpy`` (a byte-by-byte loop copies small
messages about ten times slower, because LLVM cannot prove the arrays do not overlap).

Most of them work on raw addresses (``array.ctypes.data + position``) rather than on arrays.
That is deliberate: a per-message helper that takes an array pays for reference counting on
every call, which measured about 20 ns per call, as long as copying a 100-byte value; helpers
taking integers showed no such cost. Kernels take each array's address once, outside their
loops, and keep the arrays alive for the duration of the call. Nothing here checks bounds:
callers validate positions first.
"""

from __future__ import annotations

import sys

from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._config import INLINE

if sys.byteorder != "little":  # pragma: no cover - every platform numba supports is little-endian
    raise ImportError("fastroute's codecs need a little-endian CPU")

_I8P = ir.IntType(8).as_pointer()
_I64P = ir.IntType(64).as_pointer()


def _is_bytes(t) -> bool:
    return isinstance(t, types.Array) and t.dtype == types.uint8 and t.ndim == 1 and t.layout == "C"


@intrinsic
def load_u64(typingctx, data, pos):
    """The 8 bytes ``data[pos:pos+8]`` of a C-contiguous uint8 array as a little-endian uint64."""
    if not _is_bytes(data):
        return None
    sig = types.uint64(data, types.int64)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        return builder.load(builder.bitcast(ptr, _I64P), align=1)

    return sig, codegen


@intrinsic
def load_u64_at(typingctx, addr):
    """The 8 bytes at address ``addr`` as a little-endian uint64 (any alignment)."""
    sig = types.uint64(types.intp)

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], _I64P), align=1)

    return sig, codegen


@intrinsic
def store_u64_at(typingctx, addr, value):
    """Store ``value`` as 8 little-endian bytes at address ``addr`` (any alignment)."""
    if not isinstance(value, types.Integer):
        return None
    sig = types.void(types.intp, value)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[1], signature.args[1], types.uint64)
        builder.store(v, builder.inttoptr(args[0], _I64P), align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def load_u8_at(typingctx, addr):
    """The byte at address ``addr``."""
    sig = types.uint8(types.intp)

    def codegen(context, builder, signature, args):
        return builder.load(builder.inttoptr(args[0], _I8P))

    return sig, codegen


@intrinsic
def store_u8_at(typingctx, addr, value):
    """Store the low byte of ``value`` at address ``addr``."""
    if not isinstance(value, types.Integer):
        return None
    sig = types.void(types.intp, value)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[1], signature.args[1], types.uint8)
        builder.store(v, builder.inttoptr(args[0], _I8P))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def copy_at(typingctx, dst, src, count):
    """``memcpy(dst, src, count)`` between addresses of non-overlapping ranges."""
    sig = types.void(types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        cgutils.raw_memcpy(builder, builder.inttoptr(args[0], _I8P), builder.inttoptr(args[1], _I8P),
                           args[2], 1)
        return context.get_dummy_value()

    return sig, codegen


@njit(**INLINE)
def copy_message(dst, src, count):
    """Copy ``count`` bytes from address ``src`` to address ``dst``: inline for short items,
    ``memcpy`` for long ones.

    Short copies (most keys and many values) skip the call into the C library: whole 8-byte
    words, the last one overlapping the previous, so any length of 8 or more takes
    ceil(count / 8) loads and stores.
    """
    if count > 64:
        copy_at(dst, src, count)
    elif count >= 8:
        k = 0
        while k + 8 < count:
            store_u64_at(dst + k, load_u64_at(src + k))
            k += 8
        store_u64_at(dst + count - 8, load_u64_at(src + count - 8))
    else:
        for k in range(count):
            store_u8_at(dst + k, load_u8_at(src + k))
