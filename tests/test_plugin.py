"""The plugin end to end through pytester: a tiny grid writes records and a leaderboard, also under -n 2."""
import json
from pathlib import Path

import pytest
from record_factory import untagged

from ecgbench.cli import main
from ecgbench.cost import model_flops

# Count one model's FLOPs (shard costs) at import: what torch imports for the counter inside an in-process
# pytester run is unloaded after it, and torch cannot register its operator libraries twice.
model_flops("lstm")
GRID = Path(__file__).parents[1] / "benchmarks" / "test_grid.py"
# scratch + fine-tune from cpsc2018 + linear from cpsc2018, on ptb, resnet1d18, fraction 0.25: 3 cells.
SELECTION = "ptb and not ptbxl and resnet1d18 and f0.25 and (scratch or cpsc2018) and not transferability"


@pytest.fixture
def grid(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    results = pytester.path / "out" / "results"
    args = ["--ecg-profile", "smoke", "--ecg-results", str(results), "--ecg-cache", str(data_cache),
            "-p", "no:cacheprovider"]
    return results, args


def _check_outputs(results: Path) -> None:
    files = {untagged(p): p for p in results.glob("*.json")}
    stems = sorted(files)
    assert stems == ["cpsc2018_to_ptb-resnet1d18-f0.25-finetune-s0", "cpsc2018_to_ptb-resnet1d18-f0.25-linear-s0",
                     "ptb-resnet1d18-f0.25-scratch-s0"]
    assert all(json.loads(files[s].read_text())["status"] == "ok" for s in stems)
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert "ptb" in leaderboard and "resnet1d18" in leaderboard


def test_cell_ids_read_as_the_user_means_them(pytester, grid):
    _, args = grid
    result = pytester.runpytest("--collect-only", "-q", *args)
    result.stdout.fnmatch_lines(["*test_pretrain[[]pretrain-ptbxl-resnet1d18-s0]*",  # checkpoints first
                                 "*test_cell[[]cpsc2018->ptb-resnet1d18-f0.25-finetune-s0]*",
                                 "*test_cell[[]ptb-gru-f1.0-scratch-s0]*",
                                 "756 tests collected*"])  # 522 cells, 18 upstream checkpoints, 216 score tasks


def test_tiny_grid_writes_records_leaderboard_and_summary(pytester, grid):
    results, args = grid
    result = pytester.runpytest("-q", "-k", SELECTION, *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["ecgbench [[]0/3 done, 3 left, ETA after the first trained task]: *: epoch 1/*",
                                 "ecgbench [[]1/3 done, 2 left, ETA * s]: *-s0: trained ok in *",  # without -v
                                 "*ecgbench*", "finding 1: Fine-tuning helps *", f"records: {results}",
                                 "*wrote*leaderboard.md*", "*ecgbench run*", "cells: 3 trained ok", "slowest cells: *"])
    _check_outputs(results)


def test_tiny_grid_under_xdist_is_reported_by_the_controller(pytester, grid):
    results, args = grid
    result = pytester.runpytest_subprocess("-n", "2", "-q", "-k", SELECTION, *args)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["ecgbench [[]*/3 done, * left, ETA *]: *trained ok in *",  # from the controller
                                 "*wrote*leaderboard.md*", "cells: 3 trained ok"])
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
    from ecgbench.cluster.gpus import worker_device

    assert worker_device(worker, gpus) == expected


def test_workers_record_their_faked_gpu(pytester, monkeypatch):
    """With a faked device count, each worker's study uses its own GPU (no GPU is touched: collection only)."""
    pytester.makeconftest("""
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 2
""")
    pytester.makepyfile(test_dev="""
def test_device(ecg_runner, worker_id):
    assert ecg_runner.options.device == "cuda:" + str(int(worker_id[2:]) % 2)
""")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def _collected(result) -> list[str]:
    return sorted(line.split("[", 1)[1].rstrip("]") for line in result.stdout.lines if "::test_" in line)


