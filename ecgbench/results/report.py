"""The Markdown leaderboard (``leaderboard.md`` + PNG figures) and the end-of-run terminal table.

Everything in the Markdown comes from the records (no clock, no host), sorted, so the same records give the
same bytes. Intervals are 95 % percentile bootstraps over the test records (``ecgbench.results.bootstrap``);
over several seeds, a two-level bootstrap that also redraws the seeds. Missing cells print ``-``, failed
cells ``failed``, an undefined metric ``n/a``: never a zero.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Iterable

from tabulate import tabulate

from ecgbench.atomic import atomic_write_bytes
from ecgbench.codeid import code_digest_counts
from ecgbench.data.classes import DOWNSTREAMS
from ecgbench.inputs import InputSpec
from ecgbench.results.datasets import dataset_lines
from ecgbench.results.figures import render_figures
from ecgbench.results.findings import (
    Pair,
    canonical_order,
    evaluate_findings,
    findings_markdown,
    findings_rules_markdown,
    paired_cells,
    record_score,
    seed_mean_scores,
)
from ecgbench.results.headlines import headlines, headlines_markdown
from ecgbench.results.markdown import first_line, markdown_table
from ecgbench.results.overlap_section import overlap_section
from ecgbench.results.random_control import random_control_section
from ecgbench.results.record_intervals import BOOTSTRAP_SEED, BootstrapScores, format_interval
from ecgbench.results.transferability import transferability_section

REPORT_NAME = "leaderboard.md"
MISSING, FAILED = "-", "failed"
TABLE_METRICS = (("f1_weighted", "Weighted F1 (the paper's metric)", "Δ weighted F1"),
                 ("auroc_macro", "Macro AUROC", "Δ macro AUROC"))
REGIME_LABELS = {"scratch": "scratch", "linear": "linear", "finetune": "fine-tune"}
PUBLISHED_SOURCE = "Strodthoff et al. 2020 (PTB-XL benchmark), superdiagnostic, from scratch"
PUBLISHED_PTBXL_SCRATCH_AUROC = (("resnet1d_wang", 0.930), ("xresnet1d101", 0.928), ("lstm", 0.927),
                                 ("lstm_bidir", 0.921))

GroupKey = tuple  # (downstream, model, fraction, regime, upstream)


# --- formatting ---------------------------------------------------------------------------------------------

def _markdown_cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


# --- grouping -----------------------------------------------------------------------------------------------

def _group_key(record: dict) -> GroupKey:
    cell = record["cell"]
    return cell["downstream"], cell["model"], float(cell["fraction"]), cell["regime"], cell["upstream"]


def _groups(records: list[dict]) -> dict[GroupKey, list[dict]]:
    """Records per cell (all seeds together)."""
    groups: dict[GroupKey, list[dict]] = defaultdict(list)
    for record in records:
        groups[_group_key(record)].append(record)
    return groups


def _regime_columns(keys: Iterable[GroupKey]) -> list[tuple[str, str | None]]:
    """(regime, upstream) columns: scratch, then linear from each upstream, then fine-tune from each."""
    present = {(k[3], k[4]) for k in keys}
    upstreams = canonical_order({u for _, u in present if u}, DOWNSTREAMS)
    candidates = [("scratch", None)] + [(r, u) for r in ("linear", "finetune") for u in upstreams]
    return [c for c in candidates if c in present]


def _column_label(regime: str, upstream: str | None) -> str:
    return REGIME_LABELS[regime] if upstream is None else f"{REGIME_LABELS[regime]} ← {upstream}"


def _cell_text(scores: BootstrapScores, records: list[dict], metric: str) -> str:
    """A table cell: ``-`` when missing, ``failed`` when every seed failed, else the mean [95 % CI]."""
    if not records:
        return MISSING
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return FAILED
    text = format_interval(scores.group_interval(ok, metric))
    return text if len(ok) == len(records) else f"{text} ({len(ok)}/{len(records)} ok)"


# --- sections -----------------------------------------------------------------------------------------------

def _distinct(records: list[dict], *path: str) -> str:
    """The distinct values of a (nested) record field, e.g. ``("environment", "torch")``, comma-joined."""
    found = set()
    for record in records:
        value = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, ""):
            found.add(str(value))
    return ", ".join(sorted(found)) if found else "unknown"


def _model_inputs(records: list[dict]) -> str:
    """``resnet1d18: 100 Hz x 10 s, 12 leads; mynet: 500 Hz x 10 s, 12 leads`` from the records' identities."""
    seen: dict[str, set[str]] = defaultdict(set)
    for record in records:
        spec = (record.get("identity") or {}).get("input")
        if spec:
            seen[record["cell"]["model"]].add(InputSpec.from_dict(spec).describe())
    return "; ".join(f"{m}: {' + '.join(sorted(seen[m]))}" for m in canonical_order(seen)) or "unknown"


