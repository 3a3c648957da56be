"""GPU acceptance check: the GPU tests, then GPU and CPU timings side by side, in one table.

Run it from the repository root on a machine with a CUDA GPU (``benchmarks/gpu_check.sh`` does
that with the project's Python). Nothing is downloaded; every input is generated here, seeded.

1. ``fastroute info`` (GPU, driver, numba CUDA target, CuPy).
2. ``pytest -m gpu tests/cudasim``: the ``gpu``-marked tests, GPU against CPU at hundreds of
   thousands to millions of items (``--all-tests``: every test of ``tests/cudasim`` and
   ``tests/test_backend.py`` on the device, the small random cases included; that compiles
   every kernel and can outgrow the 5-minute budget).
3. The ceiling: a device-to-device copy and host-to-device copies (pageable and pinned).
4. Workloads, each on the CPU path, on the GPU with host-resident data (transfers included)
   and with device-resident data, checking that the answers are identical:
   murmur2 partitioning of 100M 16-byte keys; AMQP topic routing of 10M keys through 10,000
   bindings; ``encode_frames`` of 10M messages, then ``decode_frame`` of the frames it wrote
   (device-resident only). A GPU path that does not exist yet is reported "not available"
   with the reason.
5. The batch size where the GPU starts to win (host data, murmur2): a measured value for
   FASTROUTE_GPU_MIN_BATCH.

Times are the fastest of ``--repeat`` runs after one warm-up run (which compiles the kernels or
loads them from numba's cache). ``--smoke`` shrinks every size (for trying the script, even
under NUMBA_ENABLE_CUDASIM=1); ``--json FILE`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import fastroute as fr  # noqa: E402
from fastroute import _backend, _device  # noqa: E402

#: The full-size workloads (``--smoke`` divides them).
SIZES = {"murmur2_keys": 100_000_000, "topic_keys": 10_000_000, "topic_bindings": 10_000,
         "frames_messages": 10_000_000, "copy_bytes": 1 << 30}
#: The issue's targets on an NVIDIA H200.
TARGETS = {"murmur2_device_keys_s": 20e9, "topic_device_keys_s": 1e9, "frames_device_bytes_s": 200e9,
           "murmur2_host_of_h2d": 0.5, "topic_host_vs_cpu": 10.0}
#: Seconds after which the remaining timings are skipped, so the whole run stays under 5 minutes.
BUDGET_S = 270


class Clock:
    """Elapsed time since the start, and whether the budget still allows more work."""

    def __init__(self, budget: float):
        self.start = time.perf_counter()
        self.budget = budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> bool:
        return self.elapsed() < self.budget


def sync() -> None:
    from numba import cuda

    cuda.synchronize()


def timed(fn, repeat: int):
    """(best seconds, median seconds, last result) of ``repeat`` runs after one warm-up."""
    result = fn()
    sync()
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), result


def attempt(fn):
    """(result, None) or (None, "not available: reason") for a GPU path that may not exist yet."""
    try:
        return fn(), None
    except fr.BackendUnavailable as exc:
        return None, f"not available: {exc}"
    except TypeError as exc:  # e.g. backend= not accepted yet by a codec call
        return None, f"not available: {exc}"
    except Exception as exc:  # report it, keep going with the other workloads
        return None, f"failed: {type(exc).__name__}: {exc}"


# ------------------------------------------------------------------------------ steps

def print_info() -> dict:
    from fastroute._cli import info

    data = info()
    print("== fastroute info")
    for key in ("fastroute", "numba", "numba_cuda", "cupy", "cuda", "gpu", "gpu_compute_capability",
                "cuda_driver", "cpu_count", "numba_threads"):
        if key in data:
            print(f"  {key:<24}{data[key]}")
    return data


def run_tests(timeout: int, everything: bool) -> dict:
    """Run the ``gpu``-marked tests (or, with ``everything``, every test of tests/cudasim and
    tests/test_backend.py) on the device, in a pytest process of their own."""
    selection = ["tests/cudasim", "tests/test_backend.py"] if everything else ["-m", "gpu", "tests/cudasim"]
    print(f"== GPU tests: pytest {' '.join(selection)}", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection]
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  timed out after {timeout} s")
        return {"status": "timeout"}
    tail = [line for line in out.stdout.strip().splitlines() if line.strip()][-1:] or ["(no output)"]
    print(f"  exit {out.returncode} in {time.perf_counter() - t0:.0f} s: {tail[0]}")
    if out.returncode != 0:
        failed = [line for line in out.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        for line in failed[:20]:
            print(f"  {line}")
    return {"status": "passed" if out.returncode == 0 else "failed", "summary": tail[0]}


def bandwidth(copy_bytes: int, repeat: int) -> dict:
    """Device-to-device and host-to-device copy rates, in bytes per second copied."""
    from numba import cuda

    n = copy_bytes
    src = cuda.device_array(n, np.uint8)
    dst = cuda.device_array(n, np.uint8)
    d2d, _, _ = timed(lambda: dst.copy_to_device(src), repeat)
    pageable = np.ones(n, np.uint8)
    h2d, _, _ = timed(lambda: dst.copy_to_device(pageable), repeat)
    pinned = cuda.pinned_array(n, np.uint8)
    pinned[:] = 1
    h2d_pinned, _, _ = timed(lambda: dst.copy_to_device(pinned), repeat)
    d2h, _, _ = timed(lambda: dst.copy_to_host(pageable), repeat)
    rates = {"d2d": n / d2d, "h2d_pageable": n / h2d, "h2d_pinned": n / h2d_pinned, "d2h_pageable": n / d2h}
    print(f"== Copy bandwidth ({n / 2 ** 30:.2f} GiB)")
    print(f"  device-to-device        {rates['d2d'] / 1e9:10.1f} GB/s copied "
          f"({2 * rates['d2d'] / 1e9:.1f} GB/s of memory traffic)")
    print(f"  host-to-device pageable {rates['h2d_pageable'] / 1e9:10.1f} GB/s   (what a numpy batch gets)")
    print(f"  host-to-device pinned   {rates['h2d_pinned'] / 1e9:10.1f} GB/s")
    print(f"  device-to-host pageable {rates['d2h_pageable'] / 1e9:10.1f} GB/s")
    return rates


def fixed_width_batch(n: int, width: int, seed: int) -> fr.MessageBatch:
    rng = np.random.default_rng(seed)
    data = np.frombuffer(rng.bytes(n * width), np.uint8)
    return fr.MessageBatch.from_buffers(np.arange(n + 1, dtype=np.int64) * width, data)


def count(n: int) -> str:
    """100000000 -> "100M", 10000 -> "10k"."""
    for scale, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return f"{n:,}"


def row(rows, workload, path, seconds, items, unit, *, nbytes=None, cpu_s=None, same=None, note=""):
    entry = {"workload": workload, "path": path, "seconds": seconds, "items": items, "unit": unit,
             "rate": None if seconds is None else items / seconds,
             "bytes_per_s": None if seconds is None or nbytes is None else nbytes / seconds,
             "vs_cpu": None if seconds is None or cpu_s is None else cpu_s / seconds,
             "identical": same, "note": note}
    rows.append(entry)
    return entry


def murmur2_workload(n: int, repeat: int, rows: list) -> dict:
    name = f"murmur2 {count(n)} keys x 16 B"
    print(f"== murmur2 partitioning: {n:,} keys of 16 bytes", flush=True)
    batch = fixed_width_batch(n, 16, seed=7)
    key_bytes = batch.keys.data.nbytes + batch.keys.offsets.nbytes
    router = fr.Partitioner(1024, "murmur2")
    cpu_s, _, cpu = timed(lambda: router.route(batch, backend="cpu"), repeat)
    row(rows, name, "cpu", cpu_s, n, "keys")
    res, err = attempt(lambda: timed(lambda: router.route(batch, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu host-resident", None, n, "keys", note=err)
    else:
        s, _, out = res
        row(rows, name, "gpu host-resident", s, n, "keys", nbytes=key_bytes, cpu_s=cpu_s,
            same=bool(np.array_equal(out.destinations, cpu.destinations)))
    res, err = attempt(lambda: batch.to_device())
    if err:
        row(rows, name, "gpu device-resident", None, n, "keys", note=err)
        return {"key_bytes": key_bytes}
    on_device = res
    del batch
    res, err = attempt(lambda: timed(lambda: router.route(on_device, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu device-resident", None, n, "keys", note=err)
    else:
        s, _, out = res
        row(rows, name, "gpu device-resident", s, n, "keys", nbytes=key_bytes, cpu_s=cpu_s,
            same=bool(np.array_equal(out.destinations.copy_to_host(), cpu.destinations)))
    return {"key_bytes": key_bytes}


def topic_batch(n: int, distinct: int, seed: int) -> fr.MessageBatch:
    """n AMQP routing keys drawn from ``distinct`` generated ones (a realistic key vocabulary)."""
    from workloads import amqp_keys

    pool = fr.MessageBatch.from_keys(amqp_keys(distinct, seed=seed))
    pick = np.random.default_rng(seed).integers(0, distinct, n)
    return pool.take(pick)


def topic_workload(n: int, n_bindings: int, repeat: int, rows: list) -> None:
    from workloads import amqp_bindings

    name = f"topic {count(n)} keys x {count(n_bindings)} bindings"
    print(f"== AMQP topic routing: {n:,} keys through {n_bindings:,} bindings", flush=True)
    router = fr.TopicRouter(amqp_bindings(n_bindings), dialect="amqp")
    batch = topic_batch(n, min(n, 1_000_000), seed=2)
    cpu_s, _, cpu = timed(lambda: router.route(batch, backend="cpu"), max(1, repeat - 1))
    row(rows, name, "cpu", cpu_s, n, "keys", note=f"{cpu.destinations.shape[0] / n:.1f} destinations per key")
    res, err = attempt(lambda: timed(lambda: router.route(batch, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu host-resident", None, n, "keys", note=err)
    else:
        s, _, out = res
        row(rows, name, "gpu host-resident", s, n, "keys", cpu_s=cpu_s, same=out == cpu)
    res, err = attempt(lambda: batch.to_device())
    if err:
        row(rows, name, "gpu device-resident", None, n, "keys", note=err)
        return
    on_device = res
    res, err = attempt(lambda: timed(lambda: router.route(on_device, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu device-resident", None, n, "keys", note=err)
    else:
        s, _, out = res
        row(rows, name, "gpu device-resident", s, n, "keys", cpu_s=cpu_s, same=out.to_host() == cpu)


def frames_bytes(frames) -> int:
    """Total bytes of encode_frames' result (a dict of frames, host or device arrays)."""
    if isinstance(frames, dict):
        return int(sum(getattr(f, "nbytes", None) or len(f) for f in frames.values()))
    return int(getattr(frames, "nbytes", 0))


