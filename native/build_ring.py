"""cffi build script (API mode) for ``fastroute._ring``, the compiled ring buffer.

setuptools runs it through ``cffi_modules=["native/build_ring.py:ffi"]`` in setup.py. The cdef
is derived from ``ring.h`` itself (every ``#define`` becomes ``#define NAME ...``, so cffi reads
the constants' values from the compiled header): no declaration or number lives in two places.
Running this file directly builds the module in the current directory, for experiments.
"""

from __future__ import annotations

import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "ring.h")
SOURCE = os.path.join(HERE, "ring.c")

_DEFINE = re.compile(r"^#define\s+(\w+)\s+\S.*$")
_SKIP = re.compile(r"^#\s*(ifndef|endif|include|define\s+FASTROUTE_RING_H\s*$)")


def cdef_from_header(text: str) -> str:
    """The cffi cdef for ``ring.h``: its declarations, with each valued macro as ``...``.

    Raises ValueError when the header holds a preprocessor line this conversion does not know,
    so a new kind of line fails the build instead of vanishing from the binding.
    """
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            out.append(line)
        elif _SKIP.match(stripped):
            continue
        elif (m := _DEFINE.match(stripped)) is not None:
            out.append(f"#define {m.group(1)} ...")
        else:
            raise ValueError(f"ring.h: cannot turn preprocessor line {stripped!r} into a cdef")
    return "\n".join(out)


def _relative(path: str) -> str:
    # setuptools wants sources relative to the project root, the directory it builds from
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (not on the Linux-only targets, but harmless)
        return path


def make_ffi() -> FFI:
    """An FFI set up to compile ``ring.c`` into the module ``fastroute._ring``."""
    builder = FFI()
    with open(HEADER, encoding="utf-8") as f:
        builder.cdef(cdef_from_header(f.read()))
    builder.set_source(
        "fastroute._ring",
        '#include "ring.h"',
        sources=[_relative(SOURCE)],
        include_dirs=[_relative(HERE)],
        extra_compile_args=["-std=c11", "-O2"],
        libraries=["rt", "pthread"] if sys.platform.startswith("linux") else [],
        depends=[_relative(HEADER)],
    )
    return builder


ffi = make_ffi()

if __name__ == "__main__":
    ffi.compile(verbose=True)
