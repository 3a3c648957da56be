"""The `fastroute` command: route message batches exactly as the brokers would (demo, route, info, bench)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def _cmd_demo(args) -> int:
    from ._demo import run_demo

    run_demo(messages=args.messages, bindings=args.bindings, partitions=args.partitions,
             batch_size=args.batch, seed=args.seed)
    return 0


def _cmd_route(args) -> int:
    from ._io import detect_format, read_messages, write_outputs
    from ._rules import build_router, load_rules

    rules = load_rules(args.rules)
    router = build_router(rules)
    fmt = detect_format(Path(args.input), args.format)
    t0 = time.perf_counter()
    batch, records = read_messages(args.input, fmt)
    t1 = time.perf_counter()
    routes = router.route(batch, backend=args.backend)
    t2 = time.perf_counter()
    written = write_outputs(args.out, fmt, routes, records, batch)
    t3 = time.perf_counter()
    summary = {
        "input": str(args.input), "messages": len(batch), "router": repr(router),
        "deliveries": int(routes.destinations.shape[0]),
        "unroutable": int(routes.unroutable().shape[0]),
        "per_destination": {str(k): v for k, v in routes.counts().items()},
        "files": written,
        "seconds": {"read": round(t1 - t0, 4), "route": round(t2 - t1, 4), "write": round(t3 - t2, 4)},
    }
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"routed {len(batch):,} messages: {summary['deliveries']:,} deliveries to "
          f"{sum(1 for v in summary['per_destination'].values() if v)} destinations, "
          f"{summary['unroutable']:,} unroutable; wrote {len(written)} files to {args.out}")
    return 0


def info() -> dict:
    """Versions and what this machine offers (backends, threading, CPUs, CUDA)."""
    import numba
    import numpy

    import fastroute
    from ._backend import gpu_status

    out = {
        "fastroute": fastroute.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
    }
    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        out["numba_threading_layer"] = numba.threading_layer()
    except Exception as exc:  # a missing layer is information, not a failure
        out["numba_threading_layer"] = f"unavailable ({exc})"
    try:
        from . import ring  # noqa: F401

        out["ring_extension"] = "built"
    except ImportError as exc:
        out["ring_extension"] = f"missing ({exc})"
    reason = gpu_status()
    out["cuda"] = "available" if reason is None else f"unavailable: {reason}"
    out.update(_gpu_versions())
    if reason is None:
        out.update(_gpu_device())
    return out


def _gpu_versions() -> dict:
    """numba's CUDA target (numba-cuda or the one built into numba) and CuPy, when installed."""
    out = {}
    try:
        import numba_cuda

        out["numba_cuda"] = getattr(numba_cuda, "__version__", "installed")
    except ImportError:
        try:
            import numba
            from numba import cuda  # noqa: F401

            out["numba_cuda"] = f"not installed (numba {numba.__version__}'s built-in CUDA target is used)"
        except Exception as exc:  # no CUDA target at all is information, not a failure
            out["numba_cuda"] = f"not installed ({exc})"
    try:
        import cupy

        out["cupy"] = cupy.__version__
    except ImportError:
        out["cupy"] = "not installed"
    except Exception as exc:  # CuPy built for another CUDA raises at import
        out["cupy"] = f"broken ({exc})"
    return out


def _gpu_device() -> dict:
    """Name, compute capability and driver of the current CUDA device (GPU usable)."""
    from numba import cuda

    out = {}
    try:
        dev = cuda.current_context().device
        name = getattr(dev, "name", "unknown")
        out["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        out["gpu_compute_capability"] = ".".join(map(str, dev.compute_capability))
    except Exception as exc:  # report, do not fail the whole command
        out["gpu"] = f"unknown ({exc})"
    try:
        from numba.cuda.cudadrv import driver

        out["cuda_driver"] = ".".join(map(str, driver.driver.get_version()))
    except Exception:
        try:
            import cupy

            v = cupy.cuda.runtime.driverGetVersion()
            out["cuda_driver"] = f"{v // 1000}.{v % 1000 // 10}"
        except Exception as exc:
            out["cuda_driver"] = f"unknown ({exc})"
    return out


def _cmd_info(args) -> int:
    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        width = max(map(len, data))
        for k, v in data.items():
            print(f"{k:<{width}}  {v}")
    return 0


def _cmd_bench(args) -> int:
    here = Path(__file__).resolve().parent.parent
    bench = here / "benchmarks"
    if not bench.is_dir():
        print("the benchmark suite lives in the source checkout (benchmarks/); run this command from "
              "an editable install of the repository", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "pytest", str(bench), "-q", "-p", "no:cacheprovider",
           "--benchmark-columns=min,median,ops", "--benchmark-sort=name"]
    if args.k:
        cmd += ["-k", args.k]
    return subprocess.call(cmd, cwd=str(here))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastroute", description=__doc__.split("\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="route a synthetic workload through the in-process ring (no broker needed)")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--bindings", type=int, default=2_000, help="AMQP topic bindings")
    p.add_argument("--partitions", type=int, default=12, help="Kafka partitions (murmur2)")
    p.add_argument("--batch", type=int, default=100_000, help="messages per batch")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("route", help="route a file of messages with a rules file, one output file per destination")
    p.add_argument("--rules", required=True, help="rules file (.toml or .json)")
    p.add_argument("--input", required=True, help="messages: .jsonl, .csv, .arrow or .parquet")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--format", help="input format when the suffix does not tell (jsonl, csv, arrow, parquet)")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])
    p.set_defaults(func=_cmd_route)

    p = sub.add_parser("info", help="version, backends, threading layer, CPUs, CUDA")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("bench", help="run the benchmark suite (fastroute and baselines side by side)")
    p.add_argument("-k", help="only benchmarks matching this pytest expression")
    p.set_defaults(func=_cmd_bench)

    args = parser.parse_args(argv)
    from ._errors import FastrouteError
    from ._rules import RulesError

    try:
        return args.func(args)
    except (FastrouteError, RulesError, ValueError, OSError) as exc:
        print(f"fastroute {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
