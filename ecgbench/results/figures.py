"""The report's PNG figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend).

Each figure either draws from the records or says why it cannot; PNGs carry no "Software" metadata, so the
same records give the same bytes on the same matplotlib.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import mean
from typing import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ecgbench.atomic import atomic_path
from ecgbench.results.bootstrap import Interval, seed_mean_ci
from ecgbench.results.findings import (
    CONVERGENCE_SHARE,
    MIN_EPOCHS,
    TEST_METRIC,
    Pair,
    canonical_order,
    epochs_to_converge,
    mean_by,
    model_family,
    paired_cells,
    record_score,
    shared_validation_metric,
    validation_curve,
)
from ecgbench.results.record_intervals import BootstrapScores

DPI = 100
# Okabe & Ito's colour-blind-safe palette (yellow last: it is faint on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
SCRATCH_COLOUR, FINETUNE_COLOUR, LINEAR_COLOUR, PRETRAIN_COLOUR = "#D55E00", "#0072B2", "#009E73", "#56B4E9"
REGIME_COLOURS = {"scratch": SCRATCH_COLOUR, "linear": LINEAR_COLOUR, "finetune": FINETUNE_COLOUR}
REGIME_NAMES = {"scratch": "scratch", "linear": "linear probe", "finetune": "fine-tune"}
FAMILY_STYLE = {"CNN": ("#CC79A7", "o"), "RNN": ("#009E73", "^"), None: ("#000000", "s")}
MODEL_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")
MODEL_LINESTYLES = ("-", "--", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2)))  # ":" marks fewer runs
VALIDATION_LABELS = {"val_f1_weighted": "validation weighted F1", "val_auroc_macro": "validation macro AUROC",
                     "val_loss": "validation loss"}


@dataclass(frozen=True)
class FigureOutcome:
    """One figure of the report: where it was written, or why it was skipped."""

    name: str
    title: str
    path: Path | None
    skipped_because: str | None = None


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write the PNG atomically, without the "Software" tag (so the bytes depend on the records only)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return path


def legend_below(figure: Figure, handles: list) -> None:
    """A legend under the panels with as many columns as fit the figure's width (never clipped at the sides)."""
    labels = [h.get_label() for h in handles]
    entry_width = max(len(label) for label in labels) * 0.07 + 0.6  # inches at fontsize 8, marker included
    columns = max(1, min(len(handles), int(figure.get_figwidth() // entry_width)))
    figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8)


def panelled_figure(n_panels: int, panel_height: float, max_columns: int = 4) -> tuple[Figure, list]:
    """A figure with ``n_panels`` axes, row-major, sharing one y-axis (panels are compared at a glance); wide
    enough for a one-line title and a legend below."""
    columns = min(max_columns, n_panels)
    rows = -(-n_panels // columns)
    figure = new_figure(max(6.4, 3.4 * columns), panel_height * rows + 0.9)
    axes = figure.subplots(rows, columns, squeeze=False, sharey=True).ravel()
    for unused in axes[n_panels:]:
        unused.remove()
    return figure, list(axes[:n_panels])


# --- (a) the paper's Figure 1 -------------------------------------------------------------------------------

@dataclass(frozen=True)
class FigureInputs:
    """What every figure draws from: the records, their fine-tune/scratch pairs, the report's bootstrap values."""

    records: list[dict]
    pairs: list[Pair]
    scores: BootstrapScores


def _model_seed_means(records: list[dict]) -> dict[str, float]:
    by_model = defaultdict(list)
    for record in records:
        by_model[record["cell"]["model"]].append(record_score(record))
    return {model: mean(values) for model, values in by_model.items()}


def regime_interval(scores: BootstrapScores, records: list[dict]) -> Interval | None:
    """Mean over models of each model's mean over seeds, with the bootstrap that redraws test records and the
    seeds within each model; the point alone when the records do not share one test set."""
    scored = sorted((r for r in records if record_score(r) is not None), key=lambda r: r["key"])
    if not scored:
        return None
    values = [scores.values(r, TEST_METRIC) for r in scored]
    if any(v is None for v in values) or len({scores.test_set(r) for r in scored}) != 1:
        return Interval(mean(_model_seed_means(scored).values()), None, None, 0)
    return seed_mean_ci([record_score(r) for r in scored], np.stack(values), seed=scores.seed,
                        strata=[r["cell"]["model"] for r in scored])


def _panel_records(records: list[dict], upstream: str, downstream: str) -> dict[tuple[float, str], list[dict]]:
    """Ok records of a panel by (fraction, regime): scratch of the downstream, linear and fine-tune from upstream."""
    found = defaultdict(list)
    for record in records:
        cell = record["cell"]
        if record["status"] == "ok" and cell["downstream"] == downstream and cell["upstream"] in (None, upstream):
            found[(float(cell["fraction"]), cell["regime"])].append(record)
    return found


def transfer_summary_figure(data: FigureInputs) -> Figure | str:
    """Per upstream -> downstream: scratch, linear-probe and fine-tune weighted F1 per fraction; bars: the mean
    over models with its 95 % interval, markers: each model's mean over seeds; a missing cell is written out."""
    panels = sorted({(p.cell["upstream"], p.cell["downstream"]) for p in data.pairs if p.gain() is not None})
    if not panels:
        return "no fine-tune cell has an ok scratch twin with a defined weighted F1"
    models = canonical_order({r["cell"]["model"] for r in data.records})
    markers = {m: MODEL_MARKERS[i % len(MODEL_MARKERS)] for i, m in enumerate(models)}
    regimes = ("scratch", "linear", "finetune")
    width = 0.27
    figure, panel_axes = panelled_figure(len(panels), 3.2)
    for axes, (upstream, downstream) in zip(panel_axes, panels):
        cells = _panel_records(data.records, upstream, downstream)
        fractions = sorted({f for f, _ in cells})
        for x, fraction in enumerate(fractions):
            for offset, regime in zip((-width, 0.0, width), regimes):
                interval = regime_interval(data.scores, cells.get((fraction, regime), []))
                if interval is None:
                    axes.text(x + offset, 0.02, "no cell", rotation=90, fontsize=7, ha="center", va="bottom")
                    continue
                error = None if interval.low is None else [[interval.point - interval.low],
                                                           [interval.high - interval.point]]
                axes.bar(x + offset, interval.point, width=width * 0.95, color=REGIME_COLOURS[regime], alpha=0.55,
                         edgecolor="black", linewidth=0.6, yerr=error, capsize=2, error_kw={"linewidth": 0.8})
                for model, value in _model_seed_means(cells[(fraction, regime)]).items():
                    axes.plot(x + offset, value, markers[model], color="black", markersize=3.5)
        axes.set_xticks(range(len(fractions)), [f"{f:g}" for f in fractions])
        axes.set_ylim(0, 1)
        axes.set_title(f"{upstream} -> {downstream}", fontsize=10)
        axes.set_xlabel("downstream training fraction")
        axes.set_ylabel("test weighted F1")
    handles = [Patch(facecolor=REGIME_COLOURS[r], alpha=0.55, edgecolor="black",
                     label=f"{REGIME_NAMES[r]} (mean over models, 95 % CI)") for r in regimes]
    handles += [Line2D([], [], marker=markers[m], color="black", linestyle="", label=m) for m in models]
    legend_below(figure, handles)
    figure.suptitle("Scratch, linear probe and fine-tune (bars: mean over models; markers: models; "
                    "a zero score is an outlined flat bar)", fontsize=10)
    return figure


# --- (b) gain against training size -------------------------------------------------------------------------

def _training_size(pair: Pair) -> float | None:
    sizes = pair.finetune.get("sizes") or {}
    return sizes.get("train")


def gain_vs_size_figure(data: FigureInputs) -> Figure | str:
    """Fine-tune minus scratch weighted F1 against the downstream training size, CNNs vs RNNs."""
    gains = [(p, g) for p in data.pairs if (g := p.gain()) is not None]
    if not gains:
        return "no fine-tune/scratch pair with a defined weighted F1"
    use_sizes = all(_training_size(p) for p, _ in gains)
    x_of = _training_size if use_sizes else (lambda p: float(p.cell["fraction"]))
    figure = new_figure(6.4, 4.8)
    axes = figure.subplots()
    for family in canonical_order((model_family(p.cell["model"]) for p, _ in gains), FAMILY_STYLE):
        colour, marker = FAMILY_STYLE[family]
        members = [(x_of(p), g, float(p.cell["fraction"])) for p, g in gains if model_family(p.cell["model"]) == family]
        axes.scatter([m[0] for m in members], [m[1] for m in members], color=colour, marker=marker, alpha=0.5,
                     label=f"{family or 'other'} pairs")
        fractions = sorted({m[2] for m in members})
        trend = [(mean(m[0] for m in members if m[2] == f), mean(m[1] for m in members if m[2] == f))
                 for f in fractions]
        axes.plot([t[0] for t in trend], [t[1] for t in trend], color=colour, linewidth=2,
                  label=f"{family or 'other'} mean per fraction")
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("downstream training records" if use_sizes else "downstream training fraction")
    axes.set_ylabel("gain: fine-tune - scratch weighted F1")
    axes.set_title("Gain from fine-tuning vs downstream training size")
    legend_below(figure, axes.get_legend_handles_labels()[0])
    return figure


# --- (c) learning curves ------------------------------------------------------------------------------------

def _mean_curve(curves: list[list[float]]) -> tuple[np.ndarray, int]:
    """Mean per epoch over the runs still training at that epoch (early stopping shortens runs), and the number
    of epochs every run reached (after it, the mean is over fewer runs and is drawn dotted)."""
    length = max(len(c) for c in curves)
    padded = np.full((len(curves), length), np.nan)
    for row, curve in zip(padded, curves):
        row[:len(curve)] = curve
    return np.nanmean(padded, axis=0), min(len(c) for c in curves)


def learning_curves_figure(data: FigureInputs) -> Figure | str:
    """Validation score per epoch per model, fine-tune vs scratch, per downstream and fraction."""
    usable = [p for p in data.pairs
              if min(len(p.finetune.get("history") or []), len(p.scratch.get("history") or [])) >= MIN_EPOCHS]
    metric = shared_validation_metric(h for p in usable for h in (p.finetune["history"], p.scratch["history"]))
    if not usable or metric is None:
        return f"no pair trained {MIN_EPOCHS}+ epochs in both runs with a validation metric at every epoch"
    panels = sorted({(p.cell["downstream"], float(p.cell["fraction"])) for p in usable})
    models = canonical_order({p.cell["model"] for p in usable})
    styles = {m: MODEL_LINESTYLES[i % len(MODEL_LINESTYLES)] for i, m in enumerate(models)}
    figure, panel_axes = panelled_figure(len(panels), 2.8)
    for axes, (downstream, fraction) in zip(panel_axes, panels):
        members = [p for p in usable if (p.cell["downstream"], float(p.cell["fraction"])) == (downstream, fraction)]
        for model in canonical_order({p.cell["model"] for p in members}):
            for regime, colour in (("scratch", SCRATCH_COLOUR), ("finetune", FINETUNE_COLOUR)):
                records = {getattr(p, regime)["key"]: getattr(p, regime) for p in members if p.cell["model"] == model}
                curves = [validation_curve(records[k]["history"], metric) for k in sorted(records)]
                _draw_runs(axes, curves, colour, styles[model], metric)
        axes.set_title(f"{downstream}, fraction {fraction:g}", fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(VALIDATION_LABELS[metric], fontsize=8)
    handles = [Line2D([], [], color=SCRATCH_COLOUR, linewidth=2, label="scratch"),
               Line2D([], [], color=FINETUNE_COLOUR, linewidth=2, label="fine-tune")]
    handles += [Line2D([], [], color="black", linestyle=styles[m], label=m) for m in models]
    handles += [Line2D([], [], marker="x", color="black", linestyle="", label="a run stops (early stopping)"),
                Line2D([], [], marker="o", color="white", markeredgecolor="black", linestyle="",
                       label=f"mean first within {1 - CONVERGENCE_SHARE:.0%} of its best")]
    legend_below(figure, handles)
    figure.suptitle("Learning curves per model: mean over seeds (thin: each run; dotted: fewer runs left)")
    return figure


def _draw_runs(axes, curves: list[list[float]], colour: str, style, metric: str) -> None:
    """Each run thin with an x where it stops, the mean thick while every run trains and dotted after."""
    for curve in curves:
        axes.plot(range(1, len(curve) + 1), curve, color=colour, alpha=0.3, linewidth=0.7, linestyle=style)
        axes.plot(len(curve), curve[-1], "x", color=colour, markersize=4)
    average, shared = _mean_curve(curves)
    epochs = np.arange(1, len(average) + 1)
    axes.plot(epochs[:shared], average[:shared], color=colour, linewidth=1.8, linestyle=style)
    if shared < len(average):
        axes.plot(epochs[shared - 1:], average[shared - 1:], color=colour, linewidth=1.2, linestyle=":")
    converged = epochs_to_converge(list(average), metric)
    axes.plot(converged, average[converged - 1], "o", color=colour, markeredgecolor="black", markersize=4)


# --- (d) compute ------------------------------------------------------------------------------------------

def _epochs_to_best(pair: Pair) -> tuple[float, float] | None:
    scratch, tuned = pair.scratch.get("best_epoch"), pair.finetune.get("best_epoch")
    return None if scratch is None or tuned is None else (scratch + 1, tuned + 1)


def _train_times(pair: Pair) -> tuple[float, float] | None:
    """Training seconds of each cell; not wall time, which for one cell also holds its upstream's pre-training."""
    scratch, tuned = (r.get("timing") or {} for r in (pair.scratch, pair.finetune))
    if scratch.get("train_s") is None or tuned.get("train_s") is None:
        return None
    return scratch["train_s"], tuned["train_s"]


def _checkpoint_of(cell: dict) -> tuple:
    return cell["upstream"], cell["model"], cell["seed"]


def amortised_pretrain_seconds(records: list[dict]) -> dict[tuple, float]:
    """Per upstream checkpoint (upstream, model, seed): its pre-training seconds divided by the transfer cells
    of ``records`` that start from it, each cell's fair share of what they all reuse."""
    sharing, seconds = defaultdict(int), {}
    for record in records:
        cell = record["cell"]
        if cell["upstream"] is not None:
            sharing[_checkpoint_of(cell)] += 1
            if (pretrain := (record.get("timing") or {}).get("pretrain_s")) is not None:
                seconds[_checkpoint_of(cell)] = pretrain
    return {key: seconds.get(key, 0.0) / n for key, n in sharing.items()}


def _model_of(pair: Pair) -> tuple[str]:
    return (pair.cell["model"],)


def _scratch_and_finetune_bars(axes, by_model: dict[tuple, tuple[float, float]], ylabel: str, title: str) -> None:
    """Side-by-side scratch / fine-tune bars per model."""
    models = canonical_order(m for (m,) in by_model)
    x = np.arange(len(models))
    axes.bar(x - 0.2, [by_model[(m,)][0] for m in models], 0.4, color=SCRATCH_COLOUR, label="scratch")
    axes.bar(x + 0.2, [by_model[(m,)][1] for m in models], 0.4, color=FINETUNE_COLOUR, label="fine-tune")
    axes.set_xticks(x, models, rotation=30, ha="right")
    axes.set_ylabel(ylabel)
    axes.set_title(title)


def compute_figure(data: FigureInputs) -> Figure | str:
    """Epochs to the best validation epoch and training time per model, fine-tune vs scratch; fine-tuning also
    carries its share of the upstream pre-training, amortised over the transfer cells that reuse the checkpoint."""
    pairs = data.pairs
    epochs, walls = mean_by(pairs, _epochs_to_best, _model_of), mean_by(pairs, _train_times, _model_of)
    if not epochs or not walls:
        return "no fine-tune/scratch pair records both its best epoch and its training time"
    share = amortised_pretrain_seconds(data.records)
    figure = new_figure(10, 4.4)
    left, right = figure.subplots(1, 2)
    _scratch_and_finetune_bars(left, epochs, "epochs to best validation epoch", "Epochs to converge (best_epoch + 1)")
    _scratch_and_finetune_bars(right, walls, "training seconds per cell (mean)",
                               "Training time per cell")
    models = canonical_order(m for (m,) in walls)
    pretrain = [mean(share.get(_checkpoint_of(p.cell), 0.0) for p in pairs if p.cell["model"] == m) for m in models]
    right.bar(np.arange(len(models)) + 0.2, pretrain, 0.4, bottom=[walls[(m,)][1] for m in models],
              color=PRETRAIN_COLOUR, edgecolor=FINETUNE_COLOUR, hatch="//",
              label="+ pre-training / transfer cells sharing the checkpoint")
    legend_below(figure, right.get_legend_handles_labels()[0])
    figure.suptitle("Compute: fine-tune vs scratch (pre-training amortised over the cells that reuse it)")
    return figure


FIGURES: tuple[tuple[str, str, Callable[[FigureInputs], Figure | str]], ...] = (
    ("figure1_transfer.png", "Scratch, linear probe and fine-tune per upstream and downstream (the paper's Figure 1)",
     transfer_summary_figure),
    ("gain_vs_size.png", "Gain from fine-tuning vs downstream training size", gain_vs_size_figure),
    ("learning_curves.png", "Learning curves, fine-tune vs scratch", learning_curves_figure),
    ("compute.png", "Epochs and training time to converge (pre-training amortised)", compute_figure),
)


def render_figures(records: list[dict], out_dir: Path, scores: BootstrapScores) -> list[FigureOutcome]:
    """Draw every figure the records support into ``out_dir``; the others come back with the reason.

    A skipped figure's file from an earlier report is removed, so the directory never shows a stale figure.
    """
    data = FigureInputs(records, paired_cells(records), scores)
    outcomes = []
    for name, title, draw in FIGURES:
        drawn = draw(data)
        if isinstance(drawn, str):
            (Path(out_dir) / name).unlink(missing_ok=True)
            outcomes.append(FigureOutcome(name, title, None, drawn))
        else:
            outcomes.append(FigureOutcome(name, title, save_figure(drawn, Path(out_dir) / name)))
    return outcomes
