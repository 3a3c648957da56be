"""Fuzzing the decoders: mutated frames and RecordBatches raise FrameError or decode cleanly.

Each example encodes a random batch, then decodes many mutations of it (flipped bits, cut or
extended buffers, header fields and lengths overwritten with huge, negative or random values,
moved or zeroed ranges), half of them with the checksum recomputed so that the structural
checks behind it are reached. Every mutated buffer is decoded from memory that ends at an
unreadable page, so a read past its end would crash the run. A decode must either raise
FrameError or return a batch whose every key, value and header can be read back and encoded
again.

CI runs a short pass. ``FASTROUTE_LONG_FUZZ=1`` runs at least 100,000 mutations per decoder,
then all of it again with numba's bounds checking on (``NUMBA_BOUNDSCHECK=1``, in a subprocess
with its own cache), so an array access outside its array would fail with an IndexError.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import struct
import subprocess
import sys

import crc32c as crc32c_pkg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastroute as fr
from fastroute import codec
from reference_codec import batches

LONG = os.environ.get("FASTROUTE_LONG_FUZZ", "") not in ("", "0")
EXAMPLES = 520 if LONG else 25
MUTATIONS = 200 if LONG else 16
#: Mutated buffers decoded so far in this run, per decoder: (accepted, rejected).
TOTALS = {"frame": [0, 0], "record batch": [0, 0]}

_VALUES = [0, 1, 7, 8, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32,
           (1 << 62), (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


def mutate(buf: bytes, rng: random.Random) -> bytes:
    """One random corruption of ``buf``."""
    data = bytearray(buf)
    kind = rng.randrange(9)
    if kind == 0 and data:  # flip a few bits
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # cut
        del data[rng.randrange(len(data) + 1):]
    elif kind == 2:  # extend
        data += bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 8, 64])))
    elif kind == 3 and len(data) >= 8:  # overwrite a 64-bit field, aligned (frame header, directory, offsets)
        pos = rng.randrange(len(data) // 8) * 8
        data[pos:pos + 8] = struct.pack("<Q", rng.choice(_VALUES) if rng.random() < 0.7
                                        else rng.getrandbits(64))
    elif kind == 4 and len(data) >= 4:  # overwrite a 32-bit big-endian field anywhere (RecordBatch header)
        pos = rng.randrange(len(data) - 3)
        data[pos:pos + 4] = struct.pack(">I", rng.choice(_VALUES) & 0xFFFFFFFF)
    elif kind == 5 and data:  # set one byte (varints, tags, type codes, validity)
        data[rng.randrange(len(data))] = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 6 and len(data) > 2:  # copy a range over another
        a, b = sorted(rng.sample(range(len(data)), 2))
        dst = rng.randrange(len(data) - (b - a) + 1)
        data[dst:dst + b - a] = data[a:b]
    elif kind == 7 and data:  # zero a range
        a = rng.randrange(len(data))
        data[a:a + rng.randint(1, 32)] = bytes(min(32, len(data) - a))
    elif data:  # insert or delete one byte
        pos = rng.randrange(len(data))
        if rng.random() < 0.5:
            data.insert(pos, rng.randrange(256))
        else:
            del data[pos]
    return bytes(data)


def _fix_frame_crc(data: bytes) -> bytes:
    if len(data) < 8:
        return data
    return data[:4] + struct.pack("<I", crc32c_pkg.crc32c(data[8:])) + data[8:]


def _fix_record_crc(data: bytes) -> bytes:
    if len(data) < 21:
        return data
    return data[:17] + struct.pack(">I", crc32c_pkg.crc32c(data[21:])) + data[21:]


def _libc_mprotect():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).mprotect
    except (OSError, AttributeError):  # pragma: no cover - every Linux libc has mprotect
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return fn


_MPROTECT = _libc_mprotect()


def guarded(data: bytes):
    """``data`` in memory that ends where an unreadable page begins, so a decoder reading even
    one byte past the end crashes the run instead of reading garbage. (Plain bytes where the
    platform has no mprotect.) Frames start 8-byte aligned whenever their length allows."""
    if _MPROTECT is None:
        return data
    page = mmap.PAGESIZE
    pages = (len(data) + page - 1) // page + 1
    region = mmap.mmap(-1, pages * page)
    anchor = ctypes.c_char.from_buffer(region)
    address = ctypes.addressof(anchor)
    del anchor
    assert _MPROTECT(address + (pages - 1) * page, page, 0) == 0  # PROT_NONE
    start = (pages - 1) * page - len(data)
    region[start:start + len(data)] = data
    return memoryview(region)[start:start + len(data)]


def _use(batch: fr.MessageBatch) -> None:
    """Read every field of a decoded batch and encode it again."""
    for message in batch:
        assert message.key is None or isinstance(message.key, bytes)
    if batch.headers is not None:
        for i in range(len(batch)):
            batch.headers.row_pairs(i)
    assert codec.decode_frame(codec.encode_frame(batch)).equals(batch)


def fuzz_frames(batch, seed: int, count: int) -> dict:
    """Decode ``count`` mutations of ``batch``'s frame; return how many were accepted/rejected."""
    rng = random.Random(seed)
    frame = codec.encode_frame(batch).tobytes()
    tally = {"accepted": 0, "rejected": 0}
    for _ in range(count):
        data = mutate(frame, rng)
        if rng.random() < 0.5:
            data = _fix_frame_crc(data)
        try:
            decoded = codec.decode_frame(guarded(data))
        except fr.FrameError:
            tally["rejected"] += 1
            continue
        _use(decoded)
        tally["accepted"] += 1
    return tally


