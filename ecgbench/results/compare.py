"""Compare two runs cell by cell, the way pytest-benchmark compares saved sessions, but with paired intervals.

Cells pair by key. For each chosen metric, the change is B minus A on the same test records: both runs are
scored on the same bootstrap resamples (``SharedResamples``), so the interval is a paired percentile bootstrap.
A (downstream, model, regime) group averages its cells: first over seeds within each (fraction, upstream)
cell, then over those cells; its interval also redraws the seeds within each cell (``seed_mean_ci``).
Verdict: "better" when the whole 95 % interval lies above 0, "worse" when below, else "no clear change".

Cells whose test sets differ (split digest, test record ids or labels) are refused, never paired: a difference
there would measure other records, not the change. Cells on the same records, labels and split whose inputs
differ (data digest or data source: a changed preprocessing step, one of the changes worth comparing) are
paired, and the differing digests are listed ("inputs differ"). Cells present on one side only, failed or
without predictions are listed, never silently dropped.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tabulate import tabulate

from ecgbench.atomic import atomic_write_bytes
from ecgbench.codeid import code_digest_counts
from ecgbench.data.classes import DOWNSTREAMS
from ecgbench.results.bootstrap import METRICS, Interval, SharedResamples, percentile_interval, seed_mean_ci
from ecgbench.results.findings import canonical_order, record_score
from ecgbench.results.record_intervals import BOOTSTRAP_SEED, UNDEFINED, BootstrapScores, format_interval
from ecgbench.results.report import REGIME_LABELS
from ecgbench.results.runs import SavedRun, as_run

DEFAULT_METRICS = ("f1_weighted", "auroc_macro")
BETTER, WORSE, NO_CLEAR_CHANGE = "better", "worse", "no clear change"
REGIME_ORDER = tuple(REGIME_LABELS)
LISTED = 10  # cells named per list in the terminal; the Markdown names all
NO_INTERVAL = Interval(None, None, None, 0)
NO_CELL_COMPARED = "no cell was compared: the gate has nothing to pass"


class CompareError(ValueError):
    """A comparison that cannot be made as asked (unknown metric, bad gate spec)."""


@dataclass(frozen=True)
class Delta:
    """One metric of one cell or group: the value in A and in B, and the interval of B - A."""

    a: float | None
    b: float | None
    change: Interval

    @property
    def verdict(self) -> str:
        if self.change.low is None:
            return UNDEFINED
        if self.change.low > 0:
            return BETTER
        if self.change.high < 0:
            return WORSE
        return NO_CLEAR_CHANGE


@dataclass(frozen=True)
class Row:
    """A compared cell (``name`` is its key) or group (``downstream / model / regime``) and its deltas."""

    name: str
    cells: tuple[str, ...]
    deltas: dict[str, Delta]


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare`` found; ``refused``, ``not_compared`` and ``inputs_differ`` hold (cell key, why) pairs.

    ``inputs_differ``: paired cells (also in ``cells``) whose data digest or source differs.
    """

    a: SavedRun
    b: SavedRun
    metrics: tuple[str, ...]
    n_resamples: int
    alpha: float
    cells: list[Row] = field(default_factory=list)
    groups: list[Row] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    not_compared: list[tuple[str, str]] = field(default_factory=list)
    failed_in_b: list[str] = field(default_factory=list)  # ok in A, failed in B: the worst regression
    refused: list[tuple[str, str]] = field(default_factory=list)
    inputs_differ: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class FailSpec:
    """A regression gate: fail when a cell's interval of ``metric`` lies wholly below ``-delta``."""

    metric: str
    delta: float


# --- pairing ------------------------------------------------------------------------------------------------

def _check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise CompareError(f"metrics {list(metrics)}: choose from {sorted(METRICS)}")
    return metrics


def _unusable(record: dict) -> str | None:
    if record["status"] != "ok":
        return "failed"
    if not (record.get("predictions") or {}).get("record_ids"):
        return "has no test predictions"
    return None


def differing_inputs(a: dict, b: dict) -> str | None:
    """How the data behind two records of one cell differ (source, digest), or None when they do not."""
    problems = []
    if a.get("data_source") != b.get("data_source"):
        problems.append(f"data source {a.get('data_source')} vs {b.get('data_source')}")
    in_a, in_b = a["identity"].get("downstream_digest"), b["identity"].get("downstream_digest")
    if in_a != in_b:
        problems.append(f"data digest {in_a} vs {in_b}")
    return "; ".join(problems) or None


