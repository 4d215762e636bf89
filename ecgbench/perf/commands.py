"""``ecgbench perf`` (the performance report from the throughput benchmarks) and ``ecgbench memory MODEL``."""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_JSON = Path("reports/throughput.json")


def _perf(args: argparse.Namespace) -> int:
    from ecgbench.perf.machine import load_average, wait_until_quiet
    from ecgbench.perf.readings import load_run
    from ecgbench.perf.report import render
    from ecgbench.sections import CAPACITY_SECTION, extract_section
    from ecgbench.study import get_profile

    grid_profile = get_profile(args.grid_profile)  # before measuring: a broken profile fails now, not after an hour
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    if args.measure:
        if not args.benchmarks.is_dir():
            print(f"error: no throughput benchmarks at {args.benchmarks} (run from a checkout, or pass --benchmarks)",
                  file=sys.stderr)
            return 2
        if args.max_wait > 0:
            print(f"load {load_average():.2f}; waiting up to {args.max_wait:.0f} s for < {args.quiet_load}", flush=True)
            wait_until_quiet(args.quiet_load, args.max_wait)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pytest", str(args.benchmarks), "--benchmark-json", str(args.json),
                   "-p", "no:cacheprovider", *pytest_args]
        print(shlex.join(command), flush=True)
        # A fresh pytest, not an xdist worker (pytest-benchmark saves nothing in one, and this may be called from one).
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
        code = subprocess.run(command, env=env).returncode
        if code != 0:
            print(f"error: the throughput benchmarks exited with {code}; {args.out} left as it was", file=sys.stderr)
            return 1
    run = load_run(args.json, grid_profile)
    regenerate = shlex.join(["ecgbench", "perf", "--measure", "--json", str(args.json), "--out", str(args.out),
                             *(["--", *pytest_args] if pytest_args else [])])
    kept = extract_section(args.out.read_text(), CAPACITY_SECTION) if args.out.exists() else None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(run, regenerate) + ("\n" + kept + "\n" if kept else ""))
    print(f"wrote {args.out} from {args.json}")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from ecgbench.data.prepare import default_cache_dir
    from ecgbench.perf.memory import format_peak, run_smoke_cell

    cache = args.cache or default_cache_dir()
    if args.results is not None:
        print(format_peak(args.model, run_smoke_cell(args.model, cache, args.results, args.threads)))
        return 0
    with tempfile.TemporaryDirectory() as results:
        print(format_peak(args.model, run_smoke_cell(args.model, cache, Path(results), args.threads)))
    return 0


def add_perf_commands(sub: argparse._SubParsersAction) -> None:
    from ecgbench.models import MODELS
    from ecgbench.perf.report import BENCHMARKS

    p = sub.add_parser(
        "perf", help="render reports/performance.md from a throughput benchmark run (--measure: run it first)",
        description="Renders the performance report from a pytest-benchmark JSON file of the throughput "
                    f"benchmarks ({BENCHMARKS}/); with --measure it first waits for a quiet machine and runs them "
                    f"(pytest {BENCHMARKS} --benchmark-json JSON). Example: ecgbench perf --measure "
                    "--out reports/performance.md -- -k 'resnet1d18 and not cuda'")
    p.add_argument("--out", type=Path, required=True, help="Markdown file to write (its capacity section is kept)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="pytest-benchmark JSON file (default: %(default)s)")
    p.add_argument("--measure", action="store_true", help="run the throughput benchmarks into --json first")
    p.add_argument("--benchmarks", type=Path, default=Path(BENCHMARKS), help="their folder (default: %(default)s)")
    p.add_argument("--grid-profile", default="paper", help="the profile whose grid time is extrapolated")
    p.add_argument("--quiet-load", type=float, default=0.6, help="with --measure: wait until the 1-minute load is "
                                                                 "below this")
    p.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine (0: don't)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then pytest options for the benchmarks")
    p.set_defaults(func=_perf)
    m = sub.add_parser("memory", help="peak RSS of a model's heaviest smoke cell, run in this process",
                       description="Runs MODEL's heaviest smoke cell (pre-train on ptbxl, fine-tune on ptb, fraction "
                                   "1.0) in this fresh process and prints its peak RSS, as a pytest-xdist worker "
                                   "would reach it.")
    m.add_argument("model", choices=MODELS.names(), help="the registered model to measure")
    m.add_argument("--cache", type=Path, default=None,
                   help="synthetic-data cache (default: $ECGBENCH_CACHE or ~/.cache/ecgbench)")
    m.add_argument("--results", type=Path, default=None, help="folder for the cell's record (default: a temporary one)")
    m.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    m.set_defaults(func=_memory)
