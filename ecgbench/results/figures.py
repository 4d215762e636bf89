"""The report's PNG figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend).

Each figure either draws from the records or says why it cannot; PNGs carry no "Software" metadata, so the
same records give the same bytes on the same matplotlib.
"""
from __future__ import annotations

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
from ecgbench.results.findings import (
    CONVERGENCE_SHARE,
    MIN_EPOCHS,
    Pair,
    canonical_order,
    epochs_to_converge,
    mean_by,
    model_family,
    paired_cells,
    seed_mean_scores,
    shared_validation_metric,
    validation_curve,
)

DPI = 100
SCRATCH_COLOUR, FINETUNE_COLOUR, PRETRAIN_COLOUR = "#8c8c8c", "#1f77b4", "#aec7e8"
FAMILY_STYLE = {"CNN": ("#d62728", "o"), "RNN": ("#2ca02c", "^"), None: ("#7f7f7f", "s")}
MODEL_MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")
VALIDATION_LABELS = {"val_f1_weighted": "validation weighted F1", "val_auroc_macro": "validation macro AUROC",
                     "val_loss": "validation loss"}


@dataclass(frozen=True)
class FigureOutcome:
    """One figure of the report: where it was written, or why it was skipped."""

    name: str
    title: str
    path: Path | None
    skipped_because: str | None = None


