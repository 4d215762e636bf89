"""The analysis frame: one row per cell with axes, metrics, intervals, timings and provenance; CSV/JSON export."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from record_factory import make_record

import ecgbench.results
from ecgbench.results import to_frame
from ecgbench.results.bootstrap import bootstrap_ci, macro_auroc_resampled, weighted_f1_resampled
from ecgbench.results.frame import frame_text, write_frame
from ecgbench.results.runs import save_run
from ecgbench.results.store import write_record

N_RESAMPLES = 100


@pytest.fixture
def records() -> list[dict]:
    scratch = make_record("ptb", "resnet1d18", 0.25, "scratch", quality=1.0, n_test=80)
    scratch["identity"]["code_digest"] = "c0de"
    return [scratch, make_record("cpsc2018", "lstm", 1.0, "finetune", seed=1, quality=2.0, n_test=80),
            make_record("ptb", "gru", 1.0, "linear", status="failed", error="ValueError: bad\ntraceback")]


def test_one_row_per_cell_with_axes_metrics_and_provenance(records):
    frame = to_frame(records, n_resamples=N_RESAMPLES)
    assert list(frame["key"]) == sorted(r["key"] for r in records)
    row = frame.set_index("key").loc[records[0]["key"]]
    assert (row["downstream"], row["model"], row["fraction"], row["regime"], row["seed"]) == \
        ("ptb", "resnet1d18", 0.25, "scratch", 0)
    assert pd.isna(row["upstream"])  # scratch has no upstream
    assert row["f1_weighted"] == records[0]["test"]["f1_weighted"]
    assert row["auroc_macro"] == records[0]["test"]["auroc_macro"]
    assert (row["n_test"], row["n_train"], row["epochs_run"], row["wall_s"]) == (80, 250, 6, 10.0)
    assert (row["code_digest"], row["commit"], row["device_name"]) == ("c0de", "abc123def456", "cpu (x86_64)")
    assert frame.dtypes["fraction"] == np.float64 and frame.dtypes["seed"] == np.int64


def test_intervals_are_the_bootstrap_of_the_stored_predictions(records):
    frame = to_frame(records, n_resamples=N_RESAMPLES).set_index("key")
    for record in records[:2]:
        y_true, y_prob = record["predictions"]["y_true"], record["predictions"]["y_prob"]
        for metric, fn in (("f1_weighted", weighted_f1_resampled), ("auroc_macro", macro_auroc_resampled)):
            expected = bootstrap_ci(y_true, y_prob, fn, n_resamples=N_RESAMPLES)
            row = frame.loc[record["key"]]
            assert (row[f"{metric}_low"], row[f"{metric}_high"]) == pytest.approx((expected.low, expected.high))
            assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"]
    assert "f1_macro_low" not in frame.columns  # intervals only for the metrics the bootstrap knows
    assert "f1_weighted_low" not in to_frame(records, intervals=False).columns


def test_a_failed_cell_has_its_error_and_no_numbers(records):
    row = to_frame(records, n_resamples=N_RESAMPLES).set_index("key").loc[records[2]["key"]]
    assert (row["status"], row["error"], row["upstream"]) == ("failed", "ValueError: bad", "ptbxl")
    assert all(pd.isna(row[c]) for c in ("f1_weighted", "auroc_macro", "f1_weighted_low", "n_test", "best_epoch"))


def test_folders_saved_runs_and_records_give_the_same_frame(tmp_path, records):
    folder = tmp_path / "results"
    for record in records:
        write_record(folder, record["key"].replace("->", "_to_"), record)
    saved = save_run(records, "base", tmp_path / "runs", machine="m")
    expected = to_frame(records, n_resamples=N_RESAMPLES)
    pd.testing.assert_frame_equal(to_frame(folder, n_resamples=N_RESAMPLES), expected)
    pd.testing.assert_frame_equal(to_frame(saved.path, n_resamples=N_RESAMPLES), expected)
    pd.testing.assert_frame_equal(to_frame(saved, n_resamples=N_RESAMPLES), expected)


def test_csv_and_json_exports_round_trip(tmp_path, records):
    frame = to_frame(records, n_resamples=N_RESAMPLES)
    csv_path = write_frame(records, tmp_path / "cells.csv", "csv", n_resamples=N_RESAMPLES)
    from_csv = pd.read_csv(csv_path)
    assert list(from_csv.columns) == list(frame.columns)
    assert from_csv["f1_weighted"].tolist()[:2] == pytest.approx(frame["f1_weighted"].tolist()[:2])
    json_path = write_frame(frame, tmp_path / "cells.json", "json")
    rows = json.loads(json_path.read_text())
    assert [r["key"] for r in rows] == frame["key"].tolist()
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["f1_weighted"] is None and failed["upstream"] == "ptbxl"
    assert math.isclose(rows[0]["f1_weighted_high"], frame["f1_weighted_high"][0])


def test_unknown_export_format_is_refused(records):
    with pytest.raises(ValueError, match=r"export format 'xlsx': choose from \['csv', 'json'\]"):
        frame_text(to_frame(records, intervals=False), "xlsx")


def test_results_package_exports_to_frame_lazily():
    assert ecgbench.results.to_frame is to_frame
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ecgbench.results.nope  # noqa: B018
