"""Comparing two runs: paired intervals decide better / worse from the predictions, unpairable cells are named."""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from record_factory import make_record, predictions

from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.metrics import classification_metrics
from ecgbench.results.compare import (
    BETTER,
    NO_CELL_COMPARED,
    NO_CLEAR_CHANGE,
    WORSE,
    CompareError,
    FailSpec,
    compare,
    comparison_markdown,
    gate_failures,
    parse_fail_spec,
    regressions,
    terminal_table,
    write_comparison,
)
from ecgbench.results.runs import save_run
from ecgbench.results.store import write_record

N_RESAMPLES = 200
CELLS = [("ptb", "resnet1d18", 1.0, "scratch", 0, None), ("ptb", "resnet1d18", 1.0, "finetune", 0, "ptbxl"),
         ("ptb", "lstm", 1.0, "scratch", 0, None), ("ptb", "lstm", 1.0, "finetune", 0, "ptbxl"),
         ("cpsc2018", "lstm", 0.25, "scratch", 0, None)]


def _run(quality: float = 1.5, worse_model: str | None = None, worse_quality: float = 0.1) -> list[dict]:
    """One record per cell of ``CELLS``; the cells of ``worse_model`` get predictions of ``worse_quality``."""
    return [make_record(*cell, quality=worse_quality if cell[1] == worse_model else quality, n_test=200)
            for cell in CELLS]


def _with_noise(record: dict, quality: float, noise: str) -> dict:
    """The same cell and test records re-predicted with other noise (a re-run), metrics recomputed."""
    record = copy.deepcopy(record)
    labels = np.array(record["predictions"]["y_true"], dtype=bool)
    probabilities = predictions(labels, quality, record["key"] + noise)
    record["predictions"]["y_prob"] = probabilities.tolist()
    record["test"] = classification_metrics(labels, probabilities, DATASET_CLASSES[record["cell"]["downstream"]])
    return record


def _verdicts(rows, metric="f1_weighted") -> dict[str, str]:
    return {row.name: row.deltas[metric].verdict for row in rows}


def test_identical_runs_show_no_change_with_a_zero_interval():
    run = _run()
    comparison = compare(run, copy.deepcopy(run), n_resamples=N_RESAMPLES)
    assert len(comparison.cells) == len(CELLS)
    for row in comparison.cells + comparison.groups:
        for metric in ("f1_weighted", "auroc_macro"):
            change = row.deltas[metric].change
            assert (change.point, change.low, change.high) == (0.0, 0.0, 0.0)
            assert row.deltas[metric].verdict == NO_CLEAR_CHANGE
    assert regressions(comparison, "f1_weighted", 0.0) == []
    assert not (comparison.only_a or comparison.only_b or comparison.refused or comparison.not_compared)


def test_a_clearly_worse_model_is_detected_from_its_predictions_and_only_it():
    baseline, changed = _run(), _run(worse_model="lstm")
    comparison = compare(baseline, changed, n_resamples=N_RESAMPLES)
    lstm = {r["key"] for r in changed if r["cell"]["model"] == "lstm"}
    for metric in ("f1_weighted", "auroc_macro"):
        verdicts = _verdicts(comparison.cells, metric)
        assert {k for k, v in verdicts.items() if v == WORSE} == lstm
        assert {k for k, v in verdicts.items() if v != WORSE} == {v for v in verdicts if v not in lstm}
        assert all(v == NO_CLEAR_CHANGE for k, v in verdicts.items() if k not in lstm)  # same predictions there
    groups = _verdicts(comparison.groups)
    assert groups == {"ptb / resnet1d18 / scratch": NO_CLEAR_CHANGE, "ptb / resnet1d18 / finetune": NO_CLEAR_CHANGE,
                      "ptb / lstm / scratch": WORSE, "ptb / lstm / finetune": WORSE,
                      "cpsc2018 / lstm / scratch": WORSE}
    cell = next(row for row in comparison.cells if row.name == "ptb-lstm-f1.0-scratch-s0").deltas["f1_weighted"]
    assert cell.change.point == pytest.approx(cell.b - cell.a)
    assert cell.change.high < 0 and cell.b < cell.a
    assert {row.name for row in regressions(comparison, "f1_weighted", 0.02)} == lstm
    assert regressions(comparison, "f1_weighted", 5.0) == []  # no interval lies below -5
    failures = gate_failures(comparison, FailSpec("f1_weighted", 0.02))
    assert sorted(line.split(":")[0] for line in failures) == sorted(lstm)
    assert all(re.search(r"f1_weighted B−A -0\.\d{3} \[-0\.\d{3}, -0\.\d{3}\] lies wholly below -0\.02$", line)
               for line in failures)
    reverse = compare(changed, baseline, n_resamples=N_RESAMPLES)
    assert {k for k, v in _verdicts(reverse.cells).items() if v == BETTER} == lstm
    assert regressions(reverse, "f1_weighted", 0.0) == []


