"""Saved runs and their comparison in pytest, the pytest-benchmark way: --ecg-save / --ecg-autosave, then
--ecg-compare and the --ecg-compare-fail gate, on real (tiny) runs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tiny_model import NAME, TINY_MODEL_CONFTEST, import_what_training_imports, tiny_profiles

from ecgbench.cli import main
from ecgbench.results.compare import WORSE, compare
from ecgbench.results.runs import list_runs, load_run_file, save_run
from ecgbench.results.schema import sealed

import_what_training_imports()
GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"
CELLS = {f"ptb-{NAME}-f0.5-scratch-s0", f"ptb-{NAME}-f1.0-scratch-s0"}


@pytest.fixture
def tiny_grid(pytester, data_cache):
    """A pytester folder with the grid, the tiny model and a profiles file; returns (profiles, results, args)."""
    pytester.makeconftest(TINY_MODEL_CONFTEST)
    pytester.makepyfile(test_grid=GRID.read_text())
    profiles, results = pytester.path / "profiles.toml", pytester.path / "out" / "results"
    args = ["-k", "scratch", "--ecg-profiles", str(profiles), "--ecg-profile", "tiny", "--ecg-results", str(results),
            "--ecg-cache", str(data_cache), "--ecg-runs", str(pytester.path / "runs"), "-p", "no:cacheprovider"]
    return profiles, results, args


def test_a_useless_learning_rate_is_detected_as_worse_and_fails_the_gate(pytester, tiny_grid):
    profiles, results, args = tiny_grid
    profiles.write_text(tiny_profiles(lr=0.003))
    baseline = pytester.runpytest_subprocess("-n", "2", "--ecg-save", "baseline", *args)  # saved by the controller
    baseline.assert_outcomes(passed=2)
    saved = pytester.path / "runs"
    [info] = list_runs(saved)
    baseline.stdout.fnmatch_lines([f"saved 2 cells as run 0001_baseline: {info.path}"])
    assert {r["key"] for r in load_run_file(info.path).records} == CELLS

    profiles.write_text(tiny_profiles(lr=1e-7))  # the one change: a learning rate too small to learn anything
    gated = pytester.runpytest("--ecg-compare", "baseline", "--ecg-compare-fail", "auroc_macro:0.02", *args)
    gated.assert_outcomes(passed=2)
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(["*ecgbench compare: B = * vs A = 0001_baseline: 2 cells compared*",
                                "FAILED --ecg-compare-fail auroc_macro:0.02 (* cells):"])
    named = set(re.findall(r"^  (\S+): auroc_macro B−A .* lies wholly below -0\.02$", gated.stdout.str(), re.M))

    comparison = compare(info.path, results, ["auroc_macro", "f1_weighted"], n_resamples=1000)
    deltas = {row.name: row.deltas["auroc_macro"] for row in comparison.cells}
    assert set(deltas) == CELLS
    clearly_worse = {key for key, d in deltas.items() if d.a - d.b >= 0.2}
    assert clearly_worse, f"the trained baseline should beat an untrained model by far on some cell: {deltas}"
    assert clearly_worse <= {key for key, d in deltas.items() if d.verdict == WORSE} <= named
    assert all(d.verdict == WORSE for key, d in deltas.items() if key in named)

    ungated = pytester.runpytest("--ecg-compare", "1", *args)  # by number; the cells are reused now
    assert ungated.ret == pytest.ExitCode.OK
    ungated.stdout.fnmatch_lines(["cells with a clear change:"])
    assert "FAILED --ecg-compare-fail" not in ungated.stdout.str()

    other_split = load_run_file(info.path).records
    other_split[0]["identity"]["split_digest"] = "another-split"
    other_split[0] = sealed(other_split[0])  # a record of another split, as its own run would have stored it
    save_run(other_split, "other-split", saved)
    refused = pytester.runpytest("--ecg-compare", "other-split", "--ecg-compare-fail", "auroc_macro:0.99", *args)
    assert refused.ret == pytest.ExitCode.TESTS_FAILED
    refused.stdout.fnmatch_lines([f"  {other_split[0]['key']}: not compared, the test sets differ (split digest "
                                  "another-split vs *)"])


@pytest.mark.parametrize("options, message", [
    (["--ecg-compare-fail", "auroc_macro:0.02"], "--ecg-compare-fail needs --ecg-compare RUN"),
    (["--ecg-compare", "nope"], "no saved run 'nope' under *runs"),
    (["--ecg-compare", ".", "--ecg-compare-fail", "f1:0.1"], "*unknown metric 'f1'*"),
    (["--ecg-save", "my run"], "*run name 'my run'*"),
    (["--ecg-save", "a", "--ecg-autosave"], "--ecg-save and --ecg-autosave: choose one"),
])
def test_bad_saved_run_options_are_usage_errors_before_any_training(pytester, tiny_grid, options, message):
    profiles, _, args = tiny_grid
    profiles.write_text(tiny_profiles())
    result = pytester.runpytest(*options, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert not (pytester.path / "out").exists()


def test_a_session_of_no_cell_says_nothing_was_saved_and_fails_a_gate(pytester, tiny_grid):
    profiles, _, args = tiny_grid
    profiles.write_text(tiny_profiles())
    saved = pytester.runpytest("--ecg-save", "empty", *args, "-k", "no_such_cell")
    saved.stdout.fnmatch_lines(["*this session ran no cell: nothing was saved or compared*"])
    assert not (pytester.path / "runs").exists() and saved.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    pytester.runpytest("--ecg-save", "base", *args).assert_outcomes(passed=2)
    gated = pytester.runpytest("--ecg-compare", "base", "--ecg-compare-fail", "f1_weighted:0.02", *args,
                               "-k", "no_such_cell")
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(["*no cell was compared: the gate has nothing to pass*"])


def test_autosave_names_the_run_after_the_commit_and_the_file_holds_the_run_schema(pytester, tiny_grid, capsys):
    """The documented shape: run_schema_version, name, number, machine, created, source, saved_by, records."""
    profiles, results, args = tiny_grid
    profiles.write_text(tiny_profiles(records=60, epochs=1))
    pytester.runpytest("--ecg-autosave", *args).assert_outcomes(passed=2)
    [info] = list_runs(pytester.path / "runs")
    assert re.fullmatch(r"(unknown|[0-9a-f]{12})_\d{8}T\d{6}(_dirty)?", info.name)
    document = json.loads(info.path.read_text())
    assert sorted(document) == ["created", "machine", "name", "number", "records", "run_schema_version", "saved_by",
                                "source"]
    assert document["source"] == str(results)
    assert {r["key"] for r in document["records"]} == CELLS
    assert all(r["identity"]["code_digest"] == document["saved_by"]["code_digest"] for r in document["records"])
    assert main(["runs", "--runs", str(pytester.path / "runs")]) == 0
    assert re.search(rf"^{info.machine} +0001 +{info.name} ", capsys.readouterr().out, re.M)
