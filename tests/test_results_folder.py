"""A results folder never mixes, overwrites or trusts blindly: another profile is refused, another configuration
gets files of its own and is left out of the leaderboard (counted), a resealed edit is caught by recomputing the
metrics, and the session summary counts score tasks by what happened to them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import SAMPLES, needs_samples
from record_factory import make_record
from tiny_model import NAME, TINY_MODEL_CONFTEST, import_what_training_imports

from ecgbench.cli import main
from ecgbench.results.configuration import current_configuration, record_tag
from ecgbench.results.datasets import dataset_lines, partial_copies
from ecgbench.results.findings import paired_cells
from ecgbench.results.schema import ResultRecordError, sealed
from ecgbench.results.store import load_records, read_record, write_record
from ecgbench.results.tally import RunTally, TaskOutcome, score_outcome

import_what_training_imports()
GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"


def _profile(name: str = "tiny", lr: float = 0.003, regimes: str = '"scratch", "finetune"') -> str:
    """One profile: tinycnn on ptb (60 synthetic records), fine-tuned from cpsc2018, one fraction, one seed."""
    return f"""[{name}]
description = "a few tinycnn cells on ptb"
upstreams = ["cpsc2018"]
downstreams = ["ptb"]
models = ["{NAME}"]
fractions = [1.0]
regimes = [{regimes}]
seeds = 1
synthetic_records = {{ cpsc2018 = 60, ptb = 60 }}
pretrain = {{ epochs = 1, batch_size = 16, lr = 0.001 }}
train = {{ epochs = 1, batch_size = 16, lr = {lr} }}
"""


@pytest.fixture
def study(pytester, data_cache):
    """Run the grid with a profiles file written by the test; returns (results folder, run(profiles, *args))."""
    pytester.makeconftest(TINY_MODEL_CONFTEST)
    pytester.makepyfile(test_grid=GRID.read_text())
    results = pytester.path / "reports" / "results"

    def run(profiles: str, profile: str, *args: str):
        path = pytester.path / "profiles.toml"
        path.write_text(profiles)
        return pytester.runpytest("--ecg-profiles", str(path), "--ecg-profile", profile, "--ecg-results",
                                  str(results), "--ecg-cache", str(data_cache), "-p", "no:cacheprovider", *args)
    return results, run


def _paired_seeds(leaderboard: str) -> int:
    """The "paired seeds" column of the one row of the fine-tune-minus-scratch table."""
    table = leaderboard.split("**Fine-tune minus scratch**")[1].split("## ")[0]
    [row] = [line for line in table.splitlines() if line.startswith("| cpsc2018")]
    return int(row.split("|")[4])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. another profile into the same folder -------------------------------------------------------------------

def test_another_profile_into_a_folder_is_refused_and_touches_nothing(study):
    results, run = study
    run(_profile("tiny"), "tiny", "-k", "not transferability").assert_outcomes(passed=3)
    before = _snapshot(results.parent)
    assert "leaderboard.md" in before and "figure1_transfer.png" in before
    second = run(_profile("tiny") + _profile("smaller"), "smaller")
    assert second.ret == pytest.ExitCode.USAGE_ERROR
    second.stderr.fnmatch_lines([f"*--ecg-results {results} holds records of another profile (2 of profile tiny)*"
                                 "replace their leaderboard and figures*own results folder*reports/smaller/results*"])
    assert _snapshot(results.parent) == before  # records, leaderboard and figures untouched


# -- 2. a changed hyper-parameter ------------------------------------------------------------------------------

def test_a_changed_learning_rate_keeps_the_old_records_and_never_pairs_them(study):
    results, run = study
    run(_profile(lr=0.003), "tiny", "-k", "not transferability").assert_outcomes(passed=3)
    assert _paired_seeds((results.parent / "leaderboard.md").read_text()) == 1  # one configuration: paired
    old = _snapshot(results)
    changed = run(_profile(lr=0.01), "tiny", "-k", "finetune")
    changed.assert_outcomes(passed=1)
    assert all(_snapshot(results)[name] == data for name, data in old.items())  # nothing overwritten
    finetune_files = sorted(results.glob("cpsc2018_to_ptb-*-finetune-s0.*.json"))
    assert len(finetune_files) == 2
    assert {json.loads(p.read_text())["identity"]["hyperparameters"]["train"]["lr"] for p in finetune_files} == {
        0.003, 0.01}
    note = "excluded 2 record(s) of another configuration than the profile's current one: train.lr 0.003 (now 0.01) (2)"
    changed.stdout.fnmatch_lines([f"*{note}*--ecg-keep-stale*"])
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert f"- {note}" in leaderboard
    assert _paired_seeds(leaderboard) == 0  # the lr 0.003 scratch cell is not the lr 0.01 cell's twin
    kept = run(_profile(lr=0.01), "tiny", "-k", "finetune", "--ecg-keep-stale")
    kept.assert_outcomes(passed=1)
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert "included 1 record(s) of another configuration" in leaderboard  # the old scratch cell, shown
    assert _paired_seeds(leaderboard) == 0  # shown, and still never paired across learning rates


def test_a_pair_is_formed_only_within_one_training_configuration():
    scratch = make_record("ptb", "gru", 1.0, "scratch")
    tuned = make_record("ptb", "gru", 1.0, "finetune", upstream="ptbxl")
    for record, lr in ((scratch, 0.001), (tuned, 0.01)):
        record["identity"]["hyperparameters"] = {"train": {"lr": lr}}
    assert paired_cells([scratch, tuned]) == []
    tuned["identity"]["hyperparameters"] = {"train": {"lr": 0.001}, "head_policy": "last_layer"}
    assert [p.keys for p in paired_cells([scratch, tuned])] == [(tuned["key"], scratch["key"])]


def test_keeping_stale_configurations_shows_one_record_per_cell_the_current_one_first():
    current, older = make_record(seed=0), make_record(seed=0)
    other_cell = make_record(seed=1)
    current["identity"]["hyperparameters"] = {"train": {"lr": 0.01}}
    for record in (older, other_cell):
        record["identity"]["hyperparameters"] = {"train": {"lr": 0.001}}
    expected = lambda record: {"train": {"lr": 0.01}}  # noqa: E731
    shown, note = current_configuration([older, current, other_cell], expected, False, "--keep")
    assert shown == [current] and note.startswith("excluded 2 record(s)") and "train.lr 0.001 (now 0.01) (2)" in note
    shown, note = current_configuration([older, current, other_cell], expected, True, "--keep")
    assert shown == [current, other_cell] and "included 1 record(s)" in note and "1 more left out" in note


def test_report_refuses_a_cell_stored_in_two_configurations_of_an_unknown_profile(tmp_path, capsys):
    for lr in (0.001, 0.01):
        record = make_record()
        record["identity"]["hyperparameters"] = {"train": {"lr": lr}}
        write_record(tmp_path, f"{record['key']}.{record_tag(record)}", record)
    assert len(load_records(tmp_path).records) == 2  # two configurations: two files, no duplicate
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "out"), "--keep-stale"]) == 2
    assert "cells stored in several configurations of profile test" in capsys.readouterr().err


# -- 3. a hand-edited, resealed record -------------------------------------------------------------------------

def test_a_resealed_edit_of_a_metric_is_rejected_naming_the_record(tmp_path, capsys):
    record = make_record("ptb", "gru", 1.0, "scratch")
    path = tmp_path / "results" / "ptb-gru-f1.0-scratch-s0.json"
    write_record(path.parent, path.stem, record)
    assert read_record(path)["test"] == record["test"]  # a true record is read as written
    edited = json.loads(path.read_text())
    true_value = edited["test"]["f1_weighted"]
    edited["test"]["f1_weighted"] = 0.99
    path.write_text(json.dumps(sealed(edited)))  # content_sha256 recomputed: the seal alone cannot tell
    with pytest.raises(ResultRecordError, match=f"{path}: test.f1_weighted is 0.99, its predictions give "
                                                f"{true_value!r}.*not those of its own stored predictions"):
        read_record(path)
    loaded = load_records(path.parent)
    assert loaded.records == [] and str(path) in loaded.problems[0]
    assert main(["report", "--results", str(path.parent), "--out", str(tmp_path / "out")]) == 1
    assert f"skipped unreadable record: {path}: test.f1_weighted is 0.99" in capsys.readouterr().err


def test_edited_per_class_values_and_predictions_without_their_classes_are_rejected(tmp_path):
    record = make_record("ptb", "gru", 1.0, "scratch")
    record["test"]["per_class"]["MI"]["auroc"] = 0.5
    write_record(tmp_path, "a", {**record})
    with pytest.raises(ResultRecordError, match="test.per_class.MI.auroc is 0.5, its predictions give"):
        read_record(tmp_path / "a.json")
    unlabelled = make_record("ptb", "gru", 1.0, "scratch")
    unlabelled["identity"] = {"profile": "test"}
    write_record(tmp_path, "b", unlabelled)
    with pytest.raises(ResultRecordError, match="cannot be recomputed from its stored predictions"):
        read_record(tmp_path / "b.json")


# -- 6. the datasets a run used, partial copies ----------------------------------------------------------------

def test_the_provenance_lists_every_dataset_used_with_records_used_and_expected():
    scratch, tuned = make_record("ptb", "gru", 1.0, "scratch"), make_record("ptb", "gru", 1.0, "finetune",
                                                                          upstream="cpsc2018")
    scratch["identity"]["datasets"] = {"ptb": {"source": "synthetic", "records": 300, "expected": 300}}
    tuned["identity"]["datasets"] = {**scratch["identity"]["datasets"],
                                     "cpsc2018": {"source": "real", "records": 100, "expected": 6877}}
    assert dataset_lines([scratch, tuned]) == [
        "cpsc2018 (upstream): real, 100 of the 6877 records its manifest expects (a partial copy)",
        "ptb (downstream): synthetic, 300 records"]
    assert partial_copies([scratch, tuned]) == [
        "partial copy: cpsc2018 has 100 of the 6877 records its manifest expects; results on it are not those of "
        "the full dataset"]
    assert partial_copies([scratch]) == []


def test_a_synthetic_cell_records_its_datasets_upstream_too(make_runner):
    from ecgbench.study import Cell

    runner = make_runner()
    identity = runner.identity(Cell("ptb", "gru", 1.0, "finetune", 0, upstream="cpsc2018"))
    assert identity["datasets"] == {"ptb": {"source": "synthetic", "records": 60, "expected": 60},
                                    "cpsc2018": {"source": "synthetic", "records": 60, "expected": 60}}


@needs_samples
def test_a_run_on_a_partial_copy_says_so_every_time(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    args = ["--ecg-profile", "smoke", "--ecg-results", str(pytester.path / "out" / "results"), "--ecg-data",
            str(SAMPLES), "--ecg-cache", str(data_cache), "-p", "no:cacheprovider", "-k", "ptbxl-gru-f0.05-scratch",
            "-W", "ignore::ecgbench.data.prepare.IncompleteCopyWarning"]
    warning = "*partial copy: ptbxl has 292 of the 21799 records its manifest expects*"
    for origin in ("trained here: 1 cells", "reused from stored records"):  # the second run reuses the record
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines([f"*{origin}*", warning])
    leaderboard = (pytester.path / "out" / "leaderboard.md").read_text()
    assert "- dataset ptbxl (downstream): real, 292 of the 21799 records its manifest expects (a partial copy)" \
        in leaderboard


# -- 11. score tasks counted by what happened ------------------------------------------------------------------

@pytest.mark.parametrize("test_outcome, status, counted", [
    ("passed", "ok", "ok"), ("failed", None, "failed"), ("failed", "ok", "failed"), ("passed", "failed", "failed"),
    ("skipped", "failed", "skipped"), ("skipped", None, "skipped")])
def test_a_score_task_is_counted_by_its_test_outcome_and_its_record(test_outcome, status, counted):
    assert score_outcome(test_outcome, status) == counted


def test_the_score_line_counts_each_outcome(tmp_path):
    tally = RunTally(tmp_path)
    tally.tasks["cell"] = TaskOutcome("cell", "trained ok", started=True)
    assert tally.score_line() is None
    tally.tasks.update({"a": TaskOutcome("score", "trained ok"), "b": TaskOutcome("score", "reused failed"),
                        "c": TaskOutcome("score", "trained skipped"), "d": TaskOutcome("score", "reused ok")})
    assert tally.score_line() == "transferability scores: 2 ok, 1 failed, 1 skipped"
    tally.tasks["e"] = TaskOutcome("score", "skipped", reason="dataset demo has no synthetic stand-in")
    assert tally.score_line() == ("transferability scores: 2 ok, 1 failed, 2 skipped "
                                  "(1 x dataset demo has no synthetic stand-in)")


def test_a_score_task_whose_record_cannot_be_written_is_counted_failed(study, monkeypatch):
    import ecgbench.results.score_records as score_records
    from ecgbench.results.store import RecordWriteError

    def full_disk(path, document, what, compact=False):
        raise RecordWriteError(f"cannot write {what} {path}: No space left on device (ENOSPC)")
    monkeypatch.setattr(score_records, "write_json", full_disk)
    _, run = study
    result = run(_profile(), "tiny", "-m", "transferability")
    result.assert_outcomes(failed=1)  # its record could not be written
    result.stdout.fnmatch_lines(["*transferability scores: 0 ok, 1 failed, 0 skipped*"])
