"""CRC-32C (Castagnoli), the checksum of fastroute frames and Kafka RecordBatch v2.

Reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF, so
``crc32c(b"123456789") == 0xE3069283``.

Two implementations share every kernel:

* hardware: the SSE4.2 ``crc32`` instruction on x86-64 (LLVM's ``llvm.x86.sse42.crc32.64.64``)
  or the ARMv8 ``crc32cx`` instruction, emitted through numba intrinsics so the checksum runs
  inside the same compiled kernels as the copies. Inputs of 768 bytes or more run three
  independent streams and merge them with precomputed "append n zero bytes" tables, because
  each instruction waits for the previous one's result: one chain measured about 6.4 GB/s on
  the development machine, three chains about 15.8 GB/s on the same 200 MB buffer;
* software: slicing-by-8 tables, for CPUs (or numba targets) without those instructions.

:data:`HARDWARE` says which one the drivers use by default; it is decided at import from the
CPU features numba compiles for, and ``FASTROUTE_CRC32C=software`` forces the tables. Every
kernel takes the choice as its ``hw`` argument, so one compiled kernel serves both and tests
can run both on one machine.

Checksums of pieces combine without rereading the data (:func:`crc32c_combine`), which is how
:func:`crc32c_ranges` spreads one long buffer, or many frames, across all cores.
"""

from __future__ import annotations

import os
import platform

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, config, types
from numba.extending import intrinsic

from ._config import PARALLEL, SERIAL
from .frame_bytes import load_u64

POLY = 0x82F63B78
_MASK = 0xFFFFFFFF

#: Bytes per stream in the long and short three-stream blocks of the hardware path.
LONG = 8192
SHORT = 256

#: Bytes per parallel task in :func:`crc32c_ranges`: big enough that the merge is noise,
#: small enough that two cores share even a single 1 MB frame.
TILE = 1 << 18

#: :func:`crc32c` splits a buffer across cores only above this size (one core checksums 8 MiB
#: in well under a millisecond, less than a busy machine may take to schedule a second thread).
PARALLEL_MIN_BYTES = 8 << 20


# ----------------------------------------------------------------------------- CPU detection

def _target_features() -> set:
    """The CPU features numba compiles for (its host, or NUMBA_CPU_NAME/NUMBA_CPU_FEATURES)."""
    if config.CPU_NAME:
        spec = config.CPU_FEATURES or ""
        return {f[1:] for f in spec.split(",") if f.startswith("+")}
    import llvmlite.binding as llvm

    return {name for name, on in llvm.get_host_cpu_features().items() if on}


def _instruction_set() -> str | None:
    machine = platform.machine().lower()
    try:
        features = _target_features()
    except Exception:  # pragma: no cover - llvmlite without feature detection
        return None
    if machine in ("x86_64", "amd64") and "sse4.2" in features:
        return "sse4.2"
    if machine in ("aarch64", "arm64") and "crc" in features:
        return "armv8-crc"
    return None


#: "sse4.2", "armv8-crc", or None when the compile target lacks both.
INSTRUCTIONS = _instruction_set()

#: True when the drivers use the CRC instructions (False: slicing-by-8 tables).
HARDWARE = INSTRUCTIONS is not None and os.environ.get("FASTROUTE_CRC32C", "").lower() != "software"

#: What computes the checksums by default, in words.
IMPLEMENTATION = f"hardware ({INSTRUCTIONS})" if HARDWARE else "software (slicing-by-8)"


# ----------------------------------------------------------------------------- GF(2) algebra

def _multmodp(a: int, b: int) -> int:
    """a·b modulo the CRC polynomial, in the reflected bit order (bit 31 is x^0)."""
    p = 0
    m = 1 << 31
    while m:
        if a & m:
            p ^= b
        b = (b >> 1) ^ POLY if b & 1 else b >> 1
        m >>= 1
    return p


def _x2n_table() -> np.ndarray:
    """x^(2^k) modulo the polynomial for k = 0..31."""
    out = [1 << 30]  # x^1
    for _ in range(31):
        out.append(_multmodp(out[-1], out[-1]))
    return np.array(out, np.uint32)


