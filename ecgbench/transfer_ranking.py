"""``ecgbench transferability``: which upstream checkpoint to fine-tune from, ranked before any fine-tuning.

For one downstream dataset it scores every upstream checkpoint of the profile (each upstream other than the
downstream, each model, each seed) on the downstream training subset of one fraction, through the same
``CellRunner.transferability`` the grid's ``test_transferability`` cases use: a stored score record with the
same id is reused, a new one is stored. Checkpoints are trained only with ``--train-missing``; otherwise the
missing ones are named with the command that builds them. The ranking comes with the caveat of how well each
score predicted the measured outcomes of the stored grid (``ecgbench.results.transferability``).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from tabulate import tabulate

from ecgbench.engine.checkpoint import load_checkpoint
from ecgbench.options import add_profile_options, add_run_options, build_study
from ecgbench.results.findings import canonical_order
from ecgbench.results.record_intervals import format_interval
from ecgbench.results.score_records import load_score_records
from ecgbench.results.store import load_records
from ecgbench.results.transferability import KNOWN_SCORES, analyse_transferability
from ecgbench.runner import CellRunner, checkpoint_file
from ecgbench.study import Pretraining, Profile, Transferability, identity_hash, is_dataset_upstream, upstream_fits

CAVEAT_RESAMPLES = 200  # bootstrap resamples behind the caveat's intervals: a quick answer, not the report's 1000
NO_OUTCOMES = "no stored outcomes yet"


@dataclass(frozen=True)
class Scored:
    """The score records of one downstream's upstream checkpoints, and the checkpoints that were missing."""

    downstream: str
    fraction: float
    records: list[dict]
    missing: list[Pretraining]


def downstream_tasks(profile: Profile, downstream: str, fraction: float) -> list[Transferability]:
    """One score task per upstream (other than ``downstream``), model and seed of the profile."""
    if downstream not in (*profile.downstreams, *profile.synthetic_records):
        known = dict.fromkeys((*profile.downstreams, *profile.synthetic_records))
        raise ValueError(f"profile {profile.name!r} has no dataset {downstream!r} (its datasets: "
                         f"{', '.join(known)}); give a profiles file with --profiles")
    if not 0 < fraction <= 1:
        raise ValueError(f"--fraction {fraction} not in (0, 1]")
    return [Transferability(upstream, downstream, model, fraction, seed) for seed in range(profile.seeds)
            for model in profile.models for upstream in profile.upstreams
            if upstream != downstream and upstream_fits(upstream, model)]


def _checkpoint_ready(runner: CellRunner, pretraining: Pretraining) -> bool:
    if not is_dataset_upstream(pretraining.upstream):
        return True  # given, never trained
    path = checkpoint_file(runner.options.results_dir, pretraining, runner.profile)
    checkpoint_id = runner.checkpoint_id(pretraining.upstream, pretraining.model, pretraining.seed)
    return load_checkpoint(path, checkpoint_id) is not None


def score_downstream(runner: CellRunner, downstream: str, fraction: float, train_missing: bool = False) -> Scored:
    """Stored or new score records of every upstream checkpoint on ``downstream``; missing checkpoints apart."""
    records, missing = [], []
    for task in downstream_tasks(runner.profile, downstream, fraction):
        stored = runner.stored_scores(task, identity_hash(runner.score_identity(task)))
        if stored is not None:
            records.append(stored)
        elif train_missing or _checkpoint_ready(runner, task.pretraining):
            records.append(runner.transferability(task))
        else:
            missing.append(task.pretraining)
    return Scored(downstream, fraction, records, list(dict.fromkeys(missing)))