@pytest.mark.parametrize("selection", ["resnet1d18 and f0.05", "georgia", "gru and not linear", "pretrain"])
def test_shards_of_any_selection_are_disjoint_and_cover_it(pytester, grid, selection):
    _, args = grid
    whole = _collected(pytester.runpytest("--collect-only", "-q", "-k", selection, *args))
    shards = [_collected(pytester.runpytest("--collect-only", "-q", "-k", selection, "--ecg-shard", f"{k}/3", *args))
              for k in (1, 2, 3)]
    together = [task for shard in shards for task in shard]
    assert sorted(together) == whole and len(set(together)) == len(together)


@pytest.mark.parametrize("option, value, message", [
    ("--ecg-device", "bogus", "--ecg-device bogus: this torch cannot use it"),
    ("--ecg-results", "a-file", "--ecg-results a-file: is a file, not a folder"),
    ("--ecg-cache", "a-file", "--ecg-cache a-file: is a file, not a folder"),
])
def test_an_unusable_device_or_a_file_as_a_folder_is_a_usage_error_before_any_cell(pytester, grid, option, value,
                                                                                      message):
    _, args = grid
    (pytester.path / "a-file").write_text("x")
    result = pytester.runpytest(*args, option, value, "-k", SELECTION)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_ecgbench_grid_lists_exactly_the_cases_pytest_collects(pytester, grid, capsys):
    _, args = grid
    result = pytester.runpytest("--collect-only", "-q", *args)
    collected = sorted(line.split("::", 1)[1] for line in result.stdout.lines if "::test_" in line)
    capsys.readouterr()  # the collection's own output
    assert main(["grid", "--profile", "smoke", "--list"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "522 cells, 18 upstream checkpoints, 216 transferability score tasks" in printed
    assert sorted(line for line in printed if line.startswith("test_")) == collected and len(collected) == 756


def test_the_pretrain_phase_runs_what_the_selected_cells_need(pytester, grid):
    _, args = grid
    result = pytester.runpytest("--collect-only", "-q", "-k", "code_test and gru and f0.05",
                                "--ecg-phase", "pretrain", *args)
    assert _collected(result) == ["pretrain-cpsc2018-gru-s0", "pretrain-georgia-gru-s0", "pretrain-ptbxl-gru-s0"]
    result.stdout.fnmatch_lines(["3/756 tests collected (753 deselected)*"])


def test_scratch_and_transfer_phases_split_the_cells(pytester, grid):
    _, args = grid
    selection = ["-k", "code_test and resnet1d18 and f1.0 and not transferability"]
    scratch = _collected(pytester.runpytest("--collect-only", "-q", *selection, "--ecg-phase", "scratch", *args))
    transfer = _collected(pytester.runpytest("--collect-only", "-q", *selection, "--ecg-phase", "transfer", *args))
    assert scratch == ["code_test-resnet1d18-f1.0-scratch-s0"]
    assert len(transfer) == 6 and all("finetune" in t or "linear" in t for t in transfer)


def test_a_bad_shard_or_costs_file_is_a_usage_error(pytester, grid):
    _, args = grid
    result = pytester.runpytest("--collect-only", "--ecg-shard", "4/3", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*K/N*"])
    costs = pytester.path / "costs.json"
    costs.write_text("[1, 2]")
    result = pytester.runpytest("--collect-only", "--ecg-shard", "1/3", "--ecg-costs", str(costs), *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ecg-costs:*costs.json*JSON object*"])


def test_a_checkpoint_another_task_of_the_run_built_counts_as_trained_and_one_of_an_earlier_run_as_reused(
        pytester, grid):
    """Under xdist a cell on another worker may build a checkpoint before its test_pretrain runs: that run
    trained it, so the summary must not say "reused" (which reads as a stored checkpoint of an earlier run)."""
    results, args = grid
    pytester.makeconftest("""
import pytest

@pytest.fixture(autouse=True)
def built_by_another_task(request, ecg_runner):
    if request.node.name.startswith("test_pretrain"):
        ecg_runner.upstream_checkpoint("cpsc2018", "resnet1d18", 0)
""")
    selection = ["-k", "pretrain-cpsc2018-resnet1d18-s0"]
    first = pytester.runpytest(*selection, *args)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["checkpoints: 1 trained"])
    again = pytester.runpytest(*selection, *args)
    again.stdout.fnmatch_lines(["checkpoints: 1 reused"])


def test_three_shards_after_a_pretrain_phase_give_the_records_of_a_plain_run(pytester, grid, tmp_path):
    """The merge: a selection run plainly and run as pretrain phase + 3 shards has the same records."""
    from test_reliability import comparable, records

    results, args = grid
    selection = ["-k", "ptb and not ptbxl and resnet1d18 and (f0.05 or f1.0) and (scratch or cpsc2018) "
                          "and not transferability"]
    plain = pytester.runpytest(*selection, *args)
    plain.assert_outcomes(passed=6)  # the cells train the one checkpoint they need on first use
    sharded_args = [a if a != str(results) else str(tmp_path / "sharded") for a in args]
    pytester.runpytest(*selection, "--ecg-phase", "pretrain", *sharded_args).assert_outcomes(passed=1)
    for k in (1, 2, 3):
        pytester.runpytest(*selection, "--ecg-shard", f"{k}/3", "--ecg-phase", "all", *sharded_args)
    ours, theirs = records(results), records(tmp_path / "sharded")
    assert sorted(ours) == sorted(theirs) and len(ours) == 6
    assert all(comparable(ours[k]) == comparable(theirs[k]) for k in ours)
    assert not any(r["timing"]["pretrain_built_here"] for r in theirs.values())  # the phase built it


@pytest.mark.parametrize("free_mb, peak_mb, expected", [
    (140_000, 2_000, 8), (10_000, 3_000, 2), (2_000, 3_000, 1), (140_000, None, 1), (140_000, 0, 1)])
def test_cells_per_gpu_never_overflow_the_free_memory(free_mb, peak_mb, expected):
    from ecgbench.cluster.gpus import MEMORY_HEADROOM, cells_per_gpu

    k = cells_per_gpu(free_mb, peak_mb)
    assert k == expected
    assert k == 1 or k * peak_mb <= MEMORY_HEADROOM * free_mb


def test_k_workers_share_each_faked_gpu_and_too_many_is_a_usage_error(pytester):
    """-n auto with 2 cells per GPU on 2 faked GPUs starts 4 workers, two on each device; -n 5 would put 3
    cells on one GPU and is refused before anything runs."""
    pytester.makeconftest("""
import torch
torch.cuda.is_available = lambda: True
torch.cuda.device_count = lambda: 2
""")
    pytester.makepyfile(test_dev="""
import pytest

@pytest.mark.parametrize("i", range(8))
def test_device(ecg_runner, worker_id, i):
    assert ecg_runner.options.device == "cuda:" + str(int(worker_id[2:]) % 2)
""")
    result = pytester.runpytest_subprocess("-n", "auto", "--ecg-cells-per-gpu", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*4 workers*"])
    refused = pytester.runpytest_subprocess("-n", "5", "--ecg-cells-per-gpu", "2", "-p", "no:cacheprovider")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*-n 5 puts 3 cells on one GPU*use -n 4*"])


def test_a_checkpoint_is_built_only_when_a_selected_task_that_needs_it_runs(pytester, grid):
    """A fresh clone's records are reused: its main job must not pre-train checkpoints no cell uses."""
    results, args = grid
    selection = ["-k", "resnet1d18 and cpsc2018 and (pretrain or (ptb and not ptbxl and f0.25 and finetune "
                       "and not transferability))"]
    first = pytester.runpytest(*selection, *args)
    first.assert_outcomes(passed=2)
    for path in (results / "checkpoints").iterdir():  # a clone: the records, no checkpoint
        path.unlink()
    again = pytester.runpytest("-rs", *selection, *args)
    again.assert_outcomes(passed=1, skipped=1)
    again.stdout.fnmatch_lines(["*pretrain-cpsc2018-resnet1d18-s0: no selected task needs it*"])
    assert not list((results / "checkpoints").glob("*.pt"))
    rerun = pytester.runpytest(*selection, *args, "--ecg-rerun", "all")  # now the cell trains: so does its upstream
    rerun.assert_outcomes(passed=2)
    assert len(list((results / "checkpoints").glob("*.pt"))) == 1
