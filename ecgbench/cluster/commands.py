"""``ecgbench submit`` and ``ecgbench status``: the grid on a cluster, and how far it is."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ecgbench.cluster.selection import GRID_FILE, collect_selection
from ecgbench.cluster.status import grid_status, render_status
from ecgbench.cluster.submit import (
    EXECUTORS,
    ClusterSettings,
    parse_only,
    plan_submission,
    render_plan,
    selected_shards,
    submit,
)
from ecgbench.cost import load_measured, measured_seconds, save_measured
from ecgbench.options import add_profile_options, study_profile
from ecgbench.results.store import load_records


def _sbatch_flag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--sbatch takes KEY=VALUE (e.g. qos=high), got {text!r}")
    return key, value


def _settings(args: argparse.Namespace) -> ClusterSettings:
    base = ClusterSettings.from_toml(args.config) if args.config else ClusterSettings()
    return base.with_overrides(partition=args.partition, account=args.account, gpus_per_task=args.gpus_per_task,
                               cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb, time_min=args.time_min,
                               array_parallelism=args.array_parallelism,
                               sbatch=dict(args.sbatch) if args.sbatch else None)


def _measured(results_dir: Path, profile: str, costs_file: Path, refresh: bool, dry_run: bool) -> dict[str, float]:
    """The measured-time snapshot every shard of this results folder uses; taken once, kept for resubmissions."""
    if costs_file.exists() and not refresh:
        return load_measured(costs_file)
    measured = measured_seconds(load_records(results_dir, profile).records) if results_dir.exists() else {}
    if not dry_run:
        save_measured(measured, costs_file)
    return measured


def _submit(args: argparse.Namespace) -> int:
    pytest_args = args.pytest_args[1:] if args.pytest_args[:1] == ["--"] else args.pytest_args
    selection = collect_selection(pytest_args, args.grid)
    if not selection.cells and not selection.pretrainings:
        print(f"error: the selection {shlex.join(pytest_args)!r} holds no study task")
        return 1
    logs = (args.logs or selection.options.results_dir.parent / "submitit").resolve()
    costs_file = logs / "measured-costs.json"
    measured = _measured(selection.options.results_dir, selection.profile.name, costs_file, args.refresh_costs,
                         args.dry_run)
    plan = plan_submission(selection, args.shards, measured, costs_file, args.grid)
    settings = _settings(args)
    only = parse_only(args.only) if args.only else None
    chosen = selected_shards(plan, only)  # a bad --only is refused by the dry run too
    print(render_plan(plan, args.executor, settings))
    if only is not None:
        print("\n--only: " + "; ".join(f"{phase} shards {', '.join(map(str, shards))}"
                                      for phase, shards in chosen.items()))
    if args.dry_run:
        print("\n(dry run: nothing submitted)")
        return 0
    submitted = submit(plan, args.executor, settings, logs, only)
    for phase in submitted:
        print(f"submitted {phase.phase}: {' '.join(str(job.job_id) for job in phase.jobs)}")
    status = f"ecgbench status --results {plan.results_dir} --profile {selection.profile.name}"
    if args.executor == "slurm":
        ids = ",".join(phase.array_id for phase in submitted)
        print(f"follow: squeue -j {ids}   and   {status}   (logs in {logs})")
        return 0
    failed = 0
    for phase in submitted:
        for job in phase.jobs:
            try:
                job.result()
            except Exception as error:  # a crashed shard; its stored cells stay, a resubmission runs the rest
                failed += 1
                print(f"job {job.job_id} ({phase.phase}) failed: {str(error).splitlines()[-1]}")
    print(f"local run finished: {failed} failed jobs; {status}")
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    profile = study_profile(lambda name: getattr(args, name), "--")
    if not args.results.is_dir():
        print(f"error: {args.results}: no such results folder", file=sys.stderr)
        return 1
    status = grid_status(args.results, profile)
    print(render_status(status, profile))
    return 1 if status.holds_other_profiles_only(profile) else 0


def add_cluster_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("submit", help="run a selection of the grid as job arrays (Slurm or local), pre-training first",
                       description="Example: ecgbench submit --executor slurm --shards 8 --partition gpu "
                                   "--gpus-per-task 1 -- --ecg-profile paper -k resnet")
    s.add_argument("--executor", choices=EXECUTORS, default="slurm")
    s.add_argument("--shards", type=int, default=1, help="jobs for the cells (pre-training gets one per checkpoint)")
    s.add_argument("--config", type=Path, help="TOML file of cluster settings (keys as the options below)")
    s.add_argument("--partition")
    s.add_argument("--account")
    s.add_argument("--gpus-per-task", type=int, help="GPUs per job; more than 1 runs pytest -n GPUS in it")
    s.add_argument("--cpus-per-task", type=int)
    s.add_argument("--mem-gb", type=float)
    s.add_argument("--time-min", type=int, help="time limit per job in minutes (default 720)")
    s.add_argument("--array-parallelism", type=int, help="most jobs of one array running at once")
    s.add_argument("--sbatch", type=_sbatch_flag, action="append", metavar="KEY=VALUE",
                   help="any other sbatch flag, repeatable: --sbatch qos=high --sbatch constraint=a100")
    s.add_argument("--logs", type=Path, help="submitit folder (default: <results>/../submitit)")
    s.add_argument("--refresh-costs", action="store_true",
                   help="re-take the measured-time snapshot (a resubmission must keep the old one)")
    s.add_argument("--only", action="append", metavar="PHASE[:K,...]",
                   help="submit only these shards, e.g. --only transfer:3 to resubmit a cancelled shard")
    s.add_argument("--grid", type=Path, default=GRID_FILE, help="the grid's test file (default: %(default)s)")
    s.add_argument("--dry-run", action="store_true", help="print the arrays and commands, submit nothing")
    s.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest selection")
    s.set_defaults(func=_submit)
    st = sub.add_parser("status", help="done / failed / missing cells of a grid and the estimated remaining cost")
    st.add_argument("--results", type=Path, required=True)
    add_profile_options(st.add_argument, "--")
    st.set_defaults(func=_status)