def frames_equal(a: dict, b: dict) -> bool:
    if not (isinstance(a, dict) and isinstance(b, dict)) or list(a) != list(b):
        return False
    return all(np.array_equal(_device.to_host_array(a[k]), _device.to_host_array(b[k])) for k in a)


def frames_workload(n: int, repeat: int, rows: list, decode_frames: int = 64) -> None:
    from fastroute import codec

    name = f"encode_frames {count(n)} msgs"
    print(f"== encode_frames: {n:,} messages (16-byte keys, 100-byte values, 64 destinations)", flush=True)
    rng = np.random.default_rng(9)
    keys = fixed_width_batch(n, 16, seed=9).keys
    values = np.frombuffer(rng.bytes(n * 100), np.uint8)
    batch = fr.MessageBatch(keys, fr.BinaryColumn(np.arange(n + 1, dtype=np.int64) * 100, values))
    routes = fr.Partitioner(64).route(batch, backend="cpu")
    cpu_s, _, cpu = timed(lambda: codec.encode_frames(batch, routes), max(1, repeat - 1))
    out_bytes = frames_bytes(cpu)
    row(rows, name, "cpu", cpu_s, n, "msgs", nbytes=out_bytes)
    res, err = attempt(lambda: timed(lambda: codec.encode_frames(batch, routes, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu host-resident", None, n, "msgs", note=err)
    else:
        s, _, out = res
        row(rows, name, "gpu host-resident", s, n, "msgs", nbytes=out_bytes, cpu_s=cpu_s, same=frames_equal(out, cpu))
    res, err = attempt(lambda: (batch.to_device(), routes.to_device()))
    if err:
        row(rows, name, "gpu device-resident", None, n, "msgs", note=err)
        return
    d_batch, d_routes = res
    res, err = attempt(lambda: timed(lambda: codec.encode_frames(d_batch, d_routes, backend="gpu"), repeat))
    if err:
        row(rows, name, "gpu device-resident", None, n, "msgs", note=err)
        return
    s, _, out = res
    row(rows, name, "gpu device-resident", s, n, "msgs", nbytes=out_bytes, cpu_s=cpu_s,
        same=frames_equal(out, cpu))
    first = list(cpu)[:decode_frames]
    decode_workload({k: cpu[k] for k in first}, {k: out[k] for k in first}, repeat, rows)


def decode_workload(host_frames: dict, device_frames: dict, repeat: int, rows: list) -> None:
    """decode_frame of frames that encode_frames wrote, CRC checked: on the CPU (host frames)
    and on the GPU (the same frames, device-resident), the batches compared."""
    from fastroute import codec

    name = f"decode_frame {len(host_frames)} frames"
    nbytes = frames_bytes(host_frames)
    n = sum(int(f[24:32].view("<u8")[0]) for f in host_frames.values())  # each header's message count
    print(f"== decode_frame: {len(host_frames)} frames of {n:,} messages, CRC-32C checked", flush=True)
    cpu_s, _, cpu = timed(lambda: [codec.decode_frame(f) for f in host_frames.values()], max(1, repeat - 1))
    row(rows, name, "cpu", cpu_s, n, "msgs", nbytes=nbytes)
    res, err = attempt(lambda: timed(lambda: [codec.decode_frame(f) for f in device_frames.values()], repeat))
    if err:
        row(rows, name, "gpu device-resident", None, n, "msgs", note=err)
        return
    s, _, out = res
    same = len(out) == len(cpu) and all(b.device == "gpu" and b.equals(a) for a, b in zip(cpu, out))
    row(rows, name, "gpu device-resident", s, n, "msgs", nbytes=nbytes, cpu_s=cpu_s, same=same)


def crossover(repeat: int, top: int) -> dict:
    """Smallest host batch (murmur2, 16-byte keys) where the GPU path beats the CPU path."""
    print("== GPU/CPU crossover for backend='auto' (murmur2, host data, transfers included)", flush=True)
    router = fr.Partitioner(1024, "murmur2")
    sizes, found = [], None
    n = 1024
    while n <= top:
        batch = fixed_width_batch(n, 16, seed=n)
        cpu_s, _, _ = timed(lambda: router.route(batch, backend="cpu"), repeat)
        gpu_s, _, _ = timed(lambda: router.route(batch, backend="gpu"), repeat)
        sizes.append({"n": n, "cpu_s": cpu_s, "gpu_s": gpu_s})
        print(f"  {n:>12,} keys   cpu {cpu_s * 1e3:9.3f} ms   gpu {gpu_s * 1e3:9.3f} ms   "
              f"gpu/cpu speed {cpu_s / gpu_s:6.2f}x")
        if found is None and gpu_s < cpu_s:
            found = n
        n *= 4
    print(f"  measured FASTROUTE_GPU_MIN_BATCH: {found if found else 'GPU never faster up to ' + format(top, ',')}"
          f" (current default {_backend.GPU_MIN_BATCH:,})")
    return {"sizes": sizes, "suggested_min_batch": found}


# ------------------------------------------------------------------------------ report

def fmt_rate(entry) -> str:
    if entry["rate"] is None:
        return ""
    rate = entry["rate"]
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.2f}{suffix} {entry['unit']}/s"
    return f"{rate:.0f} {entry['unit']}/s"


def print_table(rows: list, rates: dict) -> None:
    print("\n== Results (best of the timed runs; ratios against the CPU path on this machine)")
    head = f"{'workload':<34}{'path':<22}{'time ms':>10}{'throughput':>18}{'GB/s':>9}{'vs CPU':>9}  identical / note"
    print(head)
    print("-" * len(head))
    for r in rows:
        t = "" if r["seconds"] is None else f"{r['seconds'] * 1e3:.2f}"
        gbs = "" if r["bytes_per_s"] is None else f"{r['bytes_per_s'] / 1e9:.1f}"
        ratio = "" if r["vs_cpu"] is None else f"{r['vs_cpu']:.1f}x"
        same = "" if r["identical"] is None else ("yes" if r["identical"] else "NO")
        note = "; ".join(x for x in (same, r["note"]) if x)
        print(f"{r['workload']:<34}{r['path']:<22}{t:>10}{fmt_rate(r):>18}{gbs:>9}{ratio:>9}  {note}")
    if rates:
        print(f"{'ceiling: device-to-device copy':<56}{'':>10}{rates['d2d'] / 1e9:>9.1f}")
        print(f"{'ceiling: host-to-device copy (pageable)':<56}{'':>10}{rates['h2d_pageable'] / 1e9:>9.1f}")
        print(f"{'ceiling: host-to-device copy (pinned)':<56}{'':>10}{rates['h2d_pinned'] / 1e9:>9.1f}")


def check_targets(rows: list, rates: dict) -> dict:
    def get(prefix, path):
        return next((r for r in rows if r["workload"].startswith(prefix) and r["path"] == path), None)

    out = {}
    m_dev, m_host = get("murmur2", "gpu device-resident"), get("murmur2", "gpu host-resident")
    t_dev, t_host = get("topic", "gpu device-resident"), get("topic", "gpu host-resident")
    f_dev = get("encode_frames", "gpu device-resident")
    checks = [
        ("murmur2 device-resident >= 20G keys/s", m_dev and m_dev["rate"], TARGETS["murmur2_device_keys_s"]),
        ("topic device-resident >= 1G keys/s", t_dev and t_dev["rate"], TARGETS["topic_device_keys_s"]),
        ("encode_frames device-resident >= 200 GB/s", f_dev and f_dev["bytes_per_s"], TARGETS["frames_device_bytes_s"]),
        ("murmur2 host-resident >= 50% of H2D", m_host and rates and m_host["bytes_per_s"] and
         m_host["bytes_per_s"] / rates["h2d_pageable"], TARGETS["murmur2_host_of_h2d"]),
        ("topic host-resident >= 10x CPU", t_host and t_host["vs_cpu"], TARGETS["topic_host_vs_cpu"]),
    ]
    print("\n== Targets (NVIDIA H200)")
    for label, value, target in checks:
        if not value:
            verdict, shown = "not measured", ""
        else:
            verdict, shown = ("met" if value >= target else "MISSED"), f"{value:,.3g}"
        print(f"  {label:<46}{shown:>14}  {verdict}")
        out[label] = {"value": value or None, "target": target, "verdict": verdict}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (tries the script; allows the simulator)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the GPU tests first")
    parser.add_argument("--all-tests", action="store_true",
                        help="run every device test (tests/cudasim, minutes of compiling), not only the gpu-marked ones")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (after a warm-up)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    clock = Clock(BUDGET_S)
    scale = 100_000 if args.smoke else 1
    sizes = {k: max(64, v // scale) for k, v in SIZES.items()}
    sizes["topic_bindings"] = max(50, SIZES["topic_bindings"] // (200 if args.smoke else 1))

    info = print_info()
    reason = _backend.gpu_status()
    if reason is not None:
        print(f"\nNo usable GPU: {reason}. Nothing to time.")
        return 2
    import numba

    if numba.config.ENABLE_CUDASIM and not args.smoke:
        print("\nNUMBA_ENABLE_CUDASIM is set: the simulator cannot be timed (use --smoke to try the script).")
        return 2

    if numba.config.ENABLE_CUDASIM:
        import warnings

        # the simulator runs the hashes on numpy scalars, which warn where hardware wraps
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        print("\nRunning under the CUDA simulator: this only tries the script; its times mean nothing.")
    report = {"info": info, "sizes": sizes}
    if not args.skip_tests:
        report["tests"] = run_tests(timeout=150, everything=args.all_tests)
    rows: list = []
    rates = bandwidth(sizes["copy_bytes"], args.repeat) if clock.left() else {}
    report["bandwidth"] = rates
    for step in (lambda: murmur2_workload(sizes["murmur2_keys"], args.repeat, rows),
                 lambda: topic_workload(sizes["topic_keys"], sizes["topic_bindings"], args.repeat, rows),
                 lambda: frames_workload(sizes["frames_messages"], args.repeat, rows,
                                         decode_frames=4 if args.smoke else 64)):
        if clock.left():
            step()
        else:
            print("  skipped: the time budget is spent")
    if clock.left():
        report["crossover"] = crossover(args.repeat, top=(1 << 22) if not args.smoke else 4096)
    print_table(rows, rates)
    report["rows"] = rows
    report["targets"] = check_targets(rows, rates)
    report["elapsed_s"] = clock.elapsed()
    print(f"\nTotal {clock.elapsed():.0f} s.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    bad = [r for r in rows if r["identical"] is False]
    return 1 if bad or report.get("tests", {}).get("status") == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