def _provenance(records: list[dict], n_resamples: int, notes: Iterable[str] = ()) -> list[str]:
    ok = sum(r["status"] == "ok" for r in records)
    created = sorted(r["created"] for r in records if r.get("created"))
    by_downstream = defaultdict(set)
    for record in records:
        if record.get("data_source"):
            by_downstream[record["cell"]["downstream"]].add(record["data_source"])
    sources = "; ".join(f"{d}: {'+'.join(sorted(by_downstream[d]))}"
                        for d in canonical_order(by_downstream, DOWNSTREAMS))
    return [
        "## Provenance", "",
        f"- profile: {_distinct(records, 'profile')}",
        f"- transfer head policy: {_distinct(records, 'identity', 'hyperparameters', 'head_policy')} "
        "(last_layer: the paper's, only the last layer is new; head: the whole head is new)",
        f"- data source per downstream: {sources or 'unknown'}",
        f"- model input (what each model's cells received, checked against its upstream checkpoint's): "
        f"{_model_inputs(records)}",
        *[f"- dataset {line}" for line in dataset_lines(records)],
        f"- commit: {_distinct(records, 'environment', 'commit')}",
        "- code digest (cells it made): "
        + ", ".join(f"{digest} ({n})" for digest, n in code_digest_counts(records).items()),
        *[f"- {note}" for note in notes],
        f"- device: {_distinct(records, 'environment', 'device_name')}",
        f"- torch: {_distinct(records, 'environment', 'torch')}; "
        f"python: {_distinct(records, 'environment', 'python')}; "
        f"ecgbench: {_distinct(records, 'environment', 'ecgbench')}",
        f"- records created: {f'{created[0]} to {created[-1]}' if created else 'unknown'}",
        f"- cells: {ok} ok, {len(records) - ok} failed",
        f"- intervals: 95 % percentile bootstrap over the test records ({n_resamples} resamples, seed "
        f"{BOOTSTRAP_SEED}; resamples missing a class of the test set are dropped); over several seeds a "
        "two-level bootstrap that also redraws the seeds", "",
    ]


def _at_a_glance(records: list[dict]) -> str:
    """The one provenance line above the findings (the whole provenance closes the report)."""
    ok = sum(r["status"] == "ok" for r in records)
    return (f"Profile {_distinct(records, 'profile')}: {ok} cells ok, {len(records) - ok} failed; commit "
            f"{_distinct(records, 'environment', 'commit')}; device {_distinct(records, 'environment', 'device_name')}"
            ". Provenance at the end.")


def _downstream_tables(scores: BootstrapScores, groups: dict[GroupKey, list[dict]], downstream: str) -> list[str]:
    keys = [k for k in groups if k[0] == downstream]
    columns = _regime_columns(keys)
    models = canonical_order({k[1] for k in keys})
    fractions = sorted({k[2] for k in keys})
    headers = ["fraction", "model"] + [_column_label(*c) for c in columns]
    lines = []
    for metric, title, _ in TABLE_METRICS:
        rows = [[f"{fraction:g}", model] + [_cell_text(scores, groups.get((downstream, model, fraction, *c), []),
                                                        metric) for c in columns]
                for fraction in fractions for model in models]
        lines += [f"**{title}**, test set, mean over seeds [95 % CI]", "", markdown_table(rows, headers), ""]
    return lines


