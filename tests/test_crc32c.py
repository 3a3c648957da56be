"""CRC-32C: the published vector, other implementations, both code paths, combining."""

from __future__ import annotations

import os
import subprocess
import sys

import crc32c as crc32c_pkg
import google_crc32c
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastroute import codec
from fastroute.kernels import crc32c as K
from reference_codec import crc32c_bitwise

PATHS = [pytest.param(False, id="software"),
         pytest.param(True, id="hardware",
                      marks=pytest.mark.skipif(K.INSTRUCTIONS is None,
                                               reason="this CPU has no CRC-32C instructions"))]

# Lengths around every branch of the kernels: bytes, words, short and long three-stream
# blocks (3 x 256, 3 x 8192), the parallel tile size, and the size above which crc32c()
# splits a buffer across cores.
EDGES = [0, 1, 7, 8, 9, 15, 16, 767, 768, 769, 24575, 24576, 24577, K.TILE - 1, K.TILE, K.TILE + 1,
         3 * K.TILE + 5, K.PARALLEL_MIN_BYTES + 9]


def test_published_vector():
    """crc32c("123456789") is 0xE3069283 (SEMANTICS.md §12) through the public function."""
    assert codec.crc32c(b"123456789") == 0xE3069283
    assert crc32c_bitwise(b"123456789") == 0xE3069283


@pytest.mark.parametrize("hw", PATHS)
def test_vector_on_each_path(hw):
    """Both the instruction path and the table path give the published vector."""
    assert K.crc32c(b"123456789", hardware=hw) == 0xE3069283


@pytest.mark.parametrize("hw", PATHS)
@pytest.mark.parametrize("length", EDGES)
def test_matches_crc32c_package_at_block_edges(hw, length):
    """Every length around a block or tile boundary agrees with the crc32c package."""
    data = np.random.default_rng(length).integers(0, 256, length, dtype=np.uint8)
    assert K.crc32c(data, hardware=hw) == crc32c_pkg.crc32c(data.tobytes())


@pytest.mark.parametrize("hw", PATHS)
@given(data=st.binary(max_size=3000), offset=st.integers(0, 7))
def test_matches_bitwise_reference(hw, data, offset):
    """Random data at every alignment agrees with the bit-at-a-time reference."""
    buf = np.frombuffer(b"\0" * offset + data, np.uint8)[offset:]
    assert K.crc32c(buf, hardware=hw) == crc32c_bitwise(data)


@pytest.mark.parametrize("hw", PATHS)
@given(data=st.binary(max_size=70000))
def test_matches_google_crc32c(hw, data):
    """Random data agrees with google-crc32c."""
    assert K.crc32c(data, hardware=hw) == google_crc32c.value(data)


@given(a=st.binary(max_size=2000), b=st.binary(max_size=2000))
def test_continuation_and_combine(a, b):
    """crc(a+b) equals crc(b) continued from crc(a), and combine(crc(a), crc(b), len(b))."""
    whole = crc32c_bitwise(a + b)
    assert codec.crc32c(b, codec.crc32c(a)) == whole
    assert int(K.crc32c_combine(codec.crc32c(a), codec.crc32c(b), len(b))) == whole


@pytest.mark.parametrize("hw", PATHS)
def test_ranges_checksum_each_range(hw):
    """crc32c_ranges gives each range's own CRC, for empty, short and multi-tile ranges."""
    data = np.random.default_rng(1).integers(0, 256, 3 * K.TILE, dtype=np.uint8)
    starts = np.array([0, 5, 100, 0, K.TILE - 3, 17], np.int64)
    stops = np.array([0, 6, 4000, 3 * K.TILE, 2 * K.TILE + 9, 17 + K.TILE], np.int64)
    got = K.crc32c_ranges(data, starts, stops, hw)
    want = [crc32c_pkg.crc32c(data[a:b].tobytes()) for a, b in zip(starts, stops)]
    assert got.tolist() == want


def test_long_buffer_continues_value():
    """A buffer long enough to be split across cores still continues from ``value``."""
    data = np.random.default_rng(2).integers(0, 256, K.PARALLEL_MIN_BYTES + 3, dtype=np.uint8)
    head = b"prefix bytes"
    assert codec.crc32c(data, codec.crc32c(head)) == crc32c_pkg.crc32c(head + data.tobytes())


def test_rejects_bad_arguments():
    """A non-contiguous array or a value beyond 32 bits is refused with the reason."""
    with pytest.raises(ValueError, match="C-contiguous"):
        codec.crc32c(np.zeros(10, np.uint8)[::2])
    with pytest.raises(ValueError, match="32-bit"):
        codec.crc32c(b"x", 1 << 32)


def test_environment_forces_software():
    """FASTROUTE_CRC32C=software makes the drivers use the tables, and they still agree."""
    code = ("from fastroute.kernels import crc32c as K; from fastroute import codec; "
            "print(K.HARDWARE, codec.CRC32C_IMPLEMENTATION, hex(codec.crc32c(b'123456789')))")
    env = dict(os.environ, FASTROUTE_CRC32C="software")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "software", "(slicing-by-8)", "0xe3069283"]


def test_implementation_is_reported():
    """The chosen implementation names the instructions exactly when it uses them."""
    if K.HARDWARE:
        assert codec.CRC32C_IMPLEMENTATION == f"hardware ({K.INSTRUCTIONS})"
    else:
        assert codec.CRC32C_IMPLEMENTATION == "software (slicing-by-8)"