def fuzz_record_batches(batch, seed: int, count: int) -> dict:
    """Decode ``count`` mutations of ``batch``'s RecordBatch."""
    rng = random.Random(seed)
    raw = codec.encode_record_batch(batch, base_timestamp=1_700_000_000_000)
    tally = {"accepted": 0, "rejected": 0}
    for _ in range(count):
        data = mutate(raw, rng)
        if rng.random() < 0.5:
            data = _fix_record_crc(data)
        try:
            decoded = codec.decode_record_batch(guarded(data))
        except fr.FrameError:
            tally["rejected"] += 1
            continue
        _use(decoded)
        tally["accepted"] += 1
    return tally


@settings(max_examples=EXAMPLES)
@given(batches(max_size=12), st.integers(0, 1 << 32))
def test_mutated_frames_never_crash(batch, seed):
    """Every mutated frame raises FrameError or decodes into a readable batch."""
    tally = fuzz_frames(batch, seed, MUTATIONS)
    assert sum(tally.values()) == MUTATIONS
    TOTALS["frame"][0] += tally["accepted"]
    TOTALS["frame"][1] += tally["rejected"]


@settings(max_examples=EXAMPLES)
@given(batches(min_size=1, max_size=12, kafka=True, metadata=False), st.integers(0, 1 << 32))
def test_mutated_record_batches_never_crash(batch, seed):
    """Every mutated RecordBatch raises FrameError or decodes into a readable batch."""
    tally = fuzz_record_batches(batch, seed, MUTATIONS)
    assert sum(tally.values()) == MUTATIONS
    TOTALS["record batch"][0] += tally["accepted"]
    TOTALS["record batch"][1] += tally["rejected"]


def test_fuzz_volume(capsys):
    """The fuzz tests above decoded as many mutations as promised (100,000 per decoder in the
    long run), and some of them were accepted, so the checks behind decoding were reached."""
    if not any(sum(t) for t in TOTALS.values()):
        pytest.skip("run together with the fuzz tests above")
    want = EXAMPLES * MUTATIONS
    with capsys.disabled():
        print("\nfuzzed " + ", ".join(f"{name}: {a + r:,} mutations ({a:,} decoded, {r:,} rejected)"
                                      for name, (a, r) in TOTALS.items()))
    for name, (accepted, rejected) in TOTALS.items():
        assert accepted + rejected >= want, name
        assert accepted > 0 and rejected > 0, name


def test_mutations_reach_the_structural_checks():
    """With the CRC recomputed, mutations are caught by the checks behind it, not only the CRC."""
    batch = fr.MessageBatch.from_pylist(keys=[b"a", None, b"ccc"], values=[b"v" * 30, b"", None],
                                        headers=[{"h": [1, "x"]}, None, {"s": "t"}])
    frame = codec.encode_frame(batch).tobytes()
    rng = random.Random(11)
    reasons = set()
    for _ in range(400):
        try:
            codec.decode_frame(_fix_frame_crc(mutate(frame, rng)))
        except fr.FrameError as exc:
            reasons.add(str(exc).split(" ")[0])
    assert {"column", "key", "value", "header"} & reasons, reasons
    assert len(reasons) >= 4, reasons


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="set FASTROUTE_LONG_FUZZ=1 for the bounds-checked fuzz run")
def test_fuzz_with_numba_bounds_checks(tmp_path, capsys):
    """The long fuzz run again, every kernel compiled with bounds checks (an out-of-bounds
    array access raises IndexError, which fails the run)."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    here = os.path.dirname(__file__)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                             "-k", "never_crash or volume"], cwd=os.path.dirname(here), env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    volume = [line for line in result.stdout.splitlines() if line.startswith("fuzzed ")]
    assert volume, result.stdout[-4000:]
    with capsys.disabled():
        print("\nwith NUMBA_BOUNDSCHECK=1: " + volume[0])
