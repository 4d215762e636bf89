"""Do the transferability scores predict fine-tuning? Rank correlations of scores with measured outcomes.

A *cell* here is one (downstream, model, fraction). Across its upstreams, each score (mean over seeds) is rank-
correlated (Kendall tau-b and Spearman rho, ``scipy.stats``) with (a) the measured fine-tune test weighted F1 and
(b) the fine-tune-minus-scratch gain (means over the same seeds). Intervals are 95 % percentile bootstraps that
redraw both the test records (the report's resamples, ``BootstrapScores``) and the seeds (each
resample also draws the seeds with replacement; score and outcome of an upstream share the drawn seeds, since
seed s of an upstream is the checkpoint pre-trained with seed s and fine-tuned with seed s). Within one cell every
upstream shares the scratch baseline, so (a) and (b) rank the upstreams alike, within a cell and pooled.

A correlation needs at least ``MIN_UPSTREAMS`` upstreams (3): fewer is reported as a status, never a number.
Pooled over the grid, two rows per score: *pooled ranks* (one correlation over the upstreams of every cell with 3
or more, each score and outcome ranked within its own cell: cells are never compared with each other, since a
downstream easier for every upstream, or a model whose scores live on another scale, says nothing about a score)
and *mean over cells* (the mean of the per-cell correlations that exist).

Score records: their shape and their store are ``ecgbench.results.score_records``.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.stats import ConstantInputWarning, kendalltau, rankdata, spearmanr

from ecgbench.data.classes import DOWNSTREAMS
from ecgbench.results.bootstrap import Interval, percentile_interval
from ecgbench.results.figures import MODEL_MARKERS, FigureOutcome, legend_below, panelled_figure, save_figure
from ecgbench.results.findings import TEST_METRIC, canonical_order, record_score
from ecgbench.results.markdown import markdown_table
from ecgbench.results.record_intervals import BootstrapScores, format_interval
from ecgbench.results.score_records import ScoreRecordError, validate_score_record

MIN_UPSTREAMS = 3
POOLED = "pooled ranks"
# The display order of the study's scores (``ecgbench.transfer.scores.SCORES``, a sibling layer this one may not
# import); other scores follow alphabetically, and every direction is read from the score records themselves.
KNOWN_SCORES = ("melep", "leep", "logme")
OUTCOMES = {"f1": "fine-tune weighted F1", "gain": "gain over scratch"}
FIGURE_NAME = "transferability.png"
MAX_PAIR_CELLS = 4_000_000  # resamples x point pairs per Kendall block: bounds memory on the pooled rows
TOO_FEW = f"fewer than {MIN_UPSTREAMS} upstreams: no ranking"
NO_SHARED_SEED = "no seed shared by every upstream"

CellKey = tuple  # (downstream, model, fraction)


# --- rank correlations of many resamples at once ----------------------------------------------------------------

def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair of x, y [B, k] (average ranks for ties); NaN where a row is constant."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))
    return np.divide((rx * ry).sum(axis=1), denominator, out=np.full(len(x), np.nan), where=denominator > 0)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of x, y [B, k]: (concordant - discordant) / sqrt(untied in x * untied in y)."""
    first, second = np.triu_indices(x.shape[1], 1)
    rows_per_block = max(1, MAX_PAIR_CELLS // max(1, len(first)))
    taus = np.full(len(x), np.nan)
    for start in range(0, len(x), rows_per_block):
        block = slice(start, start + rows_per_block)
        sx = np.sign(x[block, first] - x[block, second])
        sy = np.sign(y[block, first] - y[block, second])
        untied = (sx != 0).sum(axis=1) * (sy != 0).sum(axis=1)
        taus[block] = np.divide((sx * sy).sum(axis=1), np.sqrt(untied), out=np.full(len(sx), np.nan),
                                where=untied > 0)
    return taus


def _point(correlation, x: np.ndarray, y: np.ndarray) -> float | None:
    """scipy's correlation of the point estimates; None where it is undefined (a constant side)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        value = correlation(x, y).statistic
    return None if np.isnan(value) else float(value)


CORRELATIONS = {"kendall": (kendalltau, kendall_rows), "spearman": (spearmanr, spearman_rows)}


# --- per-cell data ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellData:
    """One cell's upstreams for one outcome: seed means and their resampled values (None without predictions)."""

    cell: CellKey
    outcome: str
    upstreams: tuple[str, ...]
    n_seeds: int
    scores: dict[str, np.ndarray]  # score -> [U] means over seeds
    outcomes: np.ndarray  # [U]
    resampled_scores: dict[str, np.ndarray] | None  # score -> [B, U]
    resampled_outcomes: np.ndarray | None  # [B, U]
    status: str = "ok"


@dataclass(frozen=True)
class Correlation:
    """Rank correlations of one score with one outcome, or the status saying why there are none."""

    scope: str  # "cell", POOLED or "mean over cells"
    cell: CellKey | None
    score: str
    outcome: str
    n_upstreams: int  # points for POOLED, cells for "mean over cells"
    n_seeds: int | None
    kendall: Interval | None
    spearman: Interval | None
    status: str = "ok"


@dataclass(frozen=True)
class Point:
    """One upstream of one cell: its seed-mean scores and measured gain (a point of the scatter figure)."""

    cell: CellKey
    upstream: str
    scores: dict[str, float]
    gain: float


@dataclass(frozen=True)
class TransferabilityAnalysis:
    """Everything the section and the figure show, computed once from the records."""

    correlations: tuple[Correlation, ...]
    points: tuple[Point, ...]
    higher_is_better: dict[str, bool]
    n_resamples: int
    failed_score_keys: tuple[str, ...]


def _cell_of(cell: dict) -> CellKey:
    return cell["downstream"], cell["model"], float(cell["fraction"])


def _index(score_records: list[dict], outcome_records: list[dict]):
    """Ok scores by (cell, upstream, seed); ok fine-tunes by (cell, upstream, seed); ok scratch by (cell, seed)."""
    scores, tuned, scratch = {}, {}, {}
    for record in score_records:
        if record["status"] == "ok":
            scores[(_cell_of(record), record["upstream"], record["seed"])] = record
    for record in outcome_records:
        if record_score(record, TEST_METRIC) is None:
            continue
        cell, regime = record["cell"], record["cell"]["regime"]
        if regime == "finetune":
            tuned[(_cell_of(cell), cell["upstream"], cell["seed"])] = record
        elif regime == "scratch":
            scratch[(_cell_of(cell), cell["seed"])] = record
    return scores, tuned, scratch


def _cell_data(cell: CellKey, outcome: str, scores: dict, tuned: dict, scratch: dict, names: list[str],
               resampler: BootstrapScores) -> CellData:
    """The upstreams of ``cell`` with a score and an outcome at the seeds every one of them has."""
    seeds_of: dict[str, set] = defaultdict(set)
    for (c, upstream, seed) in scores:
        if c == cell and (c, upstream, seed) in tuned and (outcome == "f1" or (c, seed) in scratch):
            seeds_of[upstream].add(seed)
    upstreams = tuple(canonical_order(seeds_of, DOWNSTREAMS))
    seeds = sorted(set.intersection(*seeds_of.values())) if seeds_of else []
    status = TOO_FEW if len(upstreams) < MIN_UPSTREAMS else "ok" if seeds else NO_SHARED_SEED
    if not seeds:
        return CellData(cell, outcome, upstreams, 0, {n: np.zeros(0) for n in names}, np.zeros(0), None, None,
                        status)

    def outcome_of(upstream, seed) -> float:
        value = record_score(tuned[(cell, upstream, seed)])
        return value - record_score(scratch[(cell, seed)]) if outcome == "gain" else value

    score_table = {n: np.array([[scores[(cell, u, s)]["scores"][n] for s in seeds] for u in upstreams])
                   for n in names}  # [U, K]
    outcome_table = np.array([[outcome_of(u, s) for s in seeds] for u in upstreams])
    resampled = _resampled_outcomes(cell, outcome, upstreams, seeds, tuned, scratch, resampler)
    resampled_scores = resampled_outcomes = None
    if resampled is not None:  # [U, K, B]; each resample also redraws the seeds, shared by score and outcome
        n_resamples = resampled.shape[2]
        drawn = np.random.default_rng(resampler.seed).integers(0, len(seeds), size=(n_resamples, len(seeds)))
        resampled_outcomes = resampled[:, drawn, np.arange(n_resamples)[:, None]].mean(axis=2).T
        resampled_scores = {n: table[:, drawn].mean(axis=2).T for n, table in score_table.items()}
    return CellData(cell, outcome, upstreams, len(seeds), {n: t.mean(axis=1) for n, t in score_table.items()},
                    outcome_table.mean(axis=1), resampled_scores, resampled_outcomes, status)


def _resampled_outcomes(cell, outcome, upstreams, seeds, tuned, scratch, resampler) -> np.ndarray | None:
    """[U, K, B] resampled outcomes; None when a record lacks predictions or the records' test sets differ."""
    records = [tuned[(cell, u, s)] for u in upstreams for s in seeds]
    if outcome == "gain":
        records += [scratch[(cell, s)] for s in seeds]
    test_sets = {resampler.test_set(r) for r in records}
    if None in test_sets or len(test_sets) != 1:
        return None
    values = np.array([[resampler.values(tuned[(cell, u, s)], TEST_METRIC) for s in seeds] for u in upstreams])
    if outcome == "gain":
        values = values - np.array([resampler.values(scratch[(cell, s)], TEST_METRIC) for s in seeds])[None]
    return values


# --- correlations -------------------------------------------------------------------------------------------

def _intervals(x_points, y_points, x_resampled, y_resampled) -> dict[str, Interval | None]:
    out = {}
    for name, (point_fn, rows_fn) in CORRELATIONS.items():
        point = _point(point_fn, x_points, y_points)
        if x_resampled is None:
            out[name] = Interval(point, None, None, 0)
        else:
            out[name] = percentile_interval(point, rows_fn(x_resampled, y_resampled))
    return out


def _cell_correlation(data: CellData, score: str) -> Correlation:
    if data.status != "ok":
        return Correlation("cell", data.cell, score, data.outcome, len(data.upstreams), data.n_seeds, None, None,
                           data.status)
    found = _intervals(data.scores[score], data.outcomes,
                       None if data.resampled_scores is None else data.resampled_scores[score],
                       data.resampled_outcomes)
    return Correlation("cell", data.cell, score, data.outcome, len(data.upstreams), data.n_seeds,
                       found["kendall"], found["spearman"])


def _within_cell_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks among one cell's upstreams (last axis), scaled to (0, 1]."""
    return rankdata(values, axis=-1) / values.shape[-1]


def _pooled_ranks(cells: list[CellData], score: str, outcome: str) -> Correlation:
    """One correlation over the upstreams of every rankable cell, each score and outcome ranked within its own
    cell: a downstream that is easier for every upstream, or a model whose scores live on another scale (LogME
    on 512 or 100 000 features), can then not make a score look predictive."""
    used = [c for c in cells if c.outcome == outcome and c.status == "ok"]
    if not used:
        return Correlation(POOLED, None, score, outcome, 0, None, None, None,
                           f"no cell has {MIN_UPSTREAMS} or more upstreams")
    x = np.concatenate([_within_cell_ranks(c.scores[score]) for c in used])
    y = np.concatenate([_within_cell_ranks(c.outcomes) for c in used])
    x_resampled = y_resampled = None
    if all(c.resampled_outcomes is not None for c in used):
        n = min(len(c.resampled_outcomes) for c in used)
        x_resampled = np.concatenate([_within_cell_ranks(c.resampled_scores[score][:n]) for c in used], axis=1)
        y_resampled = np.concatenate([_within_cell_ranks(c.resampled_outcomes[:n]) for c in used], axis=1)
    found = _intervals(x, y, x_resampled, y_resampled)
    return Correlation(POOLED, None, score, outcome, len(x), None, found["kendall"], found["spearman"])


def _mean_over_cells(cells: list[CellData], score: str, outcome: str) -> Correlation:
    """The mean of the per-cell correlations; its interval from the per-cell resampled correlations."""
    ranked = [c for c in cells if c.outcome == outcome and c.status == "ok"]
    if not ranked:
        return Correlation("mean over cells", None, score, outcome, 0, None, None, None,
                           f"no cell has {MIN_UPSTREAMS} or more upstreams")
    found = {}
    for name, (point_fn, rows_fn) in CORRELATIONS.items():
        points = [p for c in ranked if (p := _point(point_fn, c.scores[score], c.outcomes)) is not None]
        point = mean(points) if points else None
        if any(c.resampled_outcomes is None for c in ranked):
            found[name] = Interval(point, None, None, 0)
            continue
        n = min(len(c.resampled_outcomes) for c in ranked)
        per_cell = np.stack([rows_fn(c.resampled_scores[score][:n], c.resampled_outcomes[:n]) for c in ranked])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample where every cell's value is undefined
            found[name] = percentile_interval(point, np.nanmean(per_cell, axis=0))
    return Correlation("mean over cells", None, score, outcome, len(ranked), None, found["kendall"],
                       found["spearman"])


def _directions(records: list[dict]) -> dict[str, bool]:
    """Each score's direction, the same in every record, else a ScoreRecordError naming the disagreement."""
    directions: dict[str, bool] = {}
    for record in records:
        for name, higher in record["higher_is_better"].items():
            if directions.setdefault(name, bool(higher)) != bool(higher):
                raise ScoreRecordError(f"score record {_score_key(record)}: {name} "
                                       f"higher_is_better={higher}, other records say {directions[name]}")
    return directions


def _ordered(cells) -> list[CellKey]:
    """Cells in canonical downstream and model order, then by fraction."""
    downstreams, models = canonical_order({c[0] for c in cells}, DOWNSTREAMS), canonical_order({c[1] for c in cells})
    return sorted(cells, key=lambda c: (downstreams.index(c[0]), models.index(c[1]), c[2]))


def _score_names(directions: dict[str, bool]) -> list[str]:
    return canonical_order(directions, KNOWN_SCORES)


def _score_key(record: dict) -> str:
    return record.get("key") or (f"{record['upstream']}->{record['downstream']}-{record['model']}"
                                 f"-f{record['fraction']}-s{record['seed']}")


def analyse_transferability(score_records: list[dict], outcome_records: list[dict], *, n_resamples: int = 1000,
                            seed: int = 0) -> TransferabilityAnalysis:
    """Correlations of every score with both outcomes per cell and pooled, and the points of the scatter figure.

    ``outcome_records`` are the study's cell records (``ecgbench.results.schema``): ok fine-tune and scratch
    records with a defined test weighted F1 are used, others ignored.
    """
    for i, record in enumerate(score_records):
        validate_score_record(record, f"score record {i}")
    directions = _directions([r for r in score_records if r["status"] == "ok"])
    names = _score_names(directions)
    scores, tuned, scratch = _index(score_records, outcome_records)
    resampler = BootstrapScores(n_resamples, seed)
    data = [_cell_data(c, outcome, scores, tuned, scratch, names, resampler)
            for c in _ordered({key[0] for key in scores}) for outcome in OUTCOMES]
    correlations = [_cell_correlation(d, n) for d in data for n in names]
    correlations += [pooled(data, n, outcome) for pooled in (_pooled_ranks, _mean_over_cells)
                     for outcome in OUTCOMES for n in names]
    points = [Point(d.cell, u, {n: float(d.scores[n][i]) for n in names}, float(d.outcomes[i]))
              for d in data if d.outcome == "gain" for i, u in enumerate(d.upstreams) if len(d.outcomes)]
    failed = tuple(sorted(_score_key(r) for r in score_records if r["status"] == "failed"))
    return TransferabilityAnalysis(tuple(correlations), tuple(points), directions, n_resamples, failed)


# --- Markdown -----------------------------------------------------------------------------------------------

def _sign_text(higher_is_better: bool) -> str:
    return "+ (higher = more transferable)" if higher_is_better else "− (lower = more transferable)"


def _correlation_text(correlation: Correlation) -> str:
    """``τ +0.333 [-1.000, +1.000]; ρ +0.500 [...]``, or the status when there is no correlation."""
    if correlation.status != "ok":
        return correlation.status
    return (f"τ {format_interval(correlation.kendall, signed=True)}; "
            f"ρ {format_interval(correlation.spearman, signed=True)}")


def transferability_markdown(analysis: TransferabilityAnalysis, figure_name: str | None = None) -> str:
    """The report section: how each score is read, pooled rows, per-cell rows, the figure (when drawn)."""
    names = _score_names(analysis.higher_is_better)
    lines = ["## Transferability scores: do they predict fine-tuning?", ""]
    if not names:
        return "\n".join(lines + ["No transferability score records.", ""])
    lines += [
        "Each score comes from one forward pass of an upstream checkpoint over the downstream training records, "
        "before any fine-tuning. Kendall τ-b and Spearman ρ across upstreams between the score and the measured "
        "outcome (both means over seeds), [95 % CI] from a bootstrap that redraws the test records "
        f"({analysis.n_resamples} resamples) and the seeds. A score that predicts well correlates with the sign "
        "below; a correlation needs 3 or more upstreams. Within one cell every upstream shares the scratch "
        "baseline, so F1 and gain rank the upstreams alike.", "",
        markdown_table([[n, _sign_text(analysis.higher_is_better[n])] for n in names], ["score", "expected sign"]), "",
        f"**Pooled over the grid** ({POOLED}: one correlation over the upstreams of every cell with 3 or more, "
        "each ranked within its own cell, so that cells are never compared with each other; mean over cells: the "
        "mean of the per-cell correlations)", "",
    ]
    pooled = {(c.scope, c.score, c.outcome): c for c in analysis.correlations if c.scope != "cell"}
    rows = [[scope, n, *[f"{pooled[(scope, n, o)].n_upstreams}" for o in OUTCOMES],
             *[_correlation_text(pooled[(scope, n, o)]) for o in OUTCOMES]]
            for scope in (POOLED, "mean over cells") for n in names]
    lines += [markdown_table(rows, ["pooled", "score", *[f"points or cells ({o})" for o in OUTCOMES],
                            *[f"vs {label}" for label in OUTCOMES.values()]]), ""]
    per_cell = defaultdict(dict)
    for c in analysis.correlations:
        if c.scope == "cell":
            per_cell[(c.cell, c.outcome)][c.score] = c
    rows = [[cell[0], cell[1], f"{cell[2]:g}", OUTCOMES[outcome], found[names[0]].n_upstreams,
             found[names[0]].n_seeds, *[_correlation_text(found[n]) for n in names]]
            for (cell, outcome), found in per_cell.items()]
    lines += ["**Per downstream, model and fraction**", "",
              markdown_table(rows, ["downstream", "model", "fraction", "outcome", "upstreams", "seeds", *names]), ""]
    if analysis.failed_score_keys:
        lines += [f"Failed score records ({len(analysis.failed_score_keys)}, left out): "
                  + ", ".join(analysis.failed_score_keys), ""]
    if figure_name:
        lines += [f"![Transferability score vs gain from fine-tuning]({figure_name})", ""]
    return "\n".join(lines)


# --- figure ---------------------------------------------------------------------------------------------------

def transferability_figure(analysis: TransferabilityAnalysis) -> Figure | str:
    """Per score: its seed-mean value against the measured gain, one point per cell and upstream."""
    if not analysis.points:
        return "no upstream has both a score and a fine-tune/scratch pair at a shared seed"
    names = _score_names(analysis.higher_is_better)
    downstreams = canonical_order({p.cell[0] for p in analysis.points}, DOWNSTREAMS)
    models = canonical_order({p.cell[1] for p in analysis.points})
    colours = {d: f"C{i % 10}" for i, d in enumerate(downstreams)}
    markers = {m: MODEL_MARKERS[i % len(MODEL_MARKERS)] for i, m in enumerate(models)}
    figure, panel_axes = panelled_figure(len(names), 3.4, max_columns=3)
    for axes, name in zip(panel_axes, names):
        for point in analysis.points:
            axes.plot(point.scores[name], point.gain, markers[point.cell[1]], color=colours[point.cell[0]],
                      alpha=0.7)
        axes.axhline(0, color="black", linewidth=0.8)
        direction = "higher" if analysis.higher_is_better[name] else "lower"
        axes.set_title(f"{name} ({direction} = more transferable)", fontsize=10)
        axes.set_xlabel(f"{name} (mean over seeds)")
        axes.set_ylabel("gain: fine-tune - scratch weighted F1")
    handles = [Patch(color=colours[d], label=f"downstream {d}") for d in downstreams]
    handles += [Line2D([], [], marker=markers[m], color="black", linestyle="", label=m) for m in models]
    legend_below(figure, handles)
    figure.suptitle("Transferability score vs measured gain (one point per cell and upstream)")
    return figure


def render_transferability_figure(analysis: TransferabilityAnalysis, out_dir: Path) -> FigureOutcome:
    """Write ``transferability.png`` into ``out_dir``, or remove a stale one and say why it was skipped."""
    title = "Transferability score vs measured gain"
    drawn = transferability_figure(analysis)
    path = Path(out_dir) / FIGURE_NAME
    if isinstance(drawn, str):
        path.unlink(missing_ok=True)
        return FigureOutcome(FIGURE_NAME, title, None, drawn)
    return FigureOutcome(FIGURE_NAME, title, save_figure(drawn, path))


def transferability_section(score_records: list[dict], outcome_records: list[dict], out_dir: Path, *,
                            n_resamples: int = 1000) -> tuple[str, list[Path]]:
    """The section's Markdown and the figure written into ``out_dir`` (the one call a report needs)."""
    analysis = analyse_transferability(score_records, outcome_records, n_resamples=n_resamples)
    outcome = render_transferability_figure(analysis, out_dir)
    markdown = transferability_markdown(analysis, outcome.name if outcome.path else None)
    if outcome.path is None:
        markdown += f"\n_figure skipped: {outcome.skipped_because}_\n"
    return markdown, [outcome.path] if outcome.path else []
