"""The plugin end to end through pytester: a tiny grid writes records and a leaderboard, also under -n 2."""
import json
from pathlib import Path

import pytest

GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"
# scratch + fine-tune from cpsc2018 + linear from cpsc2018, on ptb, resnet1d18, fraction 0.25: 3 cells.
SELECTION = "ptb and not ptbxl and resnet1d18 and f0.25 and (scratch or cpsc2018)"


@pytest.fixture
def grid(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    results = pytester.path / "out" / "results"
    args = ["--ecg-profile", "smoke", "--ecg-results", str(results), "--ecg-cache", str(data_cache),
            "-p", "no:cacheprovider"]
    return results, args


def _check_outputs(results: Path) -> None:
    stems = sorted(p.stem for p in results.glob("*.json"))
    assert stems == ["cpsc2018_to_ptb-resnet1d18-f0.25-finetune-s0", "cpsc2018_to_ptb-resnet1d18-f0.25-linear-s0",
                     "ptb-resnet1d18-f0.25-scratch-s0"]
    assert all(json.loads((results / f"{s}.json").read_text())["status"] == "ok" for s in stems)
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert "ptb" in leaderboard and "resnet1d18" in leaderboard


def test_cell_ids_read_as_the_user_means_them(pytester, grid):
    _, args = grid
    result = pytester.runpytest("--collect-only", "-q", *args)
    result.stdout.fnmatch_lines(["*test_cell[[]cpsc2018->ptb-resnet1d18-f0.25-finetune-s0]*",
                                 "*test_cell[[]ptb-gru-f1.0-scratch-s0]*", "522 tests collected*"])


def test_tiny_grid_writes_records_leaderboard_and_summary(pytester, grid):
    results, args = grid
    result = pytester.runpytest("-k", SELECTION, *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*ecgbench*", "*wrote*leaderboard.md*"])
    _check_outputs(results)


def test_tiny_grid_under_xdist_is_reported_by_the_controller(pytester, grid):
    results, args = grid
    result = pytester.runpytest_subprocess("-n", "2", "-k", SELECTION, *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*wrote*leaderboard.md*"])
    _check_outputs(results)
    assert len(list((results / "checkpoints").glob("*.pt"))) == 1  # one upstream, trained once


def test_unknown_profile_is_a_usage_error(pytester, grid):
    _, args = grid
    result = pytester.runpytest("--ecg-profile", "nope", *args[2:])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown profile 'nope'*known: smoke, default, paper*"])


@pytest.mark.parametrize("worker, gpus, expected", [
    ("gw0", 4, "cuda:0"), ("gw3", 4, "cuda:3"), ("gw5", 4, "cuda:1"), ("gw1", 1, "cuda:0"),
    ("gw2", 0, None), ("master", 2, None),
])
def test_each_xdist_worker_pins_one_gpu_round_robin(worker, gpus, expected):
    from ecgbench.plugin import worker_device

    assert worker_device(worker, gpus) == expected


def test_workers_record_their_faked_gpu(pytester, monkeypatch):
    """With a faked device count, each worker's study uses its own GPU (no GPU is touched: collection only)."""
    pytester.makeconftest("""
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 2
""")
    pytester.makepyfile(test_dev="""
def test_device(ecg_study, worker_id):
    assert ecg_study.options.device == "cuda:" + str(int(worker_id[2:]) % 2)
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
