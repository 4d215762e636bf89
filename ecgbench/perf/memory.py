"""Peak resident memory of the heaviest smoke cell of each model, each in a fresh process.

Why a fresh process: a peak only ever grows, so one process cannot tell one model's peak from the previous
one's. Why ``VmHWM`` and not ``ru_maxrss``: a child started by fork/vfork + exec inherits its parent's
``ru_maxrss`` (Linux keeps it across exec), so a child of a big parent reports the parent's peak.
The fine-tune cell at fraction 1.0 is a model's heaviest smoke cell: it pre-trains the upstream checkpoint,
fine-tunes, validates and tests in one process, as a pytest-xdist worker would.
``python -m ecgbench.perf.memory MODEL CACHE_DIR RESULTS_DIR`` prints the peak in MiB.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

SMOKE_CELL = {"downstream": "ptb", "upstream": "ptbxl", "fraction": 1.0, "regime": "finetune", "seed": 0}


def smoke_cell_peak_mb(model: str, cache_dir: Path, results_dir: Path, threads: int) -> float:
    """Peak RSS (MiB) of a fresh process running ``model``'s heaviest smoke cell."""
    out = subprocess.run([sys.executable, "-m", "ecgbench.perf.memory", model, str(cache_dir), str(results_dir),
                          str(threads)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _vm_hwm_mb() -> float:
    """Peak RSS of this process's current address space (reset at exec), from /proc/self/status."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _run_cell(model: str, cache_dir: Path, results_dir: Path, threads: int) -> float:
    import torch

    from ecgbench.runner import RunOptions, CellRunner
    from ecgbench.study import Cell, get_profile

    torch.set_num_threads(threads)
    profile = dataclasses.replace(get_profile("smoke"), models=(model,))
    record = CellRunner(profile, RunOptions(results_dir=results_dir, cache_dir=cache_dir, device="cpu", rerun="all")
                   ).run(Cell(model=model, **SMOKE_CELL))
    if record["status"] != "ok":
        raise RuntimeError(record["error"])
    return _vm_hwm_mb()


if __name__ == "__main__":
    name, cache, results, n_threads = sys.argv[1:5]
    print(round(_run_cell(name, Path(cache), Path(results), int(n_threads)), 1))
