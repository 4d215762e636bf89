"""One test per row of docs/bad-inputs.md that no other test file covers."""
import dataclasses
import json

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.results.schema import SCHEMA_VERSION
from ecgbench.results.store import load_records
from ecgbench.study import Cell, enumerate_cells, get_profile

SCRATCH = Cell("ptb", "gru", 0.25, "scratch", 0)


def test_zero_seeds_is_a_usage_error(pytester):
    result = pytester.runpytest("--ecg-seeds", "0", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ecg-seeds must be at least 1*"])


def test_profile_with_unknown_model_is_rejected():
    profile = dataclasses.replace(get_profile("smoke"), models=("resnet1d18", "transformer9000"))
    with pytest.raises(KeyError, match="unregistered models.*transformer9000"):
        enumerate_cells(profile)


def test_transferability_with_a_mistyped_data_root_is_refused_like_pytests(tmp_path, capsys):
    """The CLI builds its options with the plugin's checks: never a silent fall-back to the synthetic stand-ins."""
    assert main(["transferability", "--downstream", "ptb", "--profile", "smoke", "--results", str(tmp_path),
                 "--data", str(tmp_path / "typo")]) == 2
    err = capsys.readouterr().err
    assert f"--data {tmp_path / 'typo'}: no such folder" in err
    assert not (tmp_path / "checkpoints").exists()


def test_report_on_empty_folder_fails_clearly(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert f"no result records in {tmp_path}" in capsys.readouterr().err


def _stored(make_runner, results: str, profile_name: str):
    profile = dataclasses.replace(get_profile("smoke"), name=profile_name, models=("gru",))
    study = make_runner(results, profile=profile)
    study.run(SCRATCH)
    return study.options.results_dir


def test_report_on_mixed_profiles_asks_for_one(make_runner, tmp_path, capsys):
    results = _stored(make_runner, "mixed", "smoke")
    _stored(make_runner, "other", "custom")
    for path in (tmp_path / "other").glob("*.json"):
        path.rename(results / f"custom-{path.name}")
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out")]) == 1
    assert "several profiles ['custom', 'smoke']; choose one with --profile" in capsys.readouterr().err
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "out"), "--profile", "smoke"]) == 0
    assert (tmp_path / "out" / "leaderboard.md").exists()


def test_foreign_record_is_skipped_by_reports_and_named(make_runner):
    results = _stored(make_runner, "r", "smoke")
    foreign = results / "foreign.json"
    foreign.write_text(json.dumps({"schema_version": 99, "key": "x"}))
    loaded = load_records(results)
    assert [r["key"] for r in loaded.records] == [SCRATCH.key]
    assert loaded.problems == [f"{foreign}: schema_version 99, expected {SCHEMA_VERSION}"]


def test_nan_data_fails_its_cell_and_the_grid_goes_on(make_runner):
    study = make_runner()
    ds = study.dataset("ptb")
    signals = np.array(ds.signals)
    signals[ds.indices("train"), 10, 0] = np.nan
    study._datasets["ptb"] = dataclasses.replace(ds, signals=signals)
    failed = study.run(SCRATCH)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("NonFiniteLossError: loss became nan at epoch 0")
    ok = study.run(Cell("code_test", "gru", 0.25, "scratch", 0))
    assert ok["status"] == "ok"