def _x8n(nbytes: int, x2n: np.ndarray) -> int:
    """x^(8·nbytes) modulo the polynomial: the operator that appends nbytes zero bytes."""
    p = 1 << 31
    k = 3
    while nbytes:
        if nbytes & 1:
            p = _multmodp(int(x2n[k & 31]), p)
        nbytes >>= 1
        k += 1
    return p


def _shift_tables(nbytes: int, x2n: np.ndarray) -> np.ndarray:
    """(4, 256) tables T with shift(c) = T[0][c&255] ^ T[1][c>>8&255] ^ T[2][c>>16&255] ^ T[3][c>>24].

    shift(c) is the CRC register after nbytes zero bytes starting from c; it is linear in c,
    so it is the XOR of its values on c's set bits.
    """
    op = _x8n(nbytes, x2n)
    basis = np.array([_multmodp(op, 1 << bit) for bit in range(32)], np.uint32)
    v = np.arange(256)
    tables = np.zeros((4, 256), np.uint32)
    for k in range(4):
        for b in range(8):
            tables[k] ^= np.where((v >> b) & 1, basis[8 * k + b], 0).astype(np.uint32)
    return tables


def _slicing_tables() -> np.ndarray:
    """(8, 256) slicing-by-8 tables: row 0 is the byte-at-a-time table."""
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1).astype(np.uint32)
    tables = np.empty((8, 256), np.uint32)
    tables[0] = t
    for k in range(1, 8):
        prev = tables[k - 1]
        tables[k] = (prev >> 8) ^ t[prev & 0xFF]
    return tables


_X2N = _x2n_table()
_SLICE8 = _slicing_tables()
_SHIFT_LONG = _shift_tables(LONG, _X2N)
_SHIFT_SHORT = _shift_tables(SHORT, _X2N)


# ----------------------------------------------------------------------------- intrinsics

def _int(bits: int) -> ir.IntType:
    return ir.IntType(bits)


@intrinsic
def _hw_crc_u64(typingctx, reg, word):
    """One CRC instruction over 8 bytes: the register after ``word`` (little-endian)."""
    if not (isinstance(reg, types.Integer) and isinstance(word, types.Integer)):
        return None
    sig = types.uint32(reg, word)

    def codegen(context, builder, signature, args):
        c = context.cast(builder, args[0], signature.args[0], types.uint32)
        w = context.cast(builder, args[1], signature.args[1], types.uint64)
        if INSTRUCTIONS == "sse4.2":
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_int(64), [_int(64), _int(64)]),
                "llvm.x86.sse42.crc32.64.64")
            return builder.trunc(builder.call(fn, [builder.zext(c, _int(64)), w]), _int(32))
        if INSTRUCTIONS == "armv8-crc":
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_int(32), [_int(32), _int(64)]), "llvm.aarch64.crc32cx")
            return builder.call(fn, [c, w])
        # Unreachable: without the instructions HARDWARE is False and no caller takes this path.
        return ir.Constant(_int(32), 0)

    return sig, codegen


@intrinsic
def _hw_crc_u8(typingctx, reg, byte):
    """One CRC instruction over one byte."""
    if not (isinstance(reg, types.Integer) and isinstance(byte, types.Integer)):
        return None
    sig = types.uint32(reg, byte)

    def codegen(context, builder, signature, args):
        c = context.cast(builder, args[0], signature.args[0], types.uint32)
        b = context.cast(builder, args[1], signature.args[1], types.uint8)
        if INSTRUCTIONS == "sse4.2":
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_int(32), [_int(32), _int(8)]), "llvm.x86.sse42.crc32.32.8")
            return builder.call(fn, [c, b])
        if INSTRUCTIONS == "armv8-crc":
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_int(32), [_int(32), _int(32)]), "llvm.aarch64.crc32cb")
            return builder.call(fn, [c, builder.zext(b, _int(32))])
        return ir.Constant(_int(32), 0)

    return sig, codegen


