"""Records as a pandas DataFrame, one row per cell, so results are analysed in a notebook without our JSON.

Columns: the cell's axes, status and first error line, test metrics with 95 % bootstrap intervals (the
leaderboard's, from the stored predictions), sizes, epochs, timings, and provenance (profile, data source, ids,
code digest, commit, dirty flag, versions, device, creation time). An undefined value is NaN/None, never 0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from ecgbench.atomic import atomic_path
from ecgbench.codeid import record_code_digest
from ecgbench.results.bootstrap import METRICS
from ecgbench.results.markdown import first_line
from ecgbench.results.record_intervals import BootstrapScores
from ecgbench.results.runs import SavedRun, as_run

AXES = ("key", "upstream", "downstream", "model", "fraction", "regime", "seed")
TEST_METRICS = ("f1_weighted", "f1_macro", "auroc_macro", "auprc_macro")
FORMATS = ("csv", "json")


def _row(record: dict, scores: BootstrapScores | None) -> dict:
    cell, test = record["cell"], record["test"] or {}
    sizes, timing, environment = record["sizes"] or {}, record["timing"] or {}, record["environment"] or {}
    row = {"key": record["key"], **{axis: cell[axis] for axis in AXES[1:]}, "status": record["status"],
           "error": first_line(record["error"])}
    for metric in TEST_METRICS:
        row[metric] = test.get(metric)
        if scores is not None and metric in METRICS:
            interval = scores.group_interval([record], metric) if record["status"] == "ok" else None
            row[f"{metric}_low"] = interval.low if interval else None
            row[f"{metric}_high"] = interval.high if interval else None
    row.update({
        "n_test": sizes.get("test"), "n_train": sizes.get("train"), "n_val": sizes.get("val"),
        "n_train_full": sizes.get("train_full"), "best_epoch": record["best_epoch"],
        "epochs_run": len(record["history"] or []), "stop_reason": record["stop_reason"],
        "wall_s": timing.get("wall_s"), "train_s": timing.get("train_s"), "pretrain_s": timing.get("pretrain_s"),
        "pretrain_built_here": timing.get("pretrain_built_here"),
        "profile": record["profile"], "data_source": record["data_source"], "cell_id": record["cell_id"],
        "code_digest": record_code_digest(record), "commit": environment.get("commit"),
        "dirty": environment.get("dirty"), "ecgbench": environment.get("ecgbench"),
        "torch": environment.get("torch"), "python": environment.get("python"),
        "device": environment.get("device"), "device_name": environment.get("device_name"),
        "peak_rss_mb": environment.get("peak_rss_mb"), "peak_gpu_mb": environment.get("peak_gpu_mb"),
        "created": record["created"],
    })
    return row


def to_frame(source: SavedRun | Path | str | Iterable[dict], *, intervals: bool = True,
             n_resamples: int = 1000) -> pd.DataFrame:
    """One row per cell of records, a results folder or a saved run; ``intervals=False`` skips the bootstrap."""
    records = as_run(source).records
    scores = BootstrapScores(n_resamples) if intervals else None
    frame = pd.DataFrame([_row(record, scores) for record in records])
    if frame.empty:
        return frame
    return frame.astype({"fraction": float, "seed": int}).sort_values("key", ignore_index=True)


def frame_text(frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` as CSV or as a JSON list of row objects (undefined values as null)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: choose from {list(FORMATS)}")
    if fmt == "csv":
        return frame.to_csv(index=False)
    return frame.to_json(orient="records", indent=1) + "\n"


def write_frame(source: SavedRun | Path | str | Iterable[dict] | pd.DataFrame, path: Path, fmt: str, *,
                intervals: bool = True, n_resamples: int = 1000) -> Path:
    """Write the frame of ``source`` (or a frame) to ``path`` as ``fmt`` ("csv" or "json"), atomically."""
    frame = source if isinstance(source, pd.DataFrame) else to_frame(source, intervals=intervals,
                                                                       n_resamples=n_resamples)
    text = frame_text(frame, fmt)
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text)
    return Path(path)
