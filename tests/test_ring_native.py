"""The ring's C layer: the C test program under sanitizers, the cffi build logic, and a smoke
test of the compiled module."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NATIVE = ROOT / "native"
TEST_SOURCE = NATIVE / "test_ring.c"
C_TESTS = re.findall(r'\{"(\w+)", test_\w+\}', TEST_SOURCE.read_text())
THREADED = ["threads_spsc", "threads_mpsc", "blocking"]

SANITIZERS = {
    "asan-ubsan": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
    "tsan": ["-fsanitize=thread"],
}


def _compiler() -> str:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        # without a compiler the package itself cannot be built, so this only happens when the
        # tests run against a prebuilt wheel
        pytest.skip("no C compiler found (set CC) to build native/test_ring.c")
    return cc


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    """The C test program built once per sanitizer set (a failed build fails the tests)."""
    cc = _compiler()
    out = tmp_path_factory.mktemp("ring-native")
    built = {}
    for label, flags in SANITIZERS.items():
        exe = out / f"test_ring_{label}"
        cmd = [cc, "-std=c11", "-O1", "-g", "-fno-omit-frame-pointer", "-Wall", "-Wextra",
               "-Werror", *flags, f"-I{NATIVE}", str(TEST_SOURCE), "-o", str(exe), "-pthread", "-lrt"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"building the {label} test program failed:\n{res.stderr}"
        built[label] = exe
    return built


def _run(exe, *names, timeout=120):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:halt_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    env.setdefault("TSAN_OPTIONS", "halt_on_error=1")
    return subprocess.run([str(exe), *names], capture_output=True, text=True, timeout=timeout, env=env)


def test_c_test_names_are_all_collected(binaries):
    """The names parsed from test_ring.c are exactly the tests the program lists."""
    res = _run(binaries["asan-ubsan"], "--list")
    assert res.returncode == 0
    assert res.stdout.split() == C_TESTS
    assert len(C_TESTS) >= 15


@pytest.mark.parametrize("name", C_TESTS)
def test_c_under_address_and_undefined_sanitizers(binaries, name):
    """Each C test passes with no address or undefined-behaviour report."""
    res = _run(binaries["asan-ubsan"], name)
    assert res.returncode == 0, f"{name} failed (rc {res.returncode}):\n{res.stdout}\n{res.stderr}"
    assert f"ok {name}" in res.stdout
    assert "runtime error" not in res.stderr


@pytest.mark.parametrize("name", THREADED)
def test_c_threads_under_thread_sanitizer(binaries, name):
    """The multi-threaded C tests pass with no data race report."""
    res = _run(binaries["tsan"], name, timeout=300)
    assert res.returncode == 0, f"{name} failed (rc {res.returncode}):\n{res.stdout}\n{res.stderr}"
    assert "ThreadSanitizer" not in res.stderr


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_ring", NATIVE / "build_ring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cdef_turns_defines_into_placeholders():
    """Every valued #define becomes `#define NAME ...`; guards and includes are dropped."""
    build = _load_build_script()
    text = "#ifndef G\n#define G\n#include <x.h>\n#define A 1\n#define B (-2) /* c */\nint f(void);\n#endif\n"
    cdef = build.cdef_from_header(text.replace("G", "FASTROUTE_RING_H"))
    assert cdef.split("\n") == ["#define A ...", "#define B ...", "int f(void);"]


def test_cdef_refuses_unknown_preprocessor_lines():
    """A preprocessor line the conversion does not understand fails the build loudly."""
    build = _load_build_script()
    with pytest.raises(ValueError, match="#if defined"):
        build.cdef_from_header("#if defined(X)\nint f(void);\n")


def test_compiled_module_exposes_the_whole_header():
    """Every function and constant declared in ring.h is reachable on the compiled lib, and
    the constants have the values written in the header."""
    from fastroute._ring import lib

    header = (NATIVE / "ring.h").read_text()
    functions = re.findall(r"^\w[\w\s\*]*?\b(fr_ring_\w+)\(", header, re.M)
    assert len(functions) >= 20
    for name in functions:
        assert callable(getattr(lib, name)), name
    for name, value in re.findall(r"^#define (FR_\w+) \(?(-?\d+)(?:ULL)?\)?", header, re.M):
        assert getattr(lib, name) == int(value), name


def test_only_ring_module_imports_the_compiled_library():
    """fastroute.ring is the one module that imports the cffi lib."""
    offenders = []
    for base in ("fastroute", "kernels", "plugins"):
        for path in (ROOT / base).rglob("*.py"):
            if path == ROOT / "fastroute" / "ring.py":
                continue
            if re.search(r"\b_ring\b\s+import|import\s+fastroute\._ring|from\s+\._ring", path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_smoke_compiled_module():
    """The compiled module opens a ring, moves one message and frees it."""
    from fastroute._ring import ffi, lib

    out = ffi.new("fr_ring **")
    assert lib.fr_ring_open_anonymous(4096, lib.FR_RING_SPSC, out) == lib.FR_RING_OK
    h = out[0]
    assert lib.fr_ring_push_spsc(h, b"ping", 4, 0) == lib.FR_RING_OK
    buf, n = ffi.new("char[]", 16), ffi.new("uint64_t[2]")
    assert lib.fr_ring_pop(h, buf, 16, 0, n) == 4
    assert ffi.unpack(buf, 4) == b"ping"
    lib.fr_ring_free(h)
