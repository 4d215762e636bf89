"""``ecgbench status``: how far a grid is, read from its results folder while it runs.

Records and checkpoints are published by atomic rename, so reading them mid-run sees whole files only.
A cell is ``done`` with an ok record, ``failed`` with a failed one, ``missing`` without; the remaining cost
(failed and missing cells, absent checkpoints) is estimated by the cost model, calibrated on the measured times.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from ecgbench.cost import CostModel, format_cost, measured_seconds
from ecgbench.engine.checkpoint import checksum_path
from ecgbench.results.store import load_records
from ecgbench.runner import checkpoint_file
from ecgbench.study import Profile, enumerate_cells, iter_upstream_needs


@dataclass(frozen=True)
class GridStatus:
    rows: list[tuple[str, str, int, int, int]]  # downstream, model, done, failed, missing
    checkpoints_present: int
    checkpoints_needed: int
    remaining: float
    unit: str
    problems: list[str]


def grid_status(results_dir: Path, profile: Profile) -> GridStatus:
    loaded = load_records(results_dir, profile.name)
    state = {r["key"]: r["status"] for r in loaded.records}
    cells = enumerate_cells(profile)
    needs = list(iter_upstream_needs(cells))
    costs = CostModel(profile, measured_seconds(loaded.records))
    counts: dict[tuple[str, str], list[int]] = {}
    remaining = 0.0
    for cell in cells:
        status = state.get(cell.key, "missing")
        tally = counts.setdefault((cell.downstream, cell.model), [0, 0, 0])
        tally[{"ok": 0, "failed": 1}.get(status, 2)] += 1
        if status != "ok":
            remaining += costs.cost(cell)
    present = [n for n in needs if checksum_path(checkpoint_file(results_dir, n)).exists()]
    remaining += sum(costs.cost(n) for n in needs if n not in present)
    rows = [(down, model, *tally) for (down, model), tally in counts.items()]
    return GridStatus(rows, len(present), len(needs), remaining, costs.unit(), loaded.problems)


def render_status(status: GridStatus, profile: Profile) -> str:
    done, failed, missing = (sum(r[i] for r in status.rows) for i in (2, 3, 4))
    total = done + failed + missing
    remaining = format_cost(status.remaining, status.unit) + (
        " at the measured speed" if status.unit == "s" else " (no measured times yet)")
    lines = [f"profile {profile.name}: {done}/{total} cells done, {failed} failed, {missing} missing; "
             f"checkpoints {status.checkpoints_present}/{status.checkpoints_needed}; remaining {remaining}",
             tabulate(status.rows, headers=["downstream", "model", "done", "failed", "missing"], tablefmt="github")]
    lines += [f"unreadable record: {problem}" for problem in status.problems]
    return "\n".join(lines)
