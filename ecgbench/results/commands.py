"""``ecgbench runs``, ``ecgbench compare`` and ``ecgbench export``: saved runs, their comparison, their table.

Each command names a run as ``resolve_run`` reads it: a results folder, a saved-run file, or a saved run's
number or name under ``--runs`` (default ``.ecgbench/runs``, where ``pytest --ecg-save`` writes). A bad run,
metric or gate spec raises a ``ValueError`` naming it, which ``ecgbench.cli.main`` prints (exit status 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecgbench.results.runs import DEFAULT_RUNS_DIR, list_runs, resolve_run, runs_table

EXPORT_FORMATS = ("csv", "json")  # ecgbench.results.frame.FORMATS, without importing pandas to build the parser
RUN_HELP = "a results folder, a saved-run file, or a saved run's number, NNNN_name or name (its newest)"


def _runs(args: argparse.Namespace) -> int:
    print(runs_table(list_runs(args.runs)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ecgbench.results.compare import (
        DEFAULT_METRICS,
        compare,
        gate_failures,
        parse_fail_spec,
        terminal_table,
        write_comparison,
    )

    gate = parse_fail_spec(args.fail) if args.fail else None
    metrics = list(dict.fromkeys([*(args.metric or DEFAULT_METRICS), *([gate.metric] if gate else [])]))
    comparison = compare(resolve_run(args.a, args.runs), resolve_run(args.b, args.runs), metrics,
                         n_resamples=args.resamples)
    print(terminal_table(comparison))
    if args.out:
        print(f"wrote {write_comparison(comparison, args.out)}")
    failures = gate_failures(comparison, gate) if gate else []
    for line in failures:
        print(f"regression gate {args.fail}: {line}", file=sys.stderr)
    return 1 if failures else 0


def _export(args: argparse.Namespace) -> int:
    from ecgbench.results.frame import frame_text, to_frame, write_frame

    frame = to_frame(resolve_run(args.source, args.runs), n_resamples=args.resamples)
    if args.out:
        print(f"wrote {write_frame(frame, args.out, args.format)} ({len(frame)} cells)", file=sys.stderr)
    else:
        sys.stdout.write(frame_text(frame, args.format))
    return 0


def _runs_folder(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS_DIR,
                        help="folder of saved runs (default: %(default)s)")


def add_results_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``runs``, ``compare`` and ``export`` to the ``ecgbench`` command line."""
    runs = sub.add_parser("runs", help="list the saved runs (pytest --ecg-save / --ecg-autosave)")
    _runs_folder(runs)
    runs.set_defaults(func=_runs)

    comparison = sub.add_parser("compare", help="compare run B with run A cell by cell (B minus A, paired "
                                                "bootstrap intervals); a terminal table and a Markdown report")
    comparison.add_argument("a", help=f"the baseline: {RUN_HELP}")
    comparison.add_argument("b", help=f"the run compared with it: {RUN_HELP}")
    comparison.add_argument("--metric", action="append", default=None,
                            help="a metric to compare (repeatable; default: f1_weighted and auroc_macro)")
    comparison.add_argument("--out", type=Path, default=None, help="write the Markdown comparison to this file")
    comparison.add_argument("--fail", default=None, metavar="METRIC:DELTA",
                            help="exit 1 when a cell's interval lies wholly below -DELTA, or a pair is refused")
    comparison.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    _runs_folder(comparison)
    comparison.set_defaults(func=_compare)

    export = sub.add_parser("export", help="one row per cell (axes, metrics with intervals, timings, "
                                           "provenance) as CSV or JSON, for pandas or a spreadsheet")
    export.add_argument("source", help=RUN_HELP)
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv", help="default: csv")
    export.add_argument("--out", type=Path, default=None, help="write to this file (default: standard output)")
    export.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    _runs_folder(export)
    export.set_defaults(func=_export)