def _new_figure(width: float, height: float) -> Figure:
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
    """A figure with ``n_panels`` axes, row-major; wide enough for a one-line title and a legend below."""
    columns = min(max_columns, n_panels)
    rows = -(-n_panels // columns)
    figure = _new_figure(max(6.4, 3.4 * columns), panel_height * rows + 0.9)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in axes[n_panels:]:
        unused.remove()
    return figure, list(axes[:n_panels])


# --- (a) the paper's Figure 1 -------------------------------------------------------------------------------

def transfer_summary_figure(pairs: list[Pair]) -> Figure | str:
    """Per upstream -> downstream: scratch and fine-tune weighted F1 per model (markers), model mean (bars)."""
    scores = seed_mean_scores(pairs)
    if not scores:
        return "no fine-tune cell has an ok scratch twin with a defined weighted F1"
    panels = sorted({k[:2] for k in scores})
    models = canonical_order(k[3] for k in scores)
    markers = {m: MODEL_MARKERS[i % len(MODEL_MARKERS)] for i, m in enumerate(models)}
    figure, panel_axes = panelled_figure(len(panels), 3.0)
    for axes, (upstream, downstream) in zip(panel_axes, panels):
        fractions = sorted({k[2] for k in scores if k[:2] == (upstream, downstream)})
        for x, fraction in enumerate(fractions):
            per_model = {k[3]: v for k, v in scores.items() if k[:3] == (upstream, downstream, fraction)}
            for offset, column, colour in ((-0.2, 0, SCRATCH_COLOUR), (0.2, 1, FINETUNE_COLOUR)):
                axes.bar(x + offset, mean(v[column] for v in per_model.values()), width=0.38, color=colour,
                         alpha=0.6)
                for model, values in per_model.items():
                    axes.plot(x + offset, values[column], markers[model], color="black", markersize=4)
        axes.set_xticks(range(len(fractions)), [f"{f:g}" for f in fractions])
        axes.set_ylim(0, 1)
        axes.set_title(f"{upstream} -> {downstream}", fontsize=10)
        axes.set_xlabel("downstream training fraction")
        axes.set_ylabel("test weighted F1")
    handles = [Patch(color=SCRATCH_COLOUR, alpha=0.6, label="scratch (mean over models)"),
               Patch(color=FINETUNE_COLOUR, alpha=0.6, label="fine-tune (mean over models)")]
    handles += [Line2D([], [], marker=markers[m], color="black", linestyle="", label=m) for m in models]
    legend_below(figure, handles)
    figure.suptitle("Fine-tune vs scratch (markers: models, bars: their mean)")
    return figure


# --- (b) gain against training size -------------------------------------------------------------------------

def _training_size(pair: Pair) -> float | None:
    sizes = pair.finetune.get("sizes") or {}
    return sizes.get("train")


def gain_vs_size_figure(pairs: list[Pair]) -> Figure | str:
    """Fine-tune minus scratch weighted F1 against the downstream training size, CNNs vs RNNs."""
    gains = [(p, g) for p in pairs if (g := p.gain()) is not None]
    if not gains:
        return "no fine-tune/scratch pair with a defined weighted F1"
    use_sizes = all(_training_size(p) for p, _ in gains)
    x_of = _training_size if use_sizes else (lambda p: float(p.cell["fraction"]))
    figure = _new_figure(6.4, 4.8)
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

def _mean_curve(curves: list[list[float]]) -> np.ndarray:
    """Mean per epoch over the runs still training at that epoch (early stopping shortens runs)."""
    length = max(len(c) for c in curves)
    padded = np.full((len(curves), length), np.nan)
    for row, curve in zip(padded, curves):
        row[:len(curve)] = curve
    return np.nanmean(padded, axis=0)


def learning_curves_figure(pairs: list[Pair]) -> Figure | str:
    """Validation score per epoch, fine-tune vs scratch, per downstream and fraction; dots: 95 % of best."""
    usable = [p for p in pairs
              if min(len(p.finetune.get("history") or []), len(p.scratch.get("history") or [])) >= MIN_EPOCHS]
    metric = shared_validation_metric(h for p in usable for h in (p.finetune["history"], p.scratch["history"]))
    if not usable or metric is None:
        return f"no pair trained {MIN_EPOCHS}+ epochs in both runs with a validation metric at every epoch"
    panels = sorted({(p.cell["downstream"], float(p.cell["fraction"])) for p in usable})
    figure, panel_axes = panelled_figure(len(panels), 2.8)
    for axes, (downstream, fraction) in zip(panel_axes, panels):
        members = [p for p in usable if (p.cell["downstream"], float(p.cell["fraction"])) == (downstream, fraction)]
        for regime, colour in (("scratch", SCRATCH_COLOUR), ("finetune", FINETUNE_COLOUR)):
            records = {getattr(p, regime)["key"]: getattr(p, regime) for p in members}
            curves = [validation_curve(records[k]["history"], metric) for k in sorted(records)]
            for curve in curves:
                axes.plot(range(1, len(curve) + 1), curve, color=colour, alpha=0.25, linewidth=0.8)
            average = _mean_curve(curves)
            converged = epochs_to_converge(list(average), metric)
            axes.plot(range(1, len(average) + 1), average, color=colour, linewidth=2)
            axes.plot(converged, average[converged - 1], "o", color=colour, markeredgecolor="black")
        axes.set_title(f"{downstream}, fraction {fraction:g}", fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(VALIDATION_LABELS[metric], fontsize=8)
    handles = [Line2D([], [], color=SCRATCH_COLOUR, linewidth=2, label="scratch (mean; thin: runs)"),
               Line2D([], [], color=FINETUNE_COLOUR, linewidth=2, label="fine-tune (mean; thin: runs)"),
               Line2D([], [], marker="o", color="white", markeredgecolor="black", linestyle="",
                      label=f"first epoch within {1 - CONVERGENCE_SHARE:.0%} of the mean curve's best")]
    legend_below(figure, handles)
    figure.suptitle("Learning curves: fine-tune vs scratch")
    return figure


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


def _pretrain_seconds(pair: Pair) -> float:
    return (pair.finetune.get("timing") or {}).get("pretrain_s") or 0.0


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


def compute_figure(pairs: list[Pair]) -> Figure | str:
    """Epochs to the best validation epoch and wall time per model, fine-tune vs scratch (+ pre-training)."""
    epochs, walls = mean_by(pairs, _epochs_to_best, _model_of), mean_by(pairs, _train_times, _model_of)
    if not epochs or not walls:
        return "no fine-tune/scratch pair records both its best epoch and its training time"
    figure = _new_figure(10, 4.2)
    left, right = figure.subplots(1, 2)
    _scratch_and_finetune_bars(left, epochs, "epochs to best validation epoch", "Epochs to converge (best_epoch + 1)")
    _scratch_and_finetune_bars(right, walls, "training seconds per cell (mean)",
                               "Training time, with and without pre-training")
    models = canonical_order(m for (m,) in walls)
    pretrain = [mean(_pretrain_seconds(p) for p in pairs if p.cell["model"] == m) for m in models]
    right.bar(np.arange(len(models)) + 0.2, pretrain, 0.4, bottom=[walls[(m,)][1] for m in models],
              color=PRETRAIN_COLOUR, label="+ its upstream pre-training")
    legend_below(figure, right.get_legend_handles_labels()[0])
    figure.suptitle("Compute: fine-tune vs scratch")
    return figure


FIGURES: tuple[tuple[str, str, Callable[[list[Pair]], Figure | str]], ...] = (
    ("figure1_transfer.png", "Fine-tune vs scratch per upstream and downstream (the paper's Figure 1)",
     transfer_summary_figure),
    ("gain_vs_size.png", "Gain from fine-tuning vs downstream training size", gain_vs_size_figure),
    ("learning_curves.png", "Learning curves, fine-tune vs scratch", learning_curves_figure),
    ("compute.png", "Epochs and wall time to converge", compute_figure),
)


def render_figures(records: list[dict], out_dir: Path) -> list[FigureOutcome]:
    """Draw every figure the records support into ``out_dir``; the others come back with the reason.

    A skipped figure's file from an earlier report is removed, so the directory never shows a stale figure.
    """
    pairs = paired_cells(records)
    outcomes = []
    for name, title, draw in FIGURES:
        drawn = draw(pairs)
        if isinstance(drawn, str):
            (Path(out_dir) / name).unlink(missing_ok=True)
            outcomes.append(FigureOutcome(name, title, None, drawn))
        else:
            outcomes.append(FigureOutcome(name, title, save_figure(drawn, Path(out_dir) / name)))
    return outcomes
