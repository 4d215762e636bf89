"""How long a profile's grid takes on G GPUs, from per-epoch times measured on one of them (``ecgbench capacity``).

``benchmarks/capacity-probe.toml`` runs two epochs of every model at the ``paper`` sizes. The steady epoch
(the last one: the first pays cuDNN autotuning and lazy initialisation) divided by the epoch's FLOPs gives
seconds per FLOP per model; the cost model (``ecgbench.cost``) prices every task of the target profile with
those rates. The wall time on G GPUs replays ``ecgbench submit --shards G``: one job per checkpoint and the
scratch shards start at once, the transfer shards when the last checkpoint is done; a free GPU takes the next
job in array order; the transfer shards hold the transferability score tasks too. The floor no number of GPUs
beats is the critical path: the longest pre-training plus its longest dependent cell or score task. It lives in
cluster, not perf, because it replays cluster's own schedule (``phase_tasks``, ``split_into_shards``,
``cell_shard_counts``); it writes its section of ``reports/performance.md`` through ``ecgbench.sections``.
"""
from __future__ import annotations

import argparse
import heapq
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from ecgbench.cluster.phases import phase_tasks, split_into_shards
from ecgbench.cluster.submit import cell_shard_counts
from ecgbench.cost import CostModel, format_cost, grid_tasks, training_work, work_flops
from ecgbench.results.store import load_records
from ecgbench.sections import CAPACITY_SECTION, replace_section
from ecgbench.study import Cell, Profile, enumerate_cells, enumerate_transferability, get_profile, pretrainings_of

PROBE_PROFILES = Path("benchmarks/capacity-probe.toml")


def last_epochs(records: list[dict]) -> list[tuple[Cell, float]]:
    """Each ok probe cell with the seconds of its last (steady) epoch."""
    return [(Cell.from_dict(r["cell"]), r["history"][-1]["seconds"])
            for r in records if r["status"] == "ok" and r["history"]]


def seconds_per_flop(records: list[dict], probe: Profile) -> dict[str, float]:
    """Per model: the median over its probe cells of last-epoch seconds / FLOPs of one epoch."""
    ratios: dict[str, list[float]] = {}
    for cell, seconds in last_epochs(records):
        epoch_flops = work_flops(cell.model, training_work(probe, cell)) / probe.train.epochs
        ratios.setdefault(cell.model, []).append(seconds / epoch_flops)
    return {model: statistics.median(values) for model, values in ratios.items()}


@dataclass(frozen=True)
class CapacityRow:
    gpus: int
    wall_s: float
    ideal_s: float


def _cost_model(profile: Profile, rates: dict[str, float]) -> CostModel:
    """The cost model of ``profile`` with the probe's rates; every model of the grid must have one."""
    missing = sorted(set(profile.models) - set(rates))
    if missing:
        raise ValueError(f"the probe measured no cell of {missing}")
    return CostModel(profile, rates=rates)


def critical_path(profile: Profile, seconds: dict[str, float]) -> float:
    """The longest pre-training plus its longest dependent cell or score task, or the longest scratch cell if
    longer."""
    tasks = [*enumerate_cells(profile), *enumerate_transferability(profile)]
    chains = [seconds[t.key] + (seconds[t.pretraining.key] if t.pretraining else 0.0) for t in tasks]
    return max(chains)


def _makespan(jobs: list[float], released_after_first: int, later: list[float], gpus: int) -> float:
    """List scheduling on ``gpus``: ``jobs`` in order; ``later`` may start once the first
    ``released_after_first`` jobs have all finished."""
    free = [0.0] * gpus
    heapq.heapify(free)
    first_done = 0.0
    for index, duration in enumerate(jobs):
        start = heapq.heappop(free)
        heapq.heappush(free, start + duration)
        if index < released_after_first:
            first_done = max(first_done, start + duration)
    end = max(free)
    for duration in later:
        start = max(heapq.heappop(free), first_done)
        heapq.heappush(free, start + duration)
        end = max(end, start + duration)
    return end


def capacity(profile: Profile, rates: dict[str, float], gpus: list[int]) -> tuple[list[CapacityRow], float, float]:
    """Wall time of ``ecgbench submit --shards G`` per G, the critical path, and the total GPU time."""
    model = _cost_model(profile, rates)
    seconds = {t.key: model.cost(t) for t in grid_tasks(profile)}
    cells, scores = enumerate_cells(profile), enumerate_transferability(profile)
    pre = phase_tasks("pretrain", cells, [], scores)
    scratch, transfer = phase_tasks("scratch", cells, []), phase_tasks("transfer", cells, [], scores)
    total = sum(seconds.values())
    floor = critical_path(profile, seconds)
    rows = []
    for g in gpus:
        n_scratch, n_transfer = cell_shard_counts(g, sum(seconds[t.key] for t in scratch),
                                                   sum(seconds[t.key] for t in transfer))
        pre_jobs = sorted((seconds[t.key] for t in pre), reverse=True)
        scratch_jobs = [sum(seconds[t.key] for t in s) for s in split_into_shards(scratch, n_scratch, model)]
        transfer_jobs = [sum(seconds[t.key] for t in s) for s in split_into_shards(transfer, n_transfer, model)]
        wall = _makespan(pre_jobs + scratch_jobs, len(pre_jobs), transfer_jobs, g)
        rows.append(CapacityRow(g, wall, max(total / g, floor)))
    return rows, floor, total