def test_reruns_of_equal_quality_are_flagged_about_as_rarely_as_the_interval_promises():
    """Twenty re-runs with fresh prediction noise: about 5 % of the cells may cross 0 by chance, not more."""
    baseline = _run(quality=1.5)
    verdicts = []
    for k in range(20):
        comparison = compare(baseline, [_with_noise(r, 1.5, f"-rerun{k}") for r in baseline],
                             metrics=["f1_weighted"], n_resamples=N_RESAMPLES)
        assert all(row.deltas["f1_weighted"].change.point != 0 for row in comparison.cells)  # predictions changed
        verdicts += list(_verdicts(comparison.cells).values())
    flagged = sum(v != NO_CLEAR_CHANGE for v in verdicts) / len(verdicts)
    assert flagged <= 0.12


def test_a_group_averages_seeds_within_a_fraction_then_fractions():
    cells = [("ptb", "gru", 0.05, "scratch", 0), ("ptb", "gru", 0.05, "scratch", 1), ("ptb", "gru", 1.0, "scratch", 0)]
    a = [make_record(*c, quality=1.0, n_test=150) for c in cells]
    b = [_with_noise(r, q, "-b") for r, q in zip(a, (2.0, 2.0, 0.5))]
    comparison = compare(a, b, metrics=["f1_weighted"], n_resamples=N_RESAMPLES)
    change = {row.name: row.deltas["f1_weighted"].change.point for row in comparison.cells}
    small = (change[a[0]["key"]] + change[a[1]["key"]]) / 2
    group = comparison.groups[0].deltas["f1_weighted"]
    assert group.change.point == pytest.approx((small + change[a[2]["key"]]) / 2)
    assert group.b - group.a == pytest.approx(group.change.point)
    assert comparison.groups[0].cells == tuple(r["key"] for r in sorted(a, key=lambda r: r["key"]))


def test_cells_whose_test_sets_differ_are_refused_and_named():
    baseline = _run()
    changed = copy.deepcopy(baseline)
    changed[0] = make_record(*CELLS[0], quality=1.5, n_test=150)  # other test records
    changed[2]["identity"]["split_digest"] = "other-split"
    comparison = compare(baseline, changed, n_resamples=N_RESAMPLES)
    refused = dict(comparison.refused)
    assert refused == {
        baseline[0]["key"]: "test record ids differ (200 vs 150 records, 50 in one only)",
        baseline[2]["key"]: "split digest None vs other-split",
    }
    assert {row.name for row in comparison.cells} == {baseline[k]["key"] for k in (1, 3, 4)}
    labels_changed = copy.deepcopy(baseline)
    labels_changed[4]["predictions"]["y_true"][0] = [1 - v for v in labels_changed[4]["predictions"]["y_true"][0]]
    assert dict(compare(baseline, labels_changed, n_resamples=N_RESAMPLES).refused)[baseline[4]["key"]] == \
        "test labels differ on the same records"
    assert "Refused: the test sets differ" in terminal_table(comparison)
    assert f"- {baseline[2]['key']}: split digest None vs other-split" in comparison_markdown(comparison)
    failures = gate_failures(comparison, FailSpec("f1_weighted", 0.02))
    assert failures == [f"{key}: not compared, the test sets differ ({why})" for key, why in sorted(refused.items())]


def test_cells_on_the_same_test_records_whose_inputs_differ_are_paired_and_the_digests_named():
    """A changed preprocessing step changes the data digest, not the test records: that is worth comparing."""
    baseline = _run()
    changed = [_with_noise(r, 0.1, "-b") if r["cell"]["model"] == "lstm" else copy.deepcopy(r) for r in baseline]
    changed[1]["identity"]["downstream_digest"] = "other-data"
    changed[2]["identity"]["downstream_digest"] = "other-data"
    changed[3]["data_source"] = "real"
    comparison = compare(baseline, changed, n_resamples=N_RESAMPLES)
    assert comparison.refused == [] and len(comparison.cells) == len(CELLS)
    assert dict(comparison.inputs_differ) == {baseline[1]["key"]: "data digest None vs other-data",
                                              baseline[2]["key"]: "data digest None vs other-data",
                                              baseline[3]["key"]: "data source synthetic vs real"}
    assert _verdicts(comparison.cells)[baseline[2]["key"]] == WORSE
    markdown = comparison_markdown(comparison)
    assert "## Paired although the inputs differ (same test records, labels and split)" in markdown
    assert f"- {baseline[1]['key']}: data digest None vs other-data" in markdown
    assert "Paired although the inputs differ" in terminal_table(comparison)


def test_cells_on_one_side_and_failed_cells_are_listed():
    baseline = _run()
    changed = _run()[1:] + [make_record("georgia", "gru", 1.0, "scratch", 0)]
    changed[0] = make_record(*CELLS[1], status="failed")
    comparison = compare(baseline, changed, n_resamples=N_RESAMPLES)
    assert comparison.only_a == [baseline[0]["key"]]
    assert comparison.only_b == ["georgia-gru-f1.0-scratch-s0"]
    assert comparison.not_compared == [(baseline[1]["key"], "B failed")]
    assert len(comparison.cells) == len(CELLS) - 2
    text = terminal_table(comparison)
    assert "Only in A (records):" in text and "georgia-gru-f1.0-scratch-s0" in text
    assert f"{baseline[1]['key']}: B failed" in text
    assert comparison.failed_in_b == [baseline[1]["key"]]


