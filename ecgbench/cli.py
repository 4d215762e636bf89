"""Command line: ``ecgbench grid`` lists a profile's cells, ``ecgbench report`` rebuilds reports without training;
``runs``, ``compare`` and ``export`` work on saved runs (``ecgbench.results.commands``)."""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from tabulate import tabulate

from ecgbench.checkpoints.commands import add_checkpoint_commands
from ecgbench.cluster.capacity import add_capacity_commands
from ecgbench.cluster.commands import add_cluster_commands
from ecgbench.cluster.phases import PHASES, phase_tasks
from ecgbench.data.commands import add_data_commands
from ecgbench.data.overlap_command import add_overlap_commands
from ecgbench.options import add_profile_options, study_profile
from ecgbench.perf.commands import add_perf_commands
from ecgbench.registered import add_registry_commands
from ecgbench.results.commands import add_results_commands
from ecgbench.study import enumerate_cells, enumerate_transferability, get_profile, pretrainings_of
from ecgbench.transfer_ranking import add_transferability_commands, ranking_profiles_hint

DESCRIPTION = ("Transfer learning for 12-lead ECG diagnosis, as a benchmark. The study itself runs under pytest "
               "(pytest benchmarks/test_grid.py, or pytest --pyargs ecgbench.grid when installed); these commands "
               "list a profile's grid, rebuild reports from stored records, prepare data, compare saved runs and "
               "run the grid on a cluster.")


def _grid(args: argparse.Namespace) -> int:
    profile = study_profile(lambda name: getattr(args, name), "--")
    cells, scores = enumerate_cells(profile), enumerate_transferability(profile)
    pretrainings = list(pretrainings_of(cells))
    print(f"profile {profile.name}: {profile.description}")
    shown = {**asdict(profile), **profile.hyperparameters()}  # the configs without the precision the policy stands for
    settings = [(key, value) for key, value in shown.items() if key not in ("name", "description")]
    print(tabulate(settings, tablefmt="plain"))
    print(f"\n{len(cells)} cells, {len(pretrainings)} upstream checkpoints, {len(scores)} transferability score tasks")
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.regime] = counts.get(cell.regime, 0) + 1
    print(", ".join(f"{regime}: {n}" for regime, n in counts.items()))
    if args.shards is not None:
        _print_shards(profile, phase_tasks(args.phase, cells, pretrainings, scores), args)
    elif args.list:
        print("\n".join([*(f"test_pretrain[{p.key}]" for p in pretrainings),
                         *(f"test_cell[{cell.key}]" for cell in cells),
                         *(f"test_transferability[{task.key}]" for task in scores)]))
    return 0


def _print_shards(profile, tasks: list, args: argparse.Namespace) -> None:
    """Each shard of ``--phase`` over the whole grid: its tasks and estimated cost."""
    from ecgbench.cluster.phases import split_into_shards
    from ecgbench.cluster.shards import shard_loads
    from ecgbench.cost import CostModel, measured_seconds
    from ecgbench.results.store import load_records

    if args.results is not None and not args.results.is_dir():
        raise ValueError(f"--results {args.results}: no such folder (its records' measured times refine the costs)")
    measured = measured_seconds(load_records(args.results, profile.name).records) if args.results else {}
    model = CostModel(profile, measured)
    shards = split_into_shards(tasks, args.shards, model)
    loads = shard_loads({t.key: model.cost(t) for t in tasks}, [[t.key for t in shard] for shard in shards])
    mean = sum(loads) / len(loads)
    print(f"\nphase {args.phase} in {args.shards} shards (--ecg-phase {args.phase} --ecg-shard K/{args.shards}), "
          f"estimated cost {'from measured times' if model.calibrated else 'in FLOPs (no measured times)'}:")
    rows = [(f"{i}/{args.shards}", len(shard), model.format(load), f"{(load - mean) / mean:+.1%}" if mean else "-")
            for i, (shard, load) in enumerate(zip(shards, loads), start=1)]
    print(tabulate(rows, headers=["shard", "tasks", "cost", "vs mean"], tablefmt="github"))
    if args.list:
        for i, shard in enumerate(shards, start=1):
            print(f"\n[{i}/{args.shards}]\n" + "\n".join(task.key for task in shard))


