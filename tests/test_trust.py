"""Issue 16, "trust nothing silently": data roots, stored records, status, write errors, what a run did, and
metrics that can be recomputed exactly from what a record stores (rows of docs/bad-inputs.md)."""
import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from record_factory import make_record
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from ecgbench.cli import main
from ecgbench.engine.checkpoint import cached_checkpoint
from ecgbench.results.bootstrap import macro_auroc_resampled, point_value
from ecgbench.results.configuration import record_tag
from ecgbench.results.schema import DIGEST_KEY, SCHEMA_VERSION, ResultRecordError
from ecgbench.results.store import RecordWriteError, load_records, read_record, record_path, write_record
from ecgbench.results.tally import RunTally, TaskOutcome
from ecgbench.study import Cell, Transferability

GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"
ONE_CELL = "ptb and not ptbxl and gru and f0.25 and scratch"  # smoke, one seed: ptb-gru-f0.25-scratch-s0
SCRATCH = Cell("ptb", "gru", 0.25, "scratch", 0)


def _write(folder: Path, record: dict) -> Path:
    write_record(folder, record["key"].replace("->", "_to_"), record)
    return record_path(folder, record["key"].replace("->", "_to_"))


# -- 1. --ecg-data -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["missing", "file", "empty"])
def test_a_mistyped_ecg_data_is_a_usage_error_before_any_cell_runs(pytester, kind):
    root = pytester.path / "data"
    if kind == "file":
        root.write_text("not a folder")
    elif kind == "empty":
        (root / "ptb-xl").mkdir(parents=True)  # a near miss: not a dataset's sub-folder name
    pytester.makepyfile(test_grid=GRID.read_text())
    result = pytester.runpytest("--ecg-profile", "smoke", "--ecg-data", str(root), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = {"missing": f"*--ecg-data {root}: no such folder*", "file": f"*--ecg-data {root}: is a file*",
                "empty": f"*--ecg-data {root}: holds none of the datasets asked for: expected a sub-folder named "
                         "ptbxl, cpsc2018, georgia, ptb, code_test; it holds ptb-xl*"}[kind]
    result.stderr.fnmatch_lines([expected])
    assert not (pytester.path / "reports").exists()


def test_data_commands_refuse_a_missing_or_file_root(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for argv in (["verify", "ptb", "--root", str(tmp_path / "missing")],
                 ["info", "ptb", "--root", str(tmp_path / "file")],
                 ["fetch", "ptb", "--root", str(tmp_path / "file")]):
        with pytest.raises(SystemExit) as stop:
            main(["data", *argv])
        assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing'}: no such folder" in err and f"{tmp_path / 'file'}: is a file, not a folder" in err


# -- 6. stored records carry their digest; one file per cell ----------------------------------------------------

def test_a_hand_edited_record_is_rejected_naming_the_file(tmp_path):
    path = _write(tmp_path, make_record())
    assert read_record(path)[DIGEST_KEY]
    text = path.read_text()
    edited = json.loads(text)
    edited["test"]["f1_weighted"] = 0.99
    path.write_text(json.dumps(edited, indent=1, sort_keys=True))
    loaded = load_records(tmp_path)
    assert loaded.records == []
    assert loaded.problems == [f"{path}: content does not match its {DIGEST_KEY} (edited after it was written?): "
                               "not trusted"]
    path.write_text(text.replace("\n", "\n  "))  # only the layout changed: still the same content
    assert read_record(path)["test"]["f1_weighted"] != 0.99


def test_a_stored_record_without_a_digest_is_rejected(tmp_path):
    path = _write(tmp_path, make_record())
    record = json.loads(path.read_text())
    del record[DIGEST_KEY]
    path.write_text(json.dumps(record))
    with pytest.raises(ResultRecordError, match=f"{path}: no {DIGEST_KEY}"):
        read_record(path)


def test_a_schema_1_record_says_so_and_asks_for_a_rerun(tmp_path):
    record = make_record()
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**record, "schema_version": 1}))
    assert SCHEMA_VERSION == 2
    assert load_records(tmp_path).problems == [
        f"{path}: made by schema 1 (records without a content digest, probabilities rounded to 5 decimals); "
        "this ecgbench reads schema 2: re-run its cell (the runner does so by itself)"]


