"""``ecgbench submit``: a selection of the grid as job arrays, pre-training first, through submitit.

Each job runs ``pytest`` on one shard of one phase; the shards are cut again inside the job from the same
selection and the same measured-cost snapshot, so the job command names no cells. Slurm gets three arrays:
``pretrain`` (one task per checkpoint), ``scratch`` (no dependency) and ``transfer`` (``afterok`` on the
pre-training array). The local executor has no dependencies: it waits for the pre-training, then runs the
cells, and returns when all jobs ended. A resubmitted shard skips its stored cells and existing checkpoints.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable

from ecgbench.cluster.phases import phase_tasks, split_into_shards
from ecgbench.cluster.selection import GRID_FILE, Selection
from ecgbench.cost import CostModel, Task, format_cost

EXECUTORS = ("slurm", "local")
SUCCESS_CODES = (0, 1, 5)  # all passed; some cells failed (each recorded as failed); nothing left to run


@dataclass(frozen=True)
class ClusterSettings:
    """Per-job resources; a TOML file (same keys) and command-line options fill it, options winning."""

    partition: str | None = None
    account: str | None = None
    gpus_per_task: int = 0
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time_min: int = 720
    array_parallelism: int | None = None
    sbatch: dict[str, str] = field(default_factory=dict)  # any other sbatch flag: {"qos": "high"}

    def __post_init__(self) -> None:
        """Resources are checked before anything is submitted: a job of -1 GPUs or 0 minutes fails in the queue."""
        rules = {"gpus_per_task": (0, False), "cpus_per_task": (1, False), "mem_gb": (0, True), "time_min": (1, False),
                 "array_parallelism": (1, False)}  # name: (bound, exclusive)
        bad = [f"{name} = {value!r} (must be a number {'>' if exclusive else '>='} {bound})"
               for name, (bound, exclusive) in rules.items() if (value := getattr(self, name)) is not None
               and (isinstance(value, bool) or not isinstance(value, (int, float))
                    or (value <= bound if exclusive else value < bound))]
        if bad:
            raise ValueError("cluster settings: " + "; ".join(bad))

    @classmethod
    def from_toml(cls, path: Path) -> "ClusterSettings":
        try:
            table = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"{path}: cannot read cluster settings ({e})") from None
        unknown = set(table) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {[f.name for f in fields(cls)]}")
        return cls(**table)

    def with_overrides(self, **overrides: Any) -> "ClusterSettings":
        given = {key: value for key, value in overrides.items() if value is not None}
        if "sbatch" in given:
            given["sbatch"] = {**self.sbatch, **given["sbatch"]}
        return ClusterSettings(**{**self.__dict__, **given})

    def executor_parameters(self) -> dict[str, Any]:
        """``AutoExecutor.update_parameters`` keywords (the ``slurm_`` ones are ignored by the local executor)."""
        params: dict[str, Any] = {"timeout_min": self.time_min, "gpus_per_node": self.gpus_per_task,
                                  "tasks_per_node": 1, "nodes": 1, "cpus_per_task": self.cpus_per_task,
                                  "mem_gb": self.mem_gb, "slurm_partition": self.partition,
                                  "slurm_account": self.account, "slurm_array_parallelism": self.array_parallelism,
                                  "slurm_additional_parameters": dict(self.sbatch) or None}
        return {key: value for key, value in params.items() if value is not None}


class ShardJob(Checkpointable):
    """One shard as a job: ``python -m pytest`` in a child process. On pre-emption or time-out submitit
    requeues it (``Checkpointable``), and the requeued run skips what was stored."""

    def __init__(self, argv: list[str], workdir: str, threads: int | None) -> None:
        self.argv, self.workdir, self.threads = argv, workdir, threads

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pytest", *self.argv]

    def __call__(self) -> int:
        env = dict(os.environ)
        threads = self.threads or os.environ.get("SLURM_CPUS_PER_TASK")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        code = subprocess.run(self.command(), cwd=self.workdir, env=env).returncode
        if code not in SUCCESS_CODES:
            raise RuntimeError(f"pytest exited with code {code}: {shlex.join(self.command())}")
        return code


@dataclass(frozen=True)
class PhasePlan:
    """The shards of one phase: tasks and estimated cost of each, and the phase it waits for."""

    phase: str
    shards: list[list[Task]]
    costs: list[float]
    after: str | None = None


@dataclass(frozen=True)
class Plan:
    selection: Selection
    phases: list[PhasePlan]
    unit: str
    costs_file: Path
    grid_file: Path = GRID_FILE

    @property
    def results_dir(self) -> Path:
        return self.selection.options.results_dir

    def argv(self, phase: PhasePlan, index: int, workers: int) -> list[str]:
        """The pytest arguments of shard ``index`` (1-based) of ``phase``: everything absolute."""
        argv = [str(self.grid_file), *self.selection.args, "--ecg-results", str(self.results_dir),
                "--ecg-phase", phase.phase, "--ecg-shard", f"{index}/{len(phase.shards)}",
                "--ecg-costs", str(self.costs_file), "-p", "no:cacheprovider", "-q", "-rf"]
        return argv + (["-n", str(workers)] if workers > 1 else [])


def cell_shard_counts(shards: int, scratch_cost: float, transfer_cost: float) -> tuple[int, int]:
    """Share ``shards`` between the scratch and transfer phases in proportion to their cost."""
    if scratch_cost <= 0 or transfer_cost <= 0:
        return (shards, 0) if scratch_cost > 0 else (0, shards if transfer_cost > 0 else 0)
    if shards < 2:
        return 1, 1
    scratch = min(shards - 1, max(1, round(shards * scratch_cost / (scratch_cost + transfer_cost))))
    return scratch, shards - scratch


def plan_submission(selection: Selection, shards: int, measured: dict[str, float], costs_file: Path,
                    grid_file: Path = GRID_FILE) -> Plan:
    """Pre-training: one job per checkpoint. Cells: ``shards`` jobs shared by the scratch and transfer phases."""
    if shards < 1:
        raise ValueError(f"--shards must be at least 1, got {shards}")
    model = CostModel(selection.profile, measured)
    tasks = {phase: phase_tasks(phase, selection.cells, selection.pretrainings, selection.scores)
             for phase in ("pretrain", "scratch", "transfer")}
    totals = {phase: sum(model.cost(t) for t in ts) for phase, ts in tasks.items()}
    n_scratch, n_transfer = cell_shard_counts(shards, totals["scratch"], totals["transfer"])
    counts = {"pretrain": len(tasks["pretrain"]), "scratch": n_scratch, "transfer": n_transfer}
    phases = []
    for phase, count in counts.items():
        count = min(count, len(tasks[phase]))  # never an empty job: more shards than tasks gives one task a job
        if count == 0:
            continue
        cut = split_into_shards(tasks[phase], count, model)
        after = "pretrain" if phase == "transfer" and counts["pretrain"] else None
        phases.append(PhasePlan(phase, cut, [sum(model.cost(t) for t in shard) for shard in cut], after))
    return Plan(selection, phases, model.unit(), costs_file, grid_file)


def render_plan(plan: Plan, executor: str, settings: ClusterSettings) -> str:
    """What ``--dry-run`` prints: per phase its array, dependency, shards with task counts and costs, commands."""
    sel = plan.selection
    pretrainings = sum(len(p.shards) for p in plan.phases if p.phase == "pretrain")
    lines = [f"profile {sel.profile.name}: {len(sel.cells)} cells, {len(sel.scores)} transferability score tasks, "
             f"{pretrainings} pre-trainings; "
             f"results -> {plan.results_dir}",
             f"executor {executor}: {settings.executor_parameters()}",
             f"estimated cost unit: {'measured seconds' if plan.unit == 's' else 'FLOP (no measured times yet)'}"]
    workers = max(1, settings.gpus_per_task)
    for phase in plan.phases:
        total = sum(phase.costs)
        wait = f", starts after the {phase.after} array (afterok)" if phase.after else ", starts at once"
        lines.append(f"\n[{phase.phase}] array of {len(phase.shards)} jobs{wait}; "
                     f"total {format_cost(total, plan.unit)}")
        shown = list(enumerate(zip(phase.shards, phase.costs), start=1))
        if all(len(shard) == 1 for shard in phase.shards) and len(shown) > 4:  # one job per checkpoint
            shown = shown[:3]
        for index, (shard, cost) in shown:
            lines.append(f"  {index}/{len(phase.shards)}: {len(shard)} tasks, {format_cost(cost, plan.unit)}"
                         f"  (first: {shard[0].key})")
        if len(shown) < len(phase.shards):
            lines.append(f"  ... one job per checkpoint, down to {format_cost(min(phase.costs), plan.unit)}")
        lines.append("  command: " + shlex.join(ShardJob(plan.argv(phase, 1, workers), os.getcwd(), None).command())
                     .replace(f"--ecg-shard 1/{len(phase.shards)}", f"--ecg-shard $K/{len(phase.shards)}"))
    return "\n".join(lines)


@dataclass(frozen=True)
class SubmittedPhase:
    phase: str
    jobs: list[Any]  # submitit jobs

    @property
    def array_id(self) -> str:
        return str(self.jobs[0].job_id).split("_")[0]


def parse_only(values: list[str]) -> dict[str, set[int]]:
    """``--only transfer:2,3 --only scratch``: shards to (re)submit, per phase; an empty set means all."""
    only: dict[str, set[int]] = {}
    for value in values:
        phase, _, indices = value.partition(":")
        if phase not in ("pretrain", "scratch", "transfer"):
            raise ValueError(f"--only {value!r}: the phase must be pretrain, scratch or transfer")
        try:
            only.setdefault(phase, set()).update(int(i) for i in indices.split(",") if i)
        except ValueError:
            raise ValueError(f"--only {value!r}: shard numbers must be integers, e.g. transfer:2,3") from None
    return only


def selected_shards(plan: Plan, only: dict[str, set[int]] | None) -> dict[str, list[int]]:
    """The shard numbers (1-based) to submit per phase: all, or those ``--only`` names, each checked to exist."""
    chosen = {}
    for phase in plan.phases:
        count = len(phase.shards)
        if only is not None and phase.phase not in only:
            continue
        indices = sorted(only[phase.phase]) if only and only[phase.phase] else list(range(1, count + 1))
        if any(not 1 <= i <= count for i in indices):
            raise ValueError(f"--only: phase {phase.phase} has shards 1..{count}, not {indices}")
        chosen[phase.phase] = indices
    return chosen


def submit(plan: Plan, executor: str, settings: ClusterSettings, folder: Path,
           only: dict[str, set[int]] | None = None) -> list[SubmittedPhase]:
    """Submit the plan's arrays; under ``local`` the transfer array waits here for the pre-training jobs."""
    import submitit

    ex = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=executor)
    workers = max(1, settings.gpus_per_task)
    submitted: dict[str, SubmittedPhase] = {}
    chosen = selected_shards(plan, only)
    for phase in plan.phases:
        if phase.phase not in chosen:
            continue
        indices = chosen[phase.phase]
        extra = dict(settings.sbatch)
        if phase.after in submitted:
            if executor == "slurm":
                extra["dependency"] = f"afterok:{submitted[phase.after].array_id}"
            else:
                for job in submitted[phase.after].jobs:
                    job.result()
        ex.update_parameters(**{**settings.executor_parameters(), "name": f"ecg-{phase.phase}",
                                "slurm_additional_parameters": extra})
        jobs = ex.submit_array([ShardJob(plan.argv(phase, i, workers), os.getcwd(), settings.cpus_per_task)
                                for i in indices])
        submitted[phase.phase] = SubmittedPhase(phase.phase, jobs)
    return list(submitted.values())