def _report(args: argparse.Namespace) -> int:
    from ecgbench.results.leaderboard import AllStaleError, rebuild_leaderboard
    from ecgbench.results.store import load_records

    if not args.results.is_dir():
        print(f"error: --results {args.results}: no such folder", file=sys.stderr)
        return 1
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out}: is a file, not a folder", file=sys.stderr)
        return 1
    loaded = load_records(args.results, args.profile)
    for problem in loaded.problems:
        print(f"skipped unreadable record: {problem}", file=sys.stderr)
    profiles = sorted({r["profile"] for r in loaded.records})
    if not loaded.records:
        held = sorted({r["profile"] for r in load_records(args.results).records}) if args.profile else []
        print(f"error: no result records {f'of profile {args.profile} ' if args.profile else ''}in {args.results}"
              + (f" (it holds profiles {held})" if held else ""), file=sys.stderr)
        return 1
    if len(profiles) > 1:
        print(f"error: {args.results} holds records of several profiles {profiles}; choose one with --profile",
              file=sys.stderr)
        return 1
    from ecgbench.results.score_records import load_score_records

    records, configuration_note, score_records = this_configuration(
        loaded.records, load_score_records(args.results, profiles[0]), profiles[0], args)
    if configuration_note:
        print(configuration_note, file=sys.stderr)
    try:
        written, stale_note = rebuild_leaderboard(records, score_records, args.out, args.keep_stale, "--keep-stale",
                                                  notes=[configuration_note] if configuration_note else (),
                                                  allow_empty=False, profile_hint=ranking_profiles_hint(profiles[0]))
    except AllStaleError:
        print(f"error: every record in {args.results} is stale; include them with --keep-stale", file=sys.stderr)
        return 1
    if stale_note:
        print(stale_note, file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0


def this_configuration(records: list[dict], scored, name: str, args: argparse.Namespace
                       ) -> tuple[list[dict], str | None, list[dict]]:
    """The records and score records of the current configuration of profile ``name``, and a note on the others.

    A profile this ecgbench does not define (nor ``--profiles``) has no known current configuration: its
    folder is reported as it is, unless a cell is stored in several configurations (which one is meant?).
    """
    from ecgbench.results.configuration import current_configuration
    from ecgbench.runner import cell_hyperparameters, pretrain_hyperparameters
    from ecgbench.study import Cell

    for problem in scored.problems:
        print(f"skipped unreadable score record: {problem}", file=sys.stderr)
    try:
        profile = get_profile(name, args.profiles)
    except KeyError:
        repeated = sorted(key for key, n in Counter(r["key"] for r in records).items() if n > 1)
        if repeated:
            raise ValueError(f"{args.results}: cells stored in several configurations of profile {name}, which "
                             f"this ecgbench does not define ({', '.join(repeated[:5])}); give its profiles file "
                             "with --profiles, so that its current configuration is known") from None
        return records, None, scored.records
    records, note = current_configuration(records, lambda r: cell_hyperparameters(profile, Cell.from_dict(r["cell"])),
                                          args.keep_stale, "--keep-stale")
    scores = current_configuration(scored.records, lambda r: pretrain_hyperparameters(profile), args.keep_stale,
                                   "--keep-stale")[0]
    return records, note, scores


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgbench", description=DESCRIPTION)
    parser.add_argument("--ecg-manifest", type=Path, action="append", default=[], metavar="PATH",
                        help="register the dataset of this manifest TOML (repeatable; anywhere on the command line, "
                             "with any command)")
    parser.add_argument("--ecg-checkpoint", type=Path, action="append", default=[], metavar="PATH",
                        help="register the checkpoint of this manifest TOML as an upstream (repeatable; see "
                             "ecgbench checkpoint new)")
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help="list the cells and settings of a profile")
    add_profile_options(grid.add_argument, "--")
    grid.add_argument("--list", action="store_true", help="print every cell's pytest id (per shard with --shards)")
    grid.add_argument("--shards", type=int, default=None, help="show the grid cut into this many cost-balanced shards")
    grid.add_argument("--phase", choices=PHASES, default="all", help="phase shown with --shards")
    grid.add_argument("--results", type=Path, default=None, help="records whose measured times refine the costs")
    grid.set_defaults(func=_grid)
    report = sub.add_parser("report", help="rebuild the leaderboard and figures from stored records")
    report.add_argument("--results", type=Path, required=True, help="folder of result records")
    report.add_argument("--out", type=Path, required=True, help="folder for leaderboard.md and figures")
    report.add_argument("--profile", default=None, help="use only records of this profile")
    report.add_argument("--keep-stale", action="store_true",
                        help="include records made by other result-affecting code or another configuration of "
                             "the profile (left out by default)")
    report.add_argument("--profiles", type=Path, default=None, metavar="FILE",
                        help="the TOML file defining the records' profile (default: the packaged profiles.toml); "
                             "its current configuration is the one the leaderboard shows")
    report.set_defaults(func=_report)
    add_data_commands(sub)
    add_overlap_commands(sub)
    add_results_commands(sub)
    add_cluster_commands(sub)
    add_capacity_commands(sub)
    add_perf_commands(sub)
    add_transferability_commands(sub)
    add_registry_commands(sub)
    add_checkpoint_commands(sub)
    return parser


def _manifest_options(argv: list[str] | None) -> tuple[list[Path], list[Path], list[str]]:
    """``--ecg-manifest PATH`` and ``--ecg-checkpoint PATH`` anywhere on the command line (as for pytest), and the
    other arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ecg-manifest", type=Path, action="append", default=[])
    parser.add_argument("--ecg-checkpoint", type=Path, action="append", default=[])
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.ecg_manifest, known.ecg_checkpoint, rest


def _stdout_closed() -> int:
    """What Python's docs advise for a CLI whose reader went away (signal module, "Note on SIGPIPE"): point
    stdout at devnull so that the flush at exit cannot raise again, and exit 1 as Python itself does on EPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    manifests, checkpoints, argv = _manifest_options(argv)
    args = build_parser().parse_args(argv)
    try:
        from ecgbench.checkpoints import register_checkpoint_file
        from ecgbench.data import register_manifest_file

        for path in manifests:
            register_manifest_file(path)
        for path in checkpoints:  # after the datasets: a checkpoint's name must not shadow one
            register_checkpoint_file(path)
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:  # `ecgbench ... | head` closed the pipe: normal use, not an error to report
        return _stdout_closed()
    except (KeyError, ValueError, OSError) as e:  # bad input: the message names the file, never a traceback
        print(f"error: {e.args[0] if isinstance(e, KeyError) and e.args else e}", file=sys.stderr)
        return 2