def _difference_table(scores: BootstrapScores, groups: dict[GroupKey, list[dict]], pairs: list[Pair],
                      downstream: str) -> list[str]:
    by_cell: dict[tuple, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_cell[(pair.cell["upstream"], float(pair.cell["fraction"]), pair.cell["model"])].append(pair)
    finetuned = {(k[4], k[2], k[1]) for k in groups if k[0] == downstream and k[3] == "finetune"}
    rows = []
    for upstream, fraction, model in _ordered_cells(finetuned):
        matched = by_cell.get((upstream, fraction, model), [])
        rows.append([upstream, f"{fraction:g}", model, len(matched)]
                    + [format_interval(scores.paired_interval(matched, metric), signed=True) if matched else MISSING
                       for metric, _, _ in TABLE_METRICS])
    if not rows:
        return ["No fine-tune cells for this downstream.", ""]
    headers = ["upstream", "fraction", "model", "paired seeds"] + [label for _, _, label in TABLE_METRICS]
    return ["**Fine-tune minus scratch** (same model, fraction and seed; paired bootstrap on the same test "
            "records) [95 % CI]", "", markdown_table(rows, headers), ""]


def _ordered_cells(cells: set[tuple[str, float, str]]) -> list[tuple[str, float, str]]:
    """(upstream, fraction, model) triples in canonical dataset, fraction and model order."""
    return [(u, f, m) for u in canonical_order({c[0] for c in cells}, DOWNSTREAMS)
            for f in sorted({c[1] for c in cells})
            for m in canonical_order({c[2] for c in cells}) if (u, f, m) in cells]


def _summary_table(pairs: list[Pair]) -> list[str]:
    """The paper's Figure 1 as a table: per upstream -> downstream and fraction, means over models."""
    per_model = seed_mean_scores(pairs)
    panels = defaultdict(list)
    for (upstream, downstream, fraction, _), values in per_model.items():
        panels[(upstream, downstream, fraction)].append(values)
    rows = [[f"{u} → {d}", f"{f:g}", len(v), f"{mean(s for s, _ in v):.3f}", f"{mean(t for _, t in v):.3f}",
             f"{mean(t - s for s, t in v):+.3f}"] for (u, d, f), v in sorted(panels.items())]
    if not rows:
        return ["No fine-tune cell has an ok scratch twin yet.", ""]
    headers = ["upstream → downstream", "fraction", "models", "scratch", "fine-tune", "gain"]
    return ["Test weighted F1 averaged over seeds, then over the models with both cells.", "",
            markdown_table(rows, headers), ""]


def _figure_lines(records: list[dict], out_dir: Path, scores: BootstrapScores) -> tuple[list[str], list[Path]]:
    lines, paths = ["## Figures", ""], []
    for outcome in render_figures(records, out_dir, scores):
        lines += [f"### {outcome.title}", ""]
        if outcome.path is None:
            lines += [f"_skipped: {outcome.skipped_because}_", ""]
        else:
            lines += [f"![{outcome.title}]({outcome.name})", ""]
            paths.append(outcome.path)
    return lines, paths


def _literature(scores: BootstrapScores, groups: dict[GroupKey, list[dict]]) -> list[str]:
    rows = [["published, not re-run", PUBLISHED_SOURCE, model, f"{value:.3f}"]
            for model, value in PUBLISHED_PTBXL_SCRATCH_AUROC]
    real = {k: [r for r in v if r["status"] == "ok" and r.get("data_source") == "real"]
            for k, v in groups.items() if k[0] == "ptbxl" and k[3] == "scratch"}
    real = {k: v for k, v in real.items() if v}
    lines = ["## Literature", ""]
    if real:
        fraction = max(k[2] for k in real)
        by_model = {k[1]: v for k, v in real.items() if k[2] == fraction}
        for model in canonical_order(by_model):
            interval = scores.group_interval(by_model[model], "auroc_macro")
            rows.append(["this run (real data)", f"ecgbench scratch, fraction {fraction:g}, "
                                                 f"{len(by_model[model])} seed(s)", model, format_interval(interval)])
        note = ("The protocols differ (their folds, preprocessing and training budget vs this profile's): "
                "a reference point, not a like-for-like comparison.")
    else:
        note = "No real-data scratch row for downstream ptbxl exists in this run, so there is nothing to set beside."
    return lines + ["PTB-XL superdiagnostic macro AUROC.", "",
                    markdown_table(rows, ["source", "setting", "model", "macro AUROC"]), "", note, ""]


def _failures(records: list[dict]) -> list[str]:
    failed = [r for r in records if r["status"] == "failed"]
    if not failed:
        return ["## Failed cells", "", "None.", ""]
    rows = [[r["key"], _markdown_cell(first_line(r.get("error")) or "(no error text)")] for r in failed]
    return ["## Failed cells", "", markdown_table(rows, ["cell", "error"]), ""]


# --- entry points -------------------------------------------------------------------------------------------

def build_report(records: list[dict], out_dir: Path, title: str | None = None, *, n_resamples: int = 1000,
                 notes: Iterable[str] = (), score_records: list[dict] = (), sections: Iterable[str] = (),
                 profile_hint: str = "") -> list[Path]:
    """Write ``leaderboard.md`` and its figures into ``out_dir``; return the written paths (Markdown first).

    ``notes``: provenance lines the caller adds: what the run that wrote it did (trained, reused, skipped cells),
    how many stale records it left out. With transferability ``score_records`` (``ecgbench.results.score_records``)
    the leaderboard also has their section: how well each score predicted the measured outcomes of ``records``,
    and its figure. ``sections``: Markdown sections a plugin adds (``pytest_ecgbench_leaderboard_sections``).
    ``profile_hint`` names the profiles whose grid can rank upstreams, for when this one cannot. The findings and
    the headlines come first, the provenance last.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: r["key"])
    scores, groups, pairs = BootstrapScores(n_resamples), _groups(records), paired_cells(records)
    figure_lines, figure_paths = _figure_lines(records, out_dir, scores)
    findings = evaluate_findings(records)
    lines = [f"# {title or 'ecgbench leaderboard'}", "", _at_a_glance(records), "",
             "## Findings of Nguyen & Do (2024), tested on this run", "", findings_markdown(findings), "",
             "## When does fine-tuning beat scratch? One sentence per downstream and model", "",
             headlines_markdown(headlines(pairs, scores)), "",
             "## Summary over models (the paper's Figure 1)", "", *_summary_table(pairs), *figure_lines]
    for downstream in canonical_order({k[0] for k in groups}, DOWNSTREAMS):
        lines += [f"## Downstream: {downstream}", "", *_downstream_tables(scores, groups, downstream),
                  *_difference_table(scores, groups, [p for p in pairs if p.cell["downstream"] == downstream],
                                     downstream)]
    lines += random_control_section(records, scores, tuple((m, label) for m, _, label in TABLE_METRICS), DOWNSTREAMS)
    if score_records:
        section, section_paths = transferability_section(list(score_records), records, out_dir,
                                                         n_resamples=n_resamples, profile_hint=profile_hint)
        lines.append(section)
        figure_paths += section_paths
    lines += [*overlap_section(records), *sections, *_literature(scores, groups), *_failures(records),
              findings_rules_markdown(findings), "", *_provenance(records, n_resamples, notes)]
    markdown_path = out_dir / REPORT_NAME
    atomic_write_bytes(markdown_path, ("\n".join(lines).rstrip() + "\n").encode())
    return [markdown_path, *figure_paths]


def terminal_summary(records: list[dict]) -> str:
    """Mean test weighted F1 per downstream x model of scratch / linear / fine-tune, as a plain table."""
    if not records:
        return "ecgbench: no study records"
    scores = defaultdict(list)
    for record in records:
        if (score := record_score(record)) is not None:
            scores[(record["cell"]["downstream"], record["cell"]["model"], record["cell"]["regime"])].append(score)
    cells = {(r["cell"]["downstream"], r["cell"]["model"]) for r in records}
    rows = [[d, m] + [f"{mean(scores[(d, m, regime)]):.3f}" if scores[(d, m, regime)] else MISSING
                      for regime in ("scratch", "linear", "finetune")]
            for d in canonical_order({d for d, _ in cells}, DOWNSTREAMS)
            for m in canonical_order({m for _, m in cells}) if (d, m) in cells]
    failed = sum(r["status"] == "failed" for r in records)
    table = tabulate(rows, headers=["downstream", "model", "scratch", "linear", "fine-tune"], tablefmt="simple",
                     disable_numparse=True)
    return (f"mean test weighted F1 over fractions, seeds and upstreams ({len(records) - failed} cells ok, "
            f"{failed} failed)\n{table}")
