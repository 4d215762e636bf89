"""Command line: ``ecgbench grid`` lists a profile's cells, ``ecgbench report`` rebuilds reports without training."""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from tabulate import tabulate

from ecgbench.data.commands import add_data_commands
from ecgbench.study import DEFAULT_PROFILE, enumerate_cells, get_profile, iter_upstream_needs


def _grid(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    if args.seeds:
        profile = profile.with_seeds(args.seeds)
    cells = enumerate_cells(profile)
    print(f"profile {profile.name}: {profile.description}")
    settings = [(key, value) for key, value in asdict(profile).items() if key not in ("name", "description")]
    print(tabulate(settings, tablefmt="plain"))
    print(f"\n{len(cells)} cells, {len(list(iter_upstream_needs(cells)))} upstream checkpoints")
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.regime] = counts.get(cell.regime, 0) + 1
    print(", ".join(f"{regime}: {n}" for regime, n in counts.items()))
    if args.list:
        print("\n".join(f"test_cell[{cell.key}]" for cell in cells))
    return 0


def _report(args: argparse.Namespace) -> int:
    from ecgbench.results.report import build_report
    from ecgbench.results.store import load_records

    loaded = load_records(args.results, args.profile)
    for problem in loaded.problems:
        print(f"skipped unreadable record: {problem}", file=sys.stderr)
    profiles = sorted({r["profile"] for r in loaded.records})
    if not loaded.records:
        print(f"error: no result records in {args.results}", file=sys.stderr)
        return 1
    if len(profiles) > 1:
        print(f"error: {args.results} holds records of several profiles {profiles}; choose one with --profile",
              file=sys.stderr)
        return 1
    for path in build_report(loaded.records, args.out):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    grid = sub.add_parser("grid", help="list the cells and settings of a profile")
    grid.add_argument("--profile", default=DEFAULT_PROFILE)
    grid.add_argument("--seeds", type=int, default=None, help="override the profile's number of seeds")
    grid.add_argument("--list", action="store_true", help="print every cell's pytest id")
    grid.set_defaults(func=_grid)
    report = sub.add_parser("report", help="rebuild the leaderboard and figures from stored records")
    report.add_argument("--results", type=Path, required=True, help="folder of result records")
    report.add_argument("--out", type=Path, required=True, help="folder for leaderboard.md and figures")
    report.add_argument("--profile", default=None, help="use only records of this profile")
    report.set_defaults(func=_report)
    add_data_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