def differing_test_set(a: dict, b: dict) -> str | None:
    """How the test sets of two records of one cell differ (split, record ids, labels), or None when they match."""
    problems = []
    in_a, in_b = a["identity"].get("split_digest"), b["identity"].get("split_digest")
    if in_a != in_b:
        problems.append(f"split digest {in_a} vs {in_b}")
    ids_a, ids_b = a["predictions"]["record_ids"], b["predictions"]["record_ids"]
    if ids_a != ids_b:
        problems.append(f"test record ids differ ({len(ids_a)} vs {len(ids_b)} records, "
                        f"{len(set(ids_a) ^ set(ids_b))} in one only)")
    elif a["predictions"]["y_true"] != b["predictions"]["y_true"]:
        problems.append("test labels differ on the same records")
    return "; ".join(problems) or None


def _pair(a: SavedRun, b: SavedRun, comparison: Comparison) -> list[tuple[dict, dict]]:
    """The (A, B) record pairs that can be compared; everything else goes to the comparison's lists."""
    by_key_a, by_key_b = {r["key"]: r for r in a.records}, {r["key"]: r for r in b.records}
    comparison.only_a.extend(sorted(set(by_key_a) - set(by_key_b)))
    comparison.only_b.extend(sorted(set(by_key_b) - set(by_key_a)))
    pairs = []
    for key in sorted(set(by_key_a) & set(by_key_b)):
        ra, rb = by_key_a[key], by_key_b[key]
        why = [f"{side} {problem}" for side, r in (("A", ra), ("B", rb)) if (problem := _unusable(r))]
        if why:
            comparison.not_compared.append((key, "; ".join(why)))
            if ra["status"] == "ok" and rb["status"] != "ok":
                comparison.failed_in_b.append(key)
        elif difference := differing_test_set(ra, rb):
            comparison.refused.append((key, difference))
        else:
            if inputs := differing_inputs(ra, rb):
                comparison.inputs_differ.append((key, inputs))
            pairs.append((ra, rb))
    return pairs


# --- deltas -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CellChange:
    """One metric of one paired cell: points in A and B, B - A on every shared resample."""

    cell: dict
    a: float
    b: float
    differences: np.ndarray


def _cell_change(scores_a: BootstrapScores, scores_b: BootstrapScores, ra: dict, rb: dict,
                 metric: str) -> _CellChange | None:
    a, b = record_score(ra, metric), record_score(rb, metric)
    if a is None or b is None:
        return None
    return _CellChange(ra["cell"], a, b, scores_b.values(rb, metric) - scores_a.values(ra, metric))


def _stratified_mean(values: list[float], strata: list) -> float:
    """Mean over strata of each stratum's mean: the weighting ``seed_mean_ci`` uses."""
    by_stratum = defaultdict(list)
    for value, stratum in zip(values, strata):
        by_stratum[stratum].append(value)
    return float(np.mean([np.mean(v) for v in by_stratum.values()]))


def _group_delta(changes: list[_CellChange], alpha: float, seed: int) -> Delta:
    strata = [(c.cell["fraction"], c.cell["upstream"]) for c in changes]
    interval = seed_mean_ci([c.b - c.a for c in changes], np.stack([c.differences for c in changes]), alpha,
                            seed, strata=strata)
    return Delta(_stratified_mean([c.a for c in changes], strata), _stratified_mean([c.b for c in changes], strata),
                 interval)


def _group_key(cell: dict) -> tuple[str, str, str]:
    return cell["downstream"], cell["model"], cell["regime"]


