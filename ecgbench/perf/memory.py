"""Peak resident memory of the heaviest smoke cell of a model (``ecgbench memory MODEL``), each in a fresh process.

Why a fresh process: a peak only ever grows, so one process cannot tell one model's peak from the previous
one's; ``ecgbench memory`` measures the process it runs in, and ``smoke_cell_peak_mb`` starts one per model.
Why ``VmHWM`` and not ``ru_maxrss``: a child started by fork/vfork + exec inherits its parent's
``ru_maxrss`` (Linux keeps it across exec), so a child of a big parent reports the parent's peak.
The fine-tune cell at fraction 1.0 is a model's heaviest smoke cell: it pre-trains the upstream checkpoint,
fine-tunes, validates and tests in one process, as a pytest-xdist worker would.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

SMOKE_CELL = {"downstream": "ptb", "upstream": "ptbxl", "fraction": 1.0, "regime": "finetune", "seed": 0}
_PEAK = re.compile(r"peak RSS ([0-9.]+) MiB")


def format_peak(model: str, mb: float) -> str:
    """The line ``ecgbench memory`` prints, and ``smoke_cell_peak_mb`` reads back."""
    return f"{model}: heaviest smoke cell, peak RSS {mb:.1f} MiB"


def smoke_cell_peak_mb(model: str, cache_dir: Path, results_dir: Path, threads: int) -> float:
    """Peak RSS (MiB) of a fresh ``ecgbench memory`` process running ``model``'s heaviest smoke cell."""
    command = [sys.executable, "-m", "ecgbench", "memory", model, "--cache", str(cache_dir),
               "--results", str(results_dir), "--threads", str(threads)]
    out = subprocess.run(command, capture_output=True, text=True)
    match = _PEAK.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"{' '.join(command)} exited {out.returncode}: {(out.stderr or out.stdout).strip()[-2000:]}")
    return float(match[1])


def vm_hwm_mb() -> float:
    """Peak RSS of this process's current address space (reset at exec), from /proc/self/status."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_smoke_cell(model: str, cache_dir: Path, results_dir: Path, threads: int) -> float:
    """Run ``model``'s heaviest smoke cell in this process; this process's peak RSS (MiB) afterwards."""
    import torch

    from ecgbench.runner import CellRunner, RunOptions
    from ecgbench.study import Cell, get_profile

    torch.set_num_threads(threads)
    profile = dataclasses.replace(get_profile("smoke"), models=(model,))
    record = CellRunner(profile, RunOptions(results_dir=results_dir, cache_dir=cache_dir, device="cpu", rerun="all")
                   ).run(Cell(model=model, **SMOKE_CELL))
    if record["status"] != "ok":
        raise RuntimeError(f"{model}'s smoke cell failed: {record['error']}")
    return vm_hwm_mb()
