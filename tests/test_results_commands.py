"""``ecgbench runs``, ``ecgbench compare`` and ``ecgbench export`` on saved runs and results folders."""
from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from record_factory import make_record

from ecgbench.cli import main
from ecgbench.results import frame
from ecgbench.results.commands import EXPORT_FORMATS
from ecgbench.results.runs import save_run
from ecgbench.results.store import write_record

CELLS = [("ptb", "resnet1d18", 1.0, "scratch", 0), ("ptb", "lstm", 1.0, "scratch", 0),
         ("ptb", "lstm", 0.25, "scratch", 0)]


def _run(lstm_quality: float) -> list[dict]:
    return [make_record(*cell, quality=lstm_quality if cell[1] == "lstm" else 1.5, n_test=150) for cell in CELLS]


@pytest.fixture
def runs(tmp_path):
    """A saved baseline under ``runs/`` and a results folder whose lstm cells are clearly worse."""
    save_run(_run(1.5), "baseline", tmp_path / "runs", machine="m")
    for record in _run(0.0):
        write_record(tmp_path / "results", record["key"], record)
    return tmp_path


def test_runs_lists_saved_runs(runs, capsys):
    assert main(["runs", "--runs", str(runs / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["machine", "number", "name", "MiB", "saved", "(UTC)", "path"]
    assert out.splitlines()[2].split()[:3] == ["m", "0001", "baseline"]
    assert main(["runs", "--runs", str(runs / "none")]) == 0
    assert capsys.readouterr().out == "no saved runs\n"


def test_compare_prints_the_table_writes_markdown_and_gates(runs, capsys):
    args = ["compare", "baseline", str(runs / "results"), "--runs", str(runs / "runs"), "--resamples", "200"]
    assert main([*args, "--out", str(runs / "compare.md")]) == 0
    out = capsys.readouterr().out
    assert "ecgbench compare: B = " in out and "vs A = 0001_baseline: 3 cells compared" in out
    assert f"wrote {runs / 'compare.md'}" in out
    markdown = (runs / "compare.md").read_text()
    assert "| ptb / lstm / scratch " in markdown and "f1_weighted: 0 better, 2 worse, 1 no clear change" in markdown
    assert main([*args, "--metric", "auroc_macro", "--fail", "f1_weighted:0.02"]) == 1
    captured = capsys.readouterr()
    failing = sorted(line.split(": ")[1] for line in captured.err.splitlines())
    assert failing == ["ptb-lstm-f0.25-scratch-s0", "ptb-lstm-f1.0-scratch-s0"]
    assert "Δ auroc_macro (B−A)" in captured.out and "Δ f1_weighted (B−A)" in captured.out
    assert main([*args, "--fail", "f1_weighted:0.9"]) == 0  # no cell lost 0.9


@pytest.mark.parametrize("extra, message", [
    (["--metric", "accuracy"], "choose from ['auroc_macro', 'f1_weighted']"),
    (["--fail", "f1_weighted"], "expected METRIC:DELTA"),
])
def test_compare_names_bad_options(runs, capsys, extra, message):
    assert main(["compare", "baseline", str(runs / "results"), "--runs", str(runs / "runs"), *extra]) == 2
    assert message in capsys.readouterr().err


def test_compare_names_an_unknown_run(runs, capsys):
    assert main(["compare", "nope", str(runs / "results"), "--runs", str(runs / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no saved run 'nope'" in err and "(saved runs: m/0001_baseline)" in err


def test_export_writes_the_frame_as_csv_or_json(runs, capsys):
    expected = frame.to_frame(runs / "results", n_resamples=100)
    assert main(["export", str(runs / "results"), "--resamples", "100"]) == 0
    exported = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(exported.columns) == list(expected.columns) and list(exported["key"]) == list(expected["key"])
    assert exported["f1_weighted_low"].tolist() == pytest.approx(expected["f1_weighted_low"].tolist())
    assert main(["export", "1", "--runs", str(runs / "runs"), "--format", "json", "--out",
                 str(runs / "cells.json"), "--resamples", "100"]) == 0
    assert "(3 cells)" in capsys.readouterr().err
    rows = json.loads((runs / "cells.json").read_text())
    assert sorted(row["key"] for row in rows) == sorted(expected["key"])
    assert all(row["f1_weighted_low"] <= row["f1_weighted"] <= row["f1_weighted_high"] for row in rows)


def test_export_formats_are_the_frames():
    assert EXPORT_FORMATS == frame.FORMATS


def test_report_and_export_name_a_missing_folder_a_wrong_profile_and_an_out_of_the_wrong_kind(runs, capsys):
    results = str(runs / "results")
    (runs / "a-file").write_text("x")
    cases = [(["report", "--results", str(runs / "nope"), "--out", str(runs / "r")], 1,
              f"--results {runs / 'nope'}: no such folder"),
             (["report", "--results", results, "--out", str(runs / "a-file")], 1, "is a file, not a folder"),
             (["report", "--results", results, "--out", str(runs / "r"), "--profile", "nope"], 1,
              "no result records of profile nope in"),
             (["export", results, "--out", str(runs)], 2, f"is a folder, expected a file name: '{runs}'")]
    for args, code, message in cases:
        assert main(args) == code, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