def test_two_files_for_one_cell_are_an_error_naming_both(tmp_path, capsys):
    path = _write(tmp_path, make_record())
    copy = tmp_path / f"{path.stem} (copy).json"
    shutil.copy(path, copy)
    _write(tmp_path, make_record(downstream="code_test"))  # another cell: fine
    with pytest.raises(ResultRecordError, match="is stored 2 times") as error:
        load_records(tmp_path)
    assert f"{copy}, {path}" in str(error.value) or f"{path}, {copy}" in str(error.value)
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    tag = record_tag(make_record())
    message = f"cell {make_record()['key']} (profile test, configuration {tag}) is stored 2 times"
    assert message in capsys.readouterr().err


# -- 7. ecgbench status ----------------------------------------------------------------------------------------

def test_status_on_a_missing_folder_fails(tmp_path, capsys):
    assert main(["status", "--results", str(tmp_path / "nope"), "--profile", "smoke"]) == 1
    assert f"{tmp_path / 'nope'}: no such results folder" in capsys.readouterr().err


def test_status_on_another_profiles_folder_says_what_it_holds_and_fails(tmp_path, capsys):
    _write(tmp_path, make_record())
    _write(tmp_path, make_record(downstream="code_test"))
    assert main(["status", "--results", str(tmp_path), "--profile", "smoke"]) == 1
    out = capsys.readouterr().out
    assert "the folder holds records of profiles test: 2" in out
    assert "error: none of them is of profile smoke: choose one with --profile (e.g. --profile test)" in out
    (tmp_path / "empty").mkdir()
    assert main(["status", "--results", str(tmp_path / "empty"), "--profile", "smoke"]) == 0  # not started yet
    assert "the folder holds no result records" in capsys.readouterr().out


# -- 8. a full or read-only results disk ------------------------------------------------------------------------

def _failing_write(code: int):
    def write(path, data):
        raise OSError(code, os.strerror(code), str(path.parent / f".{path.name}.tmp"))
    return write


def test_a_full_disk_fails_the_cell_naming_the_record_file(make_runner, monkeypatch):
    runner = make_runner()
    monkeypatch.setattr("ecgbench.results.store.atomic_write_bytes", _failing_write(errno.ENOSPC))
    path = runner.record_file(SCRATCH)
    with pytest.raises(RecordWriteError) as error:
        runner.run(SCRATCH)
    assert str(error.value) == (f"cannot write result record {path}: No space left on device (ENOSPC, the disk is "
                                "full)")
    assert error.value.errno == errno.ENOSPC and not path.exists()


@pytest.mark.parametrize("task", [Cell("ptb", "gru", 0.25, "finetune", 0, "ptbxl"),
                                  Transferability("ptbxl", "ptb", "gru", 0.25, 0)], ids=["cell", "score task"])
def test_a_failed_task_whose_record_cannot_be_written_keeps_its_cause(make_runner, monkeypatch, task):
    runner = make_runner()
    def unreadable(*args):
        raise RuntimeError("the upstream checkpoint is unreadable")
    monkeypatch.setattr(runner, "upstream_checkpoint", unreadable)
    monkeypatch.setattr("ecgbench.results.store.atomic_write_bytes", _failing_write(errno.ENOSPC))
    with pytest.raises(RecordWriteError) as error:
        runner.run(task) if isinstance(task, Cell) else runner.transferability(task)
    assert "No space left on device (ENOSPC, the disk is full)" in str(error.value)
    assert "the task had failed before: RuntimeError: the upstream checkpoint is unreadable" in str(error.value)
    assert error.value.errno == errno.ENOSPC