def test_the_gate_fails_on_a_cell_that_failed_in_b_and_on_a_comparison_of_nothing():
    baseline = _run()
    broken = [make_record(*CELLS[0], status="failed"), *_run()[1:]]
    gate = FailSpec("f1_weighted", 0.02)
    assert gate_failures(compare(baseline, _run(), n_resamples=N_RESAMPLES), gate) == []
    assert gate_failures(compare(baseline, broken, n_resamples=N_RESAMPLES), gate) == [
        f"{baseline[0]['key']}: ok in A, failed in B"]
    subset = compare(baseline, _run()[:1], n_resamples=N_RESAMPLES)  # B ran a selection of A's cells: fine
    assert subset.only_a and gate_failures(subset, gate) == []
    nothing = compare(baseline, [make_record("georgia", "gru", 1.0, "scratch", 0)], n_resamples=N_RESAMPLES)
    assert gate_failures(nothing, gate) == [NO_CELL_COMPARED]


def test_saved_runs_and_folders_compare_and_the_report_is_written(tmp_path):
    baseline, changed = _run(), _run(worse_model="lstm")
    saved = save_run(baseline, "baseline", tmp_path / "runs", machine="m")
    folder = tmp_path / "results"
    for record in changed:
        write_record(folder, record["key"].replace("->", "_to_"), record)
    comparison = compare(saved.path, folder, n_resamples=N_RESAMPLES)
    assert comparison.a.label == "0001_baseline" and comparison.b.label == str(folder)
    path = write_comparison(comparison, tmp_path / "compare.md")
    markdown = path.read_text()
    assert markdown.startswith(f"# ecgbench comparison: {folder} vs 0001_baseline")
    assert re.search(r"\| ptb / lstm / scratch +\| 1 +\| 0\.\d{3} +\| 0\.\d{3} +\| -0\.\d{3} \[-0\.\d{3}, -0\.\d{3}\] "
                     r"+\| worse", markdown)
    assert "f1_weighted: 0 better, 3 worse, 2 no clear change" in markdown
    assert "code digests unknown (5)" in markdown
    text = terminal_table(comparison)
    assert "cells with a clear change:" in text and "ptb-lstm-f1.0-scratch-s0" in text
    assert "ptb-resnet1d18-f1.0-scratch-s0" not in text.split("cells with a clear change:")[1]


def test_an_undefined_metric_is_n_a_and_leaves_its_group_to_the_defined_cells():
    baseline, changed = _run(), _run(worse_model="lstm")
    changed[2]["test"]["auroc_macro"] = None  # ptb-lstm scratch: AUROC undefined in B
    comparison = compare(baseline, changed, n_resamples=N_RESAMPLES)
    cell = next(row for row in comparison.cells if row.name == changed[2]["key"])
    assert cell.deltas["auroc_macro"].verdict == "n/a" and cell.deltas["f1_weighted"].verdict == WORSE
    group = next(row for row in comparison.groups if row.name == "ptb / lstm / scratch")
    assert group.deltas["auroc_macro"].verdict == "n/a" and group.deltas["f1_weighted"].verdict == WORSE
    assert changed[2]["key"] not in {row.name for row in regressions(comparison, "auroc_macro", 0.0)}


def test_unknown_metrics_are_refused():
    with pytest.raises(CompareError, match=r"choose from \['auroc_macro', 'f1_weighted'\]"):
        compare(_run(), _run(), metrics=["accuracy"])
    comparison = compare(_run()[:1], _run()[:1], metrics=["auroc_macro"], n_resamples=50)
    with pytest.raises(CompareError, match="'f1_weighted' was not compared"):
        regressions(comparison, "f1_weighted", 0.0)


def test_fail_spec_parses_and_names_bad_input():
    assert parse_fail_spec("f1_weighted:0.02") == FailSpec("f1_weighted", 0.02)
    assert parse_fail_spec("auroc_macro:0") == FailSpec("auroc_macro", 0.0)
    for text, message in [("f1_weighted", "expected METRIC:DELTA"), ("mean:0.1", "unknown metric 'mean'"),
                          ("f1_weighted:5%", "'5%' is not a number"), ("f1_weighted:-0.1", "finite number >= 0"),
                          ("f1_weighted:nan", "finite number >= 0"), ("f1_weighted:", "'' is not a number"),
                          ("f1_weighted:2", "DELTA 2 can never fire: f1_weighted lies in \\[0, 1\\]")]:
        with pytest.raises(CompareError, match=f"compare-fail spec '{text}'.*{message}"):
            parse_fail_spec(text)