# ----------------------------------------------------------------------------- kernels

@njit(**SERIAL)
def _shift(tables, reg):
    return (tables[0, reg & 0xFF] ^ tables[1, (reg >> 8) & 0xFF]
            ^ tables[2, (reg >> 16) & 0xFF] ^ tables[3, (reg >> 24) & 0xFF])


@njit(**SERIAL)
def _three_streams(c, data, pos, stop, block, tables):
    """Consume whole blocks of 3·block bytes as three interleaved streams; return (reg, pos)."""
    while stop - pos >= 3 * block:
        c1 = np.uint32(0)
        c2 = np.uint32(0)
        end = pos + block
        while pos < end:
            c = _hw_crc_u64(c, load_u64(data, pos))
            c1 = _hw_crc_u64(c1, load_u64(data, pos + block))
            c2 = _hw_crc_u64(c2, load_u64(data, pos + 2 * block))
            pos += 8
        # stream 1 continues stream 0, stream 2 continues stream 1: shift, then add
        c = np.uint32(_shift(tables, c) ^ c1)
        c = np.uint32(_shift(tables, c) ^ c2)
        pos += 2 * block
    return c, pos


@njit(**SERIAL)
def _update_hw(reg, data, pos, stop):
    """The register after ``data[pos:stop]``, with the CRC instructions."""
    c = np.uint32(reg)
    c, pos = _three_streams(c, data, pos, stop, LONG, _SHIFT_LONG)
    c, pos = _three_streams(c, data, pos, stop, SHORT, _SHIFT_SHORT)
    while stop - pos >= 8:
        c = _hw_crc_u64(c, load_u64(data, pos))
        pos += 8
    while pos < stop:
        c = _hw_crc_u8(c, data[pos])
        pos += 1
    return c


@njit(**SERIAL)
def _update_sw(reg, data, pos, stop):
    """The register after ``data[pos:stop]``, with slicing-by-8 tables."""
    t = _SLICE8
    c = np.uint64(reg)
    while stop - pos >= 8:
        w = load_u64(data, pos) ^ c
        c = np.uint64(t[7, w & 0xFF] ^ t[6, (w >> 8) & 0xFF] ^ t[5, (w >> 16) & 0xFF]
                      ^ t[4, (w >> 24) & 0xFF] ^ t[3, (w >> 32) & 0xFF] ^ t[2, (w >> 40) & 0xFF]
                      ^ t[1, (w >> 48) & 0xFF] ^ t[0, w >> 56])
        pos += 8
    while pos < stop:
        c = np.uint64(t[0, (c ^ data[pos]) & 0xFF]) ^ (c >> 8)
        pos += 1
    return np.uint32(c)


@njit(**SERIAL)
def crc32c_range(data, start, stop, crc, hw):
    """CRC-32C of ``data[start:stop]`` continuing from the CRC ``crc`` of earlier bytes (0: none).

    ``data`` is a C-contiguous uint8 array; positions are not checked. ``hw`` picks the
    hardware instructions (only valid when :data:`INSTRUCTIONS` is set) or the tables.
    """
    reg = np.uint32(crc) ^ np.uint32(_MASK)
    if hw:
        reg = _update_hw(reg, data, start, stop)
    else:
        reg = _update_sw(reg, data, start, stop)
    return np.uint32(reg ^ np.uint32(_MASK))


@njit(**SERIAL)
def _multmodp_nb(a, b):
    p = np.uint32(0)
    m = np.uint32(1 << 31)
    a = np.uint32(a)
    b = np.uint32(b)
    while m:
        if a & m:
            p ^= b
        if b & 1:
            b = np.uint32((b >> 1) ^ POLY)
        else:
            b = np.uint32(b >> 1)
        m = np.uint32(m >> 1)
    return p


