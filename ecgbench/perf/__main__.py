"""``python -m ecgbench.perf --out reports/performance.md``: measure, then write the performance report."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import torch

from ecgbench.models import MODELS
from ecgbench.perf.machine import load_average, wait_until_quiet
from ecgbench.perf.report import render
from ecgbench.perf.sections import CAPACITY_SECTION, extract_section
from ecgbench.perf.suite import Plan, run_suite


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ecgbench.perf", description=__doc__)
    p.add_argument("--out", type=Path, required=True, help="Markdown file to write")
    p.add_argument("--models", nargs="+", default=list(MODELS.names()), choices=MODELS.names())
    p.add_argument("--batches", nargs="+", type=int, default=[64, 256])
    p.add_argument("--reference-batches", nargs="*", type=int, default=[64],
                   help="batches of the float64 (paper-style) train steps behind the speed-up column")
    p.add_argument("--epoch-sizes", nargs="+", type=int, default=[500, 2000],
                   help="records of the timed epochs (ours vs paper-style)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    p.add_argument("--cache", type=Path,
                   default=Path(os.environ.get("ECGBENCH_CACHE", Path.home() / ".cache" / "ecgbench")),
                   help="synthetic-data cache (default: $ECGBENCH_CACHE or ~/.cache/ecgbench)")
    p.add_argument("--quiet-load", type=float, default=0.6, help="wait until the 1-minute load is below this")
    p.add_argument("--max-wait", type=float, default=600, help="seconds to wait for a quiet machine (0: don't)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.add_argument("--no-cuda", action="store_true", help="measure the CPU only even when a GPU is present")
    p.add_argument("--no-cpu", action="store_true", help="measure the GPU only (a GPU machine's CPU is not ours)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models on CUDA")
    return p


def main(argv: list[str] | None = None) -> int:
    """Wait for a quiet machine (the numbers are only as good as the load allows), measure, write the report."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_cuda:
        devices.append(torch.device("cuda"))
    if not devices:
        raise SystemExit("nothing to measure: --no-cpu and no CUDA device")
    if args.max_wait > 0:
        print(f"load {load_average():.2f}; waiting up to {args.max_wait:.0f} s for < {args.quiet_load}", flush=True)
        wait_until_quiet(args.quiet_load, args.max_wait)
    plan = Plan(cache_dir=args.cache, models=tuple(args.models), batches=tuple(args.batches),
                reference_batches=tuple(args.reference_batches), epoch_sizes=tuple(args.epoch_sizes),
                memory=not args.no_memory, compile_model=args.compile)
    run = run_suite(plan, devices, load_threshold=args.quiet_load)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = render(run, shlex.join(["python", "-m", "ecgbench.perf", *(sys.argv[1:] if argv is None else argv)]))
    kept = extract_section(args.out.read_text(), CAPACITY_SECTION) if args.out.exists() else None
    args.out.write_text(text + ("\n" + kept + "\n" if kept else ""))
    print(f"wrote {args.out} ({run.minutes:.1f} min, load {run.load_start:.2f} -> {run.load_end:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