def _group_order(keys: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    keys = set(keys)
    downstreams = canonical_order({k[0] for k in keys}, DOWNSTREAMS)
    models = canonical_order({k[1] for k in keys})
    return sorted(keys, key=lambda k: (downstreams.index(k[0]), models.index(k[1]), REGIME_ORDER.index(k[2])))


def compare(a: SavedRun | Path | str | Iterable[dict], b: SavedRun | Path | str | Iterable[dict],
            metrics: Iterable[str] = DEFAULT_METRICS, *, n_resamples: int = 1000, alpha: float = 0.05,
            seed: int = BOOTSTRAP_SEED) -> Comparison:
    """Pair the cells of runs A and B (saved runs, results folders, saved-run files or records) and measure B - A."""
    comparison = Comparison(as_run(a), as_run(b), _check_metrics(metrics), n_resamples, alpha)
    pairs = _pair(comparison.a, comparison.b, comparison)
    shared = SharedResamples(n_resamples, seed)
    scores_a, scores_b = BootstrapScores(n_resamples, seed, shared), BootstrapScores(n_resamples, seed, shared)
    per_group: dict[tuple, dict[str, list[_CellChange]]] = defaultdict(lambda: defaultdict(list))
    cells_of: dict[tuple, list[str]] = defaultdict(list)
    for ra, rb in pairs:
        deltas = {}
        for metric in comparison.metrics:
            change = _cell_change(scores_a, scores_b, ra, rb, metric)
            if change is None:
                deltas[metric] = Delta(record_score(ra, metric), record_score(rb, metric), NO_INTERVAL)
                continue
            interval = percentile_interval(change.b - change.a, change.differences, alpha)
            deltas[metric] = Delta(change.a, change.b, interval)
            per_group[_group_key(ra["cell"])][metric].append(change)
        comparison.cells.append(Row(ra["key"], (ra["key"],), deltas))
        cells_of[_group_key(ra["cell"])].append(ra["key"])
    for key in _group_order(cells_of):
        changes = per_group[key]
        deltas = {m: _group_delta(changes[m], alpha, seed) if changes[m] else Delta(None, None, NO_INTERVAL)
                  for m in comparison.metrics}
        comparison.groups.append(Row(" / ".join(key), tuple(cells_of[key]), deltas))
    return comparison


# --- the gate -----------------------------------------------------------------------------------------------

def parse_fail_spec(text: str) -> FailSpec:
    """``METRIC:DELTA`` (e.g. ``f1_weighted:0.02``): DELTA is in the metric's own units, a finite number >= 0."""
    example = "expected METRIC:DELTA, e.g. f1_weighted:0.02"
    metric, colon, number = str(text).partition(":")
    if not colon:
        raise CompareError(f"compare-fail spec {text!r}: {example}")
    if metric not in METRICS:
        raise CompareError(f"compare-fail spec {text!r}: unknown metric {metric!r}; choose from {sorted(METRICS)}")
    try:
        delta = float(number)
    except ValueError:
        raise CompareError(f"compare-fail spec {text!r}: DELTA {number!r} is not a number; {example}") from None
    if not math.isfinite(delta) or delta < 0:
        raise CompareError(f"compare-fail spec {text!r}: DELTA must be a finite number >= 0, got {number!r}")
    if delta >= 1:
        raise CompareError(f"compare-fail spec {text!r}: DELTA {number} can never fire: {metric} lies in [0, 1] and "
                           "DELTA is absolute (0.02 = 2 points)")
    return FailSpec(metric, delta)


def regressions(comparison: Comparison, metric: str, delta: float) -> list[Row]:
    """The compared cells whose interval of B - A for ``metric`` lies wholly below ``-delta``."""
    if metric not in comparison.metrics:
        raise CompareError(f"metric {metric!r} was not compared (compared: {list(comparison.metrics)})")
    return [row for row in comparison.cells
            if (high := row.deltas[metric].change.high) is not None and high < -delta]


def gate_failures(comparison: Comparison, spec: FailSpec) -> list[str]:
    """Why ``comparison`` fails the gate ``spec``, one line per cell: each regression, each cell that was ok in A
    and failed in B, each refused pair; and one line when no cell was compared at all (nothing to vouch for).
    A cell only in A is not a failure: B may be a selection of A's grid."""
    lines = [f"{row.name}: {spec.metric} B−A {format_interval(row.deltas[spec.metric].change, signed=True)} lies "
             f"wholly below -{spec.delta:g}" for row in regressions(comparison, spec.metric, spec.delta)]
    lines += [f"{key}: ok in A, failed in B" for key in comparison.failed_in_b]
    lines += [f"{key}: not compared, the test sets differ ({why})" for key, why in comparison.refused]
    return lines if comparison.cells or lines else [NO_CELL_COMPARED]


# --- output -------------------------------------------------------------------------------------------------

def _value(value: float | None) -> str:
    return UNDEFINED if value is None else f"{value:.3f}"


def _table(comparison: Comparison, rows: list[Row], first: str, tablefmt: str) -> str:
    """Groups (``first`` = "group": with a cell count) or cells; Markdown tables also show the A and B values."""
    counted, with_values = first == "group", tablefmt == "github"
    headers = [first] + (["cells"] if counted else [])
    for metric in comparison.metrics:
        headers += ([f"{metric} A", f"{metric} B"] if with_values else []) + [f"Δ {metric} (B−A)", "verdict"]
    lines = []
    for row in rows:
        line = [row.name] + ([len(row.cells)] if counted else [])
        for metric in comparison.metrics:
            d = row.deltas[metric]
            line += ([_value(d.a), _value(d.b)] if with_values else []) + [format_interval(d.change, signed=True),
                                                                            d.verdict]
        lines.append(line)
    return tabulate(lines, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def _verdict_counts(comparison: Comparison) -> str:
    parts = []
    for metric in comparison.metrics:
        verdicts = [row.deltas[metric].verdict for row in comparison.cells]
        parts.append(f"{metric}: {verdicts.count(BETTER)} better, {verdicts.count(WORSE)} worse, "
                     f"{verdicts.count(NO_CLEAR_CHANGE)} no clear change")
    return "; ".join(parts)


def _side(run: SavedRun) -> str:
    ok = sum(r["status"] == "ok" for r in run.records)
    commits = sorted({str((r["environment"] or {}).get("commit", "unknown")) for r in run.records})
    digests = ", ".join(f"{d} ({n})" for d, n in code_digest_counts(run.records).items())
    where = f" ({run.path})" if run.path else ""
    return (f"{run.label}{where}: {len(run.records)} cells ({ok} ok); commits {', '.join(commits)}; "
            f"code digests {digests}")


def _listing(pairs: list[tuple[str, str]] | list[str], limit: int | None) -> list[str]:
    shown = pairs if limit is None else pairs[:limit]
    lines = [f"{p[0]}: {p[1]}" if isinstance(p, tuple) else p for p in shown]
    return lines + ([f"... and {len(pairs) - limit} more"] if limit is not None and len(pairs) > limit else [])


def _sections(comparison: Comparison, limit: int | None) -> list[tuple[str, list[str]]]:
    return [(title, _listing(items, limit)) for title, items in (
        ("Refused: the test sets differ", comparison.refused),
        ("Paired although the inputs differ (same test records, labels and split)", comparison.inputs_differ),
        ("Not compared", comparison.not_compared),
        (f"Only in A ({comparison.a.label})", comparison.only_a),
        (f"Only in B ({comparison.b.label})", comparison.only_b)) if items]


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: provenance of both runs, groups, every cell, and the unpaired cells."""
    lines = [f"# ecgbench comparison: {comparison.b.label} vs {comparison.a.label}", "",
             f"- A: {_side(comparison.a)}", f"- B: {_side(comparison.b)}",
             f"- method: B − A on the same test records, {100 * (1 - comparison.alpha):g} % paired percentile "
             f"bootstrap ({comparison.n_resamples} resamples); a group averages over seeds (redrawn within each "
             "fraction and upstream), then over fractions and upstreams; better / worse when the whole interval "
             "lies above / below 0",
             f"- cells compared: {len(comparison.cells)} ({_verdict_counts(comparison)})", ""]
    for title, items in _sections(comparison, None):
        lines += [f"## {title}", "", *[f"- {item}" for item in items], ""]
    if comparison.groups:
        lines += ["## By downstream / model / regime", "", _table(comparison, comparison.groups, "group", "github"),
                  "", "## By cell", "", _table(comparison, comparison.cells, "cell", "github"), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_comparison(comparison: Comparison, path: Path) -> Path:
    """Write the Markdown comparison atomically."""
    atomic_write_bytes(Path(path), comparison_markdown(comparison).encode())
    return Path(path)


def terminal_table(comparison: Comparison) -> str:
    """The groups, every cell with a clear change, and the unpaired cells (ten per list), for a terminal."""
    lines = [f"ecgbench compare: B = {comparison.b.label} vs A = {comparison.a.label}: "
             f"{len(comparison.cells)} cells compared ({_verdict_counts(comparison)})"]
    if comparison.groups:
        lines.append(_table(comparison, comparison.groups, "group", "simple"))
    changed = [row for row in comparison.cells
               if any(d.verdict in (BETTER, WORSE) for d in row.deltas.values())]
    if changed:
        lines += ["cells with a clear change:", _table(comparison, changed, "cell", "simple")]
    for title, items in _sections(comparison, LISTED):
        lines += [f"{title}:", *[f"  {item}" for item in items]]
    return "\n".join(lines)