def ranking_tables(records: list[dict]) -> str:
    """Per model, each score's column ranks the upstreams best first (mean over seeds); failures listed after."""
    ok = [r for r in records if r["status"] == "ok"]
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    directions: dict[str, bool] = {}
    for record in ok:
        directions.update(record["higher_is_better"])
        for name, value in record["scores"].items():
            values[(record["model"], record["upstream"])][name].append(value)
    names = canonical_order(directions, KNOWN_SCORES)
    blocks = []
    for model in canonical_order({model for model, _ in values}):
        upstreams = [u for m, u in values if m == model]
        columns = []
        for name in names:
            means = {u: mean(values[(model, u)][name]) for u in upstreams if values[(model, u)][name]}
            ranked = sorted(means, key=lambda u: means[u], reverse=directions[name])
            columns.append([f"{u} {means[u]:+.4f}" for u in ranked])
        rows = [[rank, *[column[rank - 1] if rank <= len(column) else "" for column in columns]]
                for rank in range(1, max(map(len, columns), default=0) + 1)]
        seeds = max(len(v) for u in upstreams for v in values[(model, u)].values())
        headers = ["rank", *[f"{n} ({'higher' if directions[n] else 'lower'} = better)" for n in names]]
        blocks.append(f"model {model} (mean over {seeds} seed(s)):\n"
                      + tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        blocks.append("failed score tasks: " + "; ".join(f"{r['key']}: {r['error'].splitlines()[0]}" for r in failed))
    return "\n\n".join(blocks) if blocks else "no upstream checkpoint could be scored"


def caveat(score_records: list[dict], outcome_records: list[dict]) -> str:
    """How well each score predicted fine-tuning gains across upstreams in the stored grid, or that none exist."""
    if not any(r["status"] == "ok" and r["cell"]["regime"] == "finetune" for r in outcome_records):
        return f"How well the scores predict fine-tuning: {NO_OUTCOMES} (run the grid's fine-tune and scratch cells)."
    analysis = analyse_transferability(score_records, outcome_records, n_resamples=CAVEAT_RESAMPLES)
    lines = ["How well each score predicted the measured gain over scratch across upstreams in the stored grid "
             "(mean of the per-(downstream, model, fraction) rank correlations, 95 % CI; a good score has the "
             "sign of its direction):"]
    for found in analysis.correlations:
        if found.scope != "mean over cells" or found.outcome != "gain":
            continue
        if found.status != "ok":
            text = found.status
        else:
            text = (f"Kendall τ {format_interval(found.kendall, signed=True)}, Spearman ρ "
                    f"{format_interval(found.spearman, signed=True)} over {found.n_upstreams} cell(s)")
        lines.append(f"  {found.score}: {text}")
    if len(lines) == 1:
        lines.append(f"  {NO_OUTCOMES} for any scored upstream")
    return "\n".join(lines)


def _missing_text(scored: Scored, args: argparse.Namespace) -> str:
    profile = f"--ecg-profile {args.profile}" + (f" --ecg-profiles {args.profiles}" if args.profiles else "")
    return (f"missing upstream checkpoints ({len(scored.missing)}): "
            + ", ".join(pretraining.key for pretraining in scored.missing)
            + f"\nbuild them with --train-missing, or with the grid's pre-training phase:\n"
            f"  pytest benchmarks/test_grid.py {profile} --ecg-results {args.results} --ecg-phase pretrain "
            f"-m \"transferability and to_{scored.downstream}\"")


def _run(args: argparse.Namespace) -> int:
    profile, options = build_study(lambda name: getattr(args, name, None), "--", Path.cwd())
    args.results = options.results_dir
    fraction = args.fraction if args.fraction is not None else max(profile.fractions)
    runner = CellRunner(profile, options)
    scored = score_downstream(runner, args.downstream, fraction, args.train_missing)
    if not scored.records and not scored.missing:
        print(f"error: nothing to rank: profile {profile.name} scores no upstream for {args.downstream} (its "
              f"upstreams {list(profile.upstreams)}, regimes {list(profile.regimes)}; a dataset is never scored "
              "from itself, and only a profile with a transfer regime has score tasks)", file=sys.stderr)
        return 1
    print(f"upstream checkpoints for downstream {args.downstream}, profile {profile.name}, training subset "
          f"fraction {fraction:g} (scores from one forward pass, before any fine-tuning)\n")
    if scored.records:
        print(ranking_tables(scored.records) + "\n")
        stored_scores = load_score_records(args.results, profile.name).records
        print(caveat(stored_scores, load_records(args.results, profile.name).records))
    if scored.missing:
        print(("\n" if scored.records else "") + _missing_text(scored, args))
    return 0 if scored.records else 1


def add_transferability_commands(sub) -> None:
    """``ecgbench transferability``: register the sub-command on the CLI's sub-parsers."""
    parser = sub.add_parser("transferability", help="rank the upstream checkpoints for a downstream dataset by "
                                                    "transferability scores (no fine-tuning)")
    parser.add_argument("--downstream", required=True, help="the dataset to fine-tune on")
    add_profile_options(parser.add_argument, "--", seeds=False)
    add_run_options(parser.add_argument, "--")
    parser.add_argument("--fraction", type=float, default=None,
                        help="training subset to score on (default: the profile's largest fraction)")
    parser.add_argument("--train-missing", action="store_true", help="pre-train the checkpoints that are missing")
    parser.set_defaults(func=_run)


def ranking_profiles_hint(current: str) -> str:
    """For a leaderboard that cannot rank upstreams: which packaged profiles fine-tune from enough of them (the
    random-feature control has no fine-tune cells, so it is no upstream to rank by its gains)."""
    from ecgbench.results.transferability import MIN_UPSTREAMS
    from ecgbench.study import RANDOM_UPSTREAM, load_profiles

    names = [name for name, p in load_profiles().items()
             if len([u for u in p.upstreams if u != RANDOM_UPSTREAM]) >= MIN_UPSTREAMS]
    if current in names or not names:
        return ""
    return (f"profile {current} fine-tunes from fewer upstreams; the packaged profiles {', '.join(names)} fine-tune "
            f"from {MIN_UPSTREAMS} or more and rank them")
