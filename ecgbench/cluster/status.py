"""``ecgbench status``: how far a grid is, read from its results folder while it runs.

Records and checkpoints are published by atomic rename, so reading them mid-run sees whole files only.
A cell is ``done`` with an ok record, ``failed`` with a failed one, ``missing`` without; the remaining cost
(failed and missing cells, absent checkpoints) is estimated by the cost model, calibrated on the measured times.
The status also says which profiles the folder's records belong to: ``0/522 done`` on a folder of another
profile's records is a mistyped ``--profile`` or ``--results``, not a grid that has not started.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from ecgbench.cost import CostModel, format_cost, measured_seconds
from ecgbench.engine.checkpoint import checksum_path
from ecgbench.results.store import load_records
from ecgbench.runner import checkpoint_file
from ecgbench.study import Profile, enumerate_cells, pretrainings_of


@dataclass(frozen=True)
class GridStatus:
    rows: list[tuple[str, str, int, int, int]]  # downstream, model, done, failed, missing
    checkpoints_present: int
    checkpoints_needed: int
    remaining: float
    unit: str
    problems: list[str]
    profiles: dict[str, int]  # records in the folder per profile (of any profile, not only this one)

    def holds_other_profiles_only(self, profile: Profile) -> bool:
        return bool(self.profiles) and profile.name not in self.profiles


def grid_status(results_dir: Path, profile: Profile) -> GridStatus:
    everything = load_records(results_dir)
    profiles = dict(sorted(Counter(r["profile"] for r in everything.records).items()))
    records = [r for r in everything.records if r["profile"] == profile.name]
    state = {r["key"]: r["status"] for r in records}
    cells = enumerate_cells(profile)
    needs = list(pretrainings_of(cells))
    costs = CostModel(profile, measured_seconds(records))
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
    return GridStatus(rows, len(present), len(needs), remaining, costs.unit(), everything.problems, profiles)


def render_status(status: GridStatus, profile: Profile) -> str:
    done, failed, missing = (sum(r[i] for r in status.rows) for i in (2, 3, 4))
    total = done + failed + missing
    remaining = format_cost(status.remaining, status.unit) + (
        " at the measured speed" if status.unit == "s" else " (no measured times yet)")
    lines = [f"profile {profile.name}: {done}/{total} cells done, {failed} failed, {missing} missing; "
             f"checkpoints {status.checkpoints_present}/{status.checkpoints_needed}; remaining {remaining}",
             tabulate(status.rows, headers=["downstream", "model", "done", "failed", "missing"], tablefmt="github")]
    held = ", ".join(f"{name}: {count}" for name, count in status.profiles.items())
    lines.append(f"the folder holds records of profiles {held}" if held else "the folder holds no result records")
    if status.holds_other_profiles_only(profile):
        lines.append(f"error: none of them is of profile {profile.name}: choose one with --profile "
                     f"(e.g. --profile {next(iter(status.profiles))}) or another --results folder")
    lines += [f"unreadable record: {problem}" for problem in status.problems]
    return "\n".join(lines)