def render_section(records: list[dict], probe: Profile, target: Profile, gpus: list[int]) -> str:
    """The capacity plan as Markdown: per-model probe times, GPU-hours, critical path, wall per GPU count."""
    rates = seconds_per_flop(records, probe)
    rows, floor, total = capacity(target, rates, gpus)
    devices = ", ".join(sorted({r["environment"]["device_name"] for r in records}))
    date = max(r["created"] for r in records)[:10]
    epochs: dict[str, list[float]] = {}
    for cell, seconds in last_epochs(records):
        epochs.setdefault(cell.model, []).append(seconds)
    per_model = [(m, f"{statistics.median(epochs[m]):.2f}", f"{rates[m] * 1e15:.1f}") for m in target.models]
    n_cells = len(enumerate_cells(target))
    n_pre = len(list(pretrainings_of(enumerate_cells(target))))
    n_scores = len(enumerate_transferability(target))
    return "\n".join([
        f"## Capacity plan: the `{target.name}` grid on 1, 8 and 64 GPUs",
        "",
        f"Measured on {devices}, {date}: the capacity probe (`benchmarks/capacity-probe.toml`: the paper's data "
        "sizes, batch and learning rate, two epochs of every model, PTB-XL -> CPSC2018). The last epoch of each "
        "probe cell (the first pays cuDNN's kernel search) over the FLOPs of one epoch gives seconds per FLOP per "
        f"model; each of the {n_cells} cells, {n_pre} pre-trainings and {n_scores} transferability score tasks of "
        f"`{target.name}` costs its FLOPs times "
        "that (`ecgbench/cluster/capacity.py` with the cost model of `ecgbench/cost`). Regenerate on a GPU machine: "
        "`pytest benchmarks/test_grid.py "
        "--ecg-profiles benchmarks/capacity-probe.toml --ecg-profile probe --ecg-results DIR`, then "
        "`ecgbench capacity --probe DIR --update reports/performance.md`.",
        "",
        tabulate(per_model, headers=["model", "probe epoch (s, median of its cells)", "seconds per PFLOP"],
                 tablefmt="github"),
        "",
        f"Total: {total / 3600:.1f} GPU-hours. Critical path (the longest pre-training plus its longest dependent "
        f"cell or score task; no number of GPUs beats it): {format_cost(floor, 's')}. The wall column replays "
        "`ecgbench submit --shards G`: one job per checkpoint and the scratch shards start at once, the transfer "
        "shards when the pre-training array is done, a free GPU takes the next job.",
        "",
        tabulate([(r.gpus, format_cost(r.wall_s, "s"), format_cost(r.ideal_s, "s")) for r in rows],
                 headers=["GPUs", "wall, as ecgbench submit schedules it", "ideal: max(total / G, critical path)"],
                 tablefmt="github"),
    ])


def _capacity_command(args: argparse.Namespace) -> int:
    records = load_records(args.probe, "probe").records
    if not records:
        print(f"error: no probe records in {args.probe}", file=sys.stderr)
        return 1
    section = render_section(records, get_profile("probe", args.probe_profiles), get_profile(args.profile),
                             args.gpus)
    print(section)
    if args.update:
        old = args.update.read_text() if args.update.exists() else ""
        args.update.write_text(replace_section(old, CAPACITY_SECTION, section))
        print(f"wrote {args.update}")
    return 0


def add_capacity_commands(subparsers: argparse._SubParsersAction) -> None:
    """``ecgbench capacity``: the capacity plan of a profile from the capacity probe's records."""
    p = subparsers.add_parser("capacity", help="wall time of a profile's grid on G GPUs, from the capacity probe",
                              description=__doc__.split("\n")[0])
    p.add_argument("--probe", type=Path, required=True, help="results folder of the capacity probe")
    p.add_argument("--probe-profiles", type=Path, default=PROBE_PROFILES,
                   help=f"profiles file that defines the probe (default {PROBE_PROFILES})")
    p.add_argument("--profile", default="paper", help="the profile whose grid is planned")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--update", type=Path, help="write the plan into this report (its capacity section)")
    p.set_defaults(func=_capacity_command)