@njit(**SERIAL)
def crc32c_combine(crc1, crc2, len2):
    """The CRC of A+B from crc1 = CRC(A), crc2 = CRC(B) and len2 = len(B). O(log len2)."""
    p = np.uint32(1 << 31)
    k = 3
    n = np.int64(len2)
    while n > 0:
        if n & 1:
            p = _multmodp_nb(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return np.uint32(_multmodp_nb(p, crc1) ^ np.uint32(crc2))


@njit(**SERIAL)
def _tile_plan(starts, stops, tile):
    """Split each range into tiles of at most ``tile`` bytes: (tile_of_range offsets, lo, hi)."""
    m = starts.shape[0]
    first = np.empty(m + 1, np.int64)
    total = 0
    for r in range(m):
        first[r] = total
        length = stops[r] - starts[r]
        total += max(1, (length + tile - 1) // tile)
    first[m] = total
    lo = np.empty(total, np.int64)
    hi = np.empty(total, np.int64)
    for r in range(m):
        a = starts[r]
        for t in range(first[r], first[r + 1]):
            lo[t] = a
            a = min(stops[r], a + tile)
            hi[t] = a
    return first, lo, hi


@njit(**PARALLEL)
def crc32c_ranges(data, starts, stops, hw):
    """CRC-32C of every range ``data[starts[r]:stops[r]]`` (uint32 array), all cores sharing the work.

    Ranges are cut into tiles of :data:`TILE` bytes checksummed in parallel, then merged per
    range with :func:`crc32c_combine`. Positions are not checked.
    """
    first, lo, hi = _tile_plan(starts, stops, TILE)
    parts = np.empty(lo.shape[0], np.uint32)
    for t in prange(lo.shape[0]):
        parts[t] = crc32c_range(data, lo[t], hi[t], 0, hw)
    out = np.empty(starts.shape[0], np.uint32)
    for r in prange(starts.shape[0]):
        acc = np.uint32(0)
        for t in range(first[r], first[r + 1]):
            acc = crc32c_combine(acc, parts[t], hi[t] - lo[t])
        out[r] = acc
    return out


# ----------------------------------------------------------------------------- Python driver

def read_only(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when read-only, else a read-only view of it.

    Kernels are compiled per argument type, and numba types writable and read-only arrays
    apart; handing every input over read-only keeps one compiled kernel per signature instead
    of one per mix of writable and read-only inputs.
    """
    if not arr.flags.writeable:
        return arr
    view = arr.view()
    view.flags.writeable = False
    return view


def as_bytes_array(buffer) -> np.ndarray:
    """A read-only uint8 view of any C-contiguous buffer (bytes, memoryview, ndarray, mmap...)."""
    if isinstance(buffer, np.ndarray):
        if not buffer.flags.c_contiguous:
            raise ValueError("buffer must be C-contiguous")
        return read_only(buffer.reshape(-1).view(np.uint8))
    return read_only(np.frombuffer(buffer, np.uint8))


def crc32c(buffer, value: int = 0, *, hardware: bool | None = None) -> int:
    """CRC-32C of a bytes-like object, continuing from ``value`` (the CRC of preceding bytes).

    ``hardware`` forces the instruction (True) or table (False) path; None uses
    :data:`HARDWARE`. Buffers over :data:`PARALLEL_MIN_BYTES` are checksummed on all cores.
    Releases the GIL.

    Raises ValueError for a non-contiguous buffer, or hardware=True on a CPU without the
    instructions.
    """
    hw = HARDWARE if hardware is None else bool(hardware)
    if hw and INSTRUCTIONS is None:
        raise ValueError("this CPU (or numba target) has no CRC-32C instructions; use hardware=False")
    data = as_bytes_array(buffer)
    if not 0 <= value <= _MASK:
        raise ValueError(f"value must be a 32-bit CRC, got {value}")
    if data.shape[0] <= PARALLEL_MIN_BYTES:
        return int(crc32c_range(data, 0, data.shape[0], value, hw))
    whole = int(crc32c_ranges(data, np.zeros(1, np.int64), np.full(1, data.shape[0], np.int64), hw)[0])
    return int(crc32c_combine(value, whole, data.shape[0])) if value else whole