def test_a_read_only_disk_fails_a_checkpoint_naming_its_file(tmp_path, monkeypatch):
    def read_only(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    monkeypatch.setattr("ecgbench.atomic._create_temp_beside", read_only)
    path = tmp_path / "checkpoints" / "ptbxl-gru-s0.pt"
    with pytest.raises(OSError, match=f"cannot write checkpoint {path}: Read-only file system") as error:
        cached_checkpoint(path, "id", lambda: {"weights": np.zeros(2)})
    assert error.value.errno == errno.EROFS


def test_a_report_that_cannot_be_written_is_reported_after_the_test_summary(pytester, data_cache, monkeypatch):
    pytester.makepyfile(test_grid=GRID.read_text())
    monkeypatch.setattr("ecgbench.results.report.atomic_write_bytes", _failing_write(errno.EROFS))
    result = pytester.runpytest("-k", ONE_CELL, "--ecg-profile", "smoke", "--ecg-seeds", "1",
                                "--ecg-cache", str(data_cache), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the cell passed, the leaderboard did not get written
    result.stdout.fnmatch_lines(["*ecgbench*", "trained here: 1 cells (1 ok, 0 failed)",
                                 "error: the leaderboard was not written: OSError: *Read-only file system*",
                                 "*1 passed*"])
    assert "Traceback" not in result.stdout.str()


# -- 12. say what a run did -------------------------------------------------------------------------------------

def test_the_summary_and_provenance_say_what_was_trained_and_what_reused(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    results = pytester.path / "out" / "results"
    args = ["-k", ONE_CELL, "--ecg-profile", "smoke", "--ecg-seeds", "1", "--ecg-results", str(results),
            "--ecg-cache", str(data_cache), "-p", "no:cacheprovider"]
    first = pytester.runpytest(*args)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["trained here: 1 cells (1 ok, 0 failed)"])
    assert "reused from stored records" not in first.stdout.str()
    again = pytester.runpytest(*args)  # a plain run, no -v: the reuse is on the screen
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["trained here: 0 cells (0 ok, 0 failed)",
                                f"reused from stored records in {results}: 1 cells (1 ok, 0 failed), not trained "
                                "again; retrain them with --ecg-rerun all*"])
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert "- this run: reused from stored records in results: 1 cells" in leaderboard  # no user's path in it
    assert str(pytester.path) not in leaderboard
    retrained = pytester.runpytest(*args, "--ecg-rerun", "all")
    retrained.stdout.fnmatch_lines(["trained here: 1 cells (1 ok, 0 failed)"])


def test_the_tally_counts_skipped_cells_with_their_reasons_and_cells_without_a_record(tmp_path):
    tally = RunTally(tmp_path)
    mixed = "upstream ptbxl is synthetic data but downstream ptb is real"
    tally.tasks.update({"a": TaskOutcome("cell", "trained ok", started=True),
                        "b": TaskOutcome("cell", "reused failed", started=True),
                        "c": TaskOutcome("cell", "failed", started=True)})
    tally.tasks.update({f"s{i}": TaskOutcome("cell", "skipped", reason=mixed) for i in range(3)})
    tally.tasks["t"] = TaskOutcome("cell", "skipped", reason="another reason")
    tally.tasks["u"] = TaskOutcome("score", "skipped", reason=mixed)  # a score task: the score line's, no cell
    tally.tasks["v"] = TaskOutcome("cell", "failed")  # failed in its setup: never started, so no record expected
    assert tally.lines() == [
        "trained here: 1 cells (1 ok, 0 failed)",
        f"reused from stored records in {tmp_path}: 1 cells (0 ok, 1 failed), not trained again; retrain them "
        "with --ecg-rerun all (or only the failed ones with --ecg-rerun failed)",
        "skipped: 4 cells (3 x upstream ptbxl is synthetic data but downstream ptb is real; 1 x another reason)",
        "no record: 1 cells stopped before their record was written (see their failures above): c"]


def test_the_tally_for_a_committed_leaderboard_names_the_results_folder_relative_to_it(tmp_path):
    tally = RunTally(tmp_path / "reports" / "results")
    tally.tasks["a"] = TaskOutcome("cell", "reused ok", started=True)
    (reused,) = [line for line in tally.lines(relative_to=tmp_path / "reports") if line.startswith("reused")]
    assert reused.startswith("reused from stored records in results: 1 cells") and str(tmp_path) not in reused


# -- 6 and 13 on a small real run: reuse, re-run of an untrusted record, exact recomputation ---------------------

def _sklearn_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict:
    defined = [c for c in range(y_true.shape[1]) if 0 < y_true[:, c].sum() < len(y_true)]
    present = [c for c in range(y_true.shape[1]) if y_true[:, c].any()]
    y_pred = y_prob >= 0.5
    return {
        "auroc": [roc_auc_score(y_true[:, c], y_prob[:, c]) for c in defined],
        "auprc": [average_precision_score(y_true[:, c], y_prob[:, c]) for c in defined],
        "f1": [f1_score(y_true[:, c], y_pred[:, c]) for c in present],
        "f1_weighted": f1_score(y_true, y_pred, average="weighted", zero_division=0),
        "defined": defined, "present": present,
    }


@pytest.mark.parametrize("cell", [SCRATCH, Cell("code_test", "resnet1d18", 0.25, "scratch", 0)], ids=str)
def test_every_metric_of_a_record_is_recomputed_exactly_from_its_stored_predictions(make_runner, cell):
    runner = make_runner()
    record = runner.run(cell)
    stored = read_record(runner.record_file(cell))
    assert stored == record and stored["status"] == "ok"
    y_true = np.array(stored["predictions"]["y_true"], dtype=bool)
    y_prob = np.array(stored["predictions"]["y_prob"])
    assert (y_prob.astype(np.float32).astype(str).astype(np.float64) == y_prob).all()  # float32, exactly
    assert (np.round(y_prob, 5) != y_prob).any()  # not rounded to 5 decimals
    test, again = stored["test"], _sklearn_metrics(y_true, y_prob)
    classes = stored["identity"]["classes"]  # the column order (per_class is stored with sorted keys)
    assert [test["per_class"][classes[c]]["auroc"] for c in again["defined"]] == again["auroc"]
    assert [test["per_class"][classes[c]]["auprc"] for c in again["defined"]] == again["auprc"]
    assert [test["per_class"][classes[c]]["f1"] for c in again["present"]] == pytest.approx(again["f1"], abs=1e-15)
    assert test["auroc_macro"] == float(np.mean(again["auroc"]))
    assert test["auprc_macro"] == float(np.mean(again["auprc"]))
    assert test["f1_weighted"] == pytest.approx(again["f1_weighted"], abs=1e-15)
    # the bootstrap draws from the same numbers: its full-set value is the record's own
    assert point_value(y_true, y_prob, macro_auroc_resampled) == pytest.approx(test["auroc_macro"], abs=1e-12)


def test_a_run_reuses_its_record_and_reruns_an_edited_one(make_runner):
    runner = make_runner()
    outcome = runner.execute(SCRATCH)
    assert outcome.origin == "trained"
    assert runner.execute(SCRATCH) == type(outcome)(outcome.record, "reused")
    path = runner.record_file(SCRATCH)
    edited = json.loads(path.read_text())
    edited["test"]["auroc_macro"] = 1.0
    path.write_text(json.dumps(edited))
    with pytest.warns(UserWarning, match=f"re-running {SCRATCH.key}: {path}: content does not match"):
        rerun = runner.execute(SCRATCH)
    assert rerun.origin == "trained" and rerun.record["test"] == outcome.record["test"]
    assert read_record(path) == rerun.record
