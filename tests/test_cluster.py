"""Cost model, shards, phases, status and the submission plan: deterministic, disjoint, complete, balanced."""
import dataclasses
import random

import pytest
from record_factory import make_record

from ecgbench.cluster.phases import phase_tasks, shard_of, split_into_shards
from ecgbench.cluster.shards import ShardSpec, partition, shard_loads
from ecgbench.cluster.status import grid_status, render_status
from ecgbench.cluster.submit import ClusterSettings, cell_shard_counts, parse_only
from ecgbench.cost import CostModel, format_cost, load_measured, measured_seconds, save_measured, task_work
from ecgbench.results.store import write_record
from ecgbench.study import Cell, Pretraining, enumerate_cells, get_profile, pretrainings_of

SMOKE = get_profile("smoke")
SMOKE_CELLS = enumerate_cells(SMOKE)
SMOKE_TASKS = [*pretrainings_of(SMOKE_CELLS), *SMOKE_CELLS]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "-1/2", "1/0"])
def test_a_bad_shard_spec_is_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match="K/N"):
        ShardSpec.parse(text)


def test_shard_spec_reads_one_based():
    assert ShardSpec.parse(" 2/8 ") == ShardSpec(2, 8) and str(ShardSpec(2, 8)) == "2/8"


@pytest.mark.parametrize("seed", range(20))
def test_shards_are_disjoint_complete_and_independent_of_input_order(seed):
    rng = random.Random(seed)
    chosen = rng.sample(SMOKE_CELLS, rng.randint(1, 80))
    costs = {c.key: rng.choice([1.0, 10.0, 1000.0]) * rng.random() for c in chosen}
    count = rng.randint(1, 9)
    shards = partition(costs, count)
    keys = [k for shard in shards for k in shard]
    assert len(shards) == count and sorted(keys) == sorted(costs) and len(set(keys)) == len(keys)
    shuffled = dict(rng.sample(list(costs.items()), len(costs)))
    assert partition(shuffled, count) == shards


def test_equal_costs_are_ordered_by_key_not_arrival():
    assert partition({"b": 1.0, "a": 1.0, "c": 1.0}, 2) == [["a", "c"], ["b"]]


@pytest.mark.parametrize("count", [2, 3, 8])
def test_smoke_grid_shards_are_within_20_percent_of_the_mean_cost(count):
    costs = CostModel(SMOKE)
    shards = split_into_shards(SMOKE_TASKS, count, costs)
    loads = shard_loads({t.key: costs.cost(t) for t in SMOKE_TASKS}, [[t.key for t in s] for s in shards])
    mean = sum(loads) / count
    assert max(abs(load - mean) for load in loads) <= 0.2 * mean, loads
    # by count instead of cost the same grid is far off: the costs differ by orders of magnitude
    by_count = [SMOKE_TASKS[i::count] for i in range(count)]
    count_loads = [sum(costs.cost(t) for t in shard) for shard in by_count]
    assert max(count_loads) / min(count_loads) > max(loads) / min(loads)


def test_costs_span_orders_of_magnitude_and_follow_the_work():
    costs = CostModel(get_profile("paper"))
    small = Cell("ptb", "gru", 0.05, "scratch", 0)
    big = Cell("ptbxl", "resnet1d101", 1.0, "finetune", 0, "cpsc2018")
    assert costs.cost(big) / costs.cost(small) > 1000
    finetune = Cell("ptb", "resnet1d50", 0.25, "finetune", 0, "ptbxl")
    assert costs.cost(dataclasses.replace(finetune, regime="linear")) < costs.cost(finetune)
    assert costs.cost(dataclasses.replace(finetune, fraction=1.0)) > costs.cost(finetune)
    assert costs.cost(Pretraining("ptbxl", "resnet1d50", 0)) > costs.cost(Pretraining("cpsc2018", "resnet1d50", 0))


def test_min_samples_per_epoch_enters_the_work():
    default = get_profile("default")  # ptb: 300 records, 210 train; 6 epochs of at least 128 samples
    tiny = task_work(default, Cell("ptb", "resnet1d18", 0.05, "scratch", 0))  # 11 records, 12 passes
    assert tiny.train_samples == 6 * 12 * 11
    full = task_work(default, Cell("ptb", "resnet1d18", 1.0, "scratch", 0))  # 210 records, one pass
    assert full.train_samples == 6 * 210 and full.infer_samples == 6 * 30 + 60


def test_measured_times_override_and_calibrate_the_estimate():
    measured_cell = Cell("ptb", "resnet1d18", 1.0, "scratch", 0)
    other = Cell("georgia", "resnet1d18", 1.0, "scratch", 0)
    flops = CostModel(SMOKE)
    costs = CostModel(SMOKE, {measured_cell.key: 30.0})
    assert costs.calibrated and costs.unit() == "s"
    assert costs.cost(measured_cell) == 30.0
    assert costs.cost(other) == pytest.approx(30.0 * flops.cost(other) / flops.cost(measured_cell))
    assert not CostModel(SMOKE).calibrated


def test_measured_seconds_split_cell_and_checkpoint_time(tmp_path):
    records = [make_record("ptb", regime="finetune", upstream="ptbxl", wall_s=50.0),
               make_record("georgia", wall_s=7.0), make_record("code_test", status="failed")]
    records[0]["timing"].update(pretrain_s=30.0, pretrain_built_here=True)
    seconds = measured_seconds(records)
    assert seconds == {"ptbxl->ptb-resnet1d18-f1.0-finetune-s0": 20.0, "pretrain-ptbxl-resnet1d18-s0": 30.0,
                       "georgia-resnet1d18-f1.0-scratch-s0": 7.0}
    save_measured(seconds, tmp_path / "m.json")
    assert load_measured(tmp_path / "m.json") == seconds
    (tmp_path / "bad.json").write_text('{"a": "slow"}')
    with pytest.raises(ValueError, match="bad.json"):
        load_measured(tmp_path / "bad.json")


def test_phases_split_the_selection_and_pretrain_follows_the_cells():
    chosen = [c for c in SMOKE_CELLS if c.downstream == "ptb" and c.model == "gru" and c.fraction == 0.05]
    pre = phase_tasks("pretrain", chosen, [])
    assert pre == [Pretraining(u, "gru", 0) for u in ("ptbxl", "cpsc2018", "georgia")]
    scratch, transfer = phase_tasks("scratch", chosen, []), phase_tasks("transfer", chosen, [])
    assert all(c.regime == "scratch" for c in scratch) and all(c.regime != "scratch" for c in transfer)
    assert sorted(scratch + transfer) == sorted(chosen)
    extra = Pretraining("ptbxl", "lstm", 0)
    assert phase_tasks("pretrain", chosen, [extra])[0] == extra
    with pytest.raises(ValueError, match="phase"):
        phase_tasks("later", chosen, [])


def test_shard_of_picks_one_part_of_the_same_partition():
    costs = CostModel(SMOKE)
    parts = [shard_of(SMOKE_TASKS, ShardSpec(k, 3), costs) for k in (1, 2, 3)]
    assert sorted(t.key for part in parts for t in part) == sorted(t.key for t in SMOKE_TASKS)


@pytest.mark.parametrize("shards, scratch, transfer, expected", [
    (8, 1.0, 3.0, (2, 6)), (1, 1.0, 3.0, (1, 1)), (4, 0.0, 3.0, (0, 4)), (4, 2.0, 0.0, (4, 0)),
    (3, 100.0, 1.0, (2, 1)),
])
def test_cell_shards_are_shared_by_cost(shards, scratch, transfer, expected):
    assert cell_shard_counts(shards, scratch, transfer) == expected


def test_only_names_phases_and_shards():
    assert parse_only(["transfer:2,3", "scratch"]) == {"transfer": {2, 3}, "scratch": set()}
    with pytest.raises(ValueError, match="phase"):
        parse_only(["cells:1"])
    with pytest.raises(ValueError, match="integers"):
        parse_only(["transfer:x"])


def test_cluster_settings_from_toml_are_strict_and_options_win(tmp_path):
    path = tmp_path / "slurm.toml"
    path.write_text('partition = "gpu"\ngpus_per_task = 1\nsbatch = { qos = "high" }\n')
    settings = ClusterSettings.from_toml(path).with_overrides(partition="debug", sbatch={"constraint": "a100"},
                                                                mem_gb=None)
    params = settings.executor_parameters()
    assert params["slurm_partition"] == "debug" and params["gpus_per_node"] == 1
    assert params["slurm_additional_parameters"] == {"qos": "high", "constraint": "a100"}
    path.write_text('partion = "gpu"\n')
    with pytest.raises(ValueError, match="partion"):
        ClusterSettings.from_toml(path)
    with pytest.raises(ValueError, match=r"gpus_per_task = -1 \(must be a number >= 0\); mem_gb = 0 \(must be a "
                                         r"number > 0\); time_min = 0 \(must be a number >= 1\)"):
        settings.with_overrides(gpus_per_task=-1, mem_gb=0, time_min=0)
    path.write_text('time_min = "1h"\n')
    with pytest.raises(ValueError, match=r"time_min = '1h' \(must be a number >= 1\)"):
        ClusterSettings.from_toml(path)


def test_status_counts_done_failed_missing_and_the_remaining_cost(tmp_path):
    profile = dataclasses.replace(SMOKE, name="test", models=("gru",), downstreams=("ptb",), fractions=(1.0,))
    cells = enumerate_cells(profile)  # scratch + finetune/linear from 3 upstreams = 7 cells
    empty = grid_status(tmp_path, profile)
    assert [r[2:] for r in empty.rows] == [(0, 0, 7)] and empty.checkpoints_needed == 3
    for cell in cells[:3]:
        write_record(tmp_path, cell.file_stem, make_record(cell.downstream, cell.model, cell.fraction, cell.regime,
                                                           upstream=cell.upstream))
    failed = cells[3]
    write_record(tmp_path, failed.file_stem, make_record(failed.downstream, failed.model, failed.fraction,
                                                         failed.regime, upstream=failed.upstream, status="failed"))
    status = grid_status(tmp_path, profile)
    assert [r[2:] for r in status.rows] == [(3, 1, 3)] and status.unit == "s"
    assert 0 < status.remaining
    text = render_status(status, profile)
    assert "3/7 cells done, 1 failed, 3 missing" in text and "checkpoints 0/3" in text


def test_format_cost_picks_a_readable_unit():
    assert format_cost(7200, "s") == "2.00 h" and format_cost(42, "s") == "42 s"
    assert format_cost(3e15, "FLOP") == "3.00 PFLOP" and format_cost(5e12, "FLOP") == "5.00 TFLOP"


def _ecgbench(*args: str, timeout: float = 300):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    return subprocess.run([sys.executable, "-m", "ecgbench", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout)


def test_dry_run_of_the_paper_grid_on_8_gpus_shows_the_two_phases():
    out = _ecgbench("submit", "--dry-run", "--shards", "8", "--gpus-per-task", "1", "--", "--ecg-profile", "paper")
    assert out.returncode == 0, out.stderr
    assert "1566 cells, 648 transferability score tasks, 54 pre-trainings" in out.stdout
    assert "[pretrain] array of 54 jobs" in out.stdout
    counts = [int(n) for n in __import__("re").findall(r"\[(?:scratch|transfer)\] array of (\d+) jobs", out.stdout)]
    assert sum(counts) == 8 and "starts after the pretrain array (afterok)" in out.stdout
    assert "--ecg-phase transfer --ecg-shard $K/" in out.stdout and "nothing submitted" in out.stdout


def test_more_shards_than_tasks_gives_one_job_per_task_and_no_empty_job():
    out = _ecgbench("submit", "--dry-run", "--shards", "500", "--", "--ecg-profile", "smoke", "-k",
                    "ptb and gru and f0.05")
    assert out.returncode == 0, out.stderr
    arrays = dict(__import__("re").findall(r"\[(scratch|transfer)\] array of (\d+) jobs", out.stdout))
    assert arrays and all(0 < int(n) < 500 for n in arrays.values()) and " 0 tasks" not in out.stdout


def test_the_dry_run_shows_and_checks_the_shards_only_selects():
    args = ["submit", "--dry-run", "--shards", "4", "--only", "transfer:2", "--", "--ecg-profile", "smoke", "-k",
            "ptb and gru and f0.05"]
    out = _ecgbench(*args)
    assert out.returncode == 0 and "--only: transfer shards 2" in out.stdout, out.stdout + out.stderr
    bad = _ecgbench(*[a.replace("transfer:2", "transfer:9") for a in args])
    assert bad.returncode == 2 and "--only: phase transfer has shards 1.." in bad.stderr and "not [9]" in bad.stderr


def test_grid_shows_each_shard_and_its_cost():
    out = _ecgbench("grid", "--profile", "smoke", "--shards", "3", "--phase", "transfer")
    assert out.returncode == 0, out.stderr
    assert all(f"| {k}/3 " in out.stdout for k in (1, 2, 3)) and "FLOP" in out.stdout
    missing = _ecgbench("grid", "--profile", "smoke", "--shards", "3", "--results", "no-such-folder")
    assert missing.returncode == 2 and "--results no-such-folder: no such folder" in missing.stderr


def test_local_executor_runs_the_phases_in_order_and_status_reads_the_result(tmp_path, data_cache):
    results = tmp_path / "results"
    selection = "ptb and not ptbxl and gru and f0.05 and not linear and (scratch or cpsc2018) and not transferability"
    out = _ecgbench("submit", "--executor", "local", "--shards", "2", "--", "--ecg-profile", "smoke",
                    "--ecg-results", str(results), "--ecg-cache", str(data_cache), "-k", selection)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "submitted pretrain" in out.stdout and "local run finished: 0 failed jobs" in out.stdout
    assert sorted(p.stem for p in results.glob("*.json")) == ["cpsc2018_to_ptb-gru-f0.05-finetune-s0",
                                                             "ptb-gru-f0.05-scratch-s0"]
    status = _ecgbench("status", "--results", str(results), "--profile", "smoke")
    assert status.returncode == 0 and "2/522 cells done, 0 failed, 520 missing" in status.stdout


def test_makespan_releases_later_jobs_when_the_first_ones_are_done():
    from ecgbench.cluster.capacity import _makespan

    # GPU 0: the 4 s job; GPU 1: both 2 s jobs. The 3 s job waits for the first job (t=4): ends at 7.
    assert _makespan([4.0, 2.0, 2.0], 1, [3.0], gpus=2) == 7.0
    assert _makespan([4.0, 1.0], 0, [2.0], gpus=2) == 4.0  # released at once: GPU 1 runs it from t=1 to 3
    assert _makespan([4.0, 1.0], 1, [2.0], gpus=2) == 6.0  # after the 4 s job: from t=4 to 6


def test_capacity_is_total_on_one_gpu_and_never_beats_the_critical_path():
    from ecgbench.cluster.capacity import capacity

    profile = dataclasses.replace(SMOKE, models=("resnet1d18", "gru"))
    rows, floor, total = capacity(profile, {"resnet1d18": 1e-11, "gru": 3e-11}, [1, 4, 1000])
    assert rows[0].wall_s == pytest.approx(total) and rows[0].ideal_s == pytest.approx(total)
    assert all(r.wall_s >= r.ideal_s - 1e-9 and r.ideal_s >= floor for r in rows)
    assert rows[-1].ideal_s == pytest.approx(floor)


def test_seconds_per_flop_comes_from_the_last_epoch_of_each_probe_cell():
    from ecgbench.cluster.capacity import seconds_per_flop
    from ecgbench.cost import model_flops, split_sizes, task_flops

    probe = dataclasses.replace(get_profile("default"), name="test")
    record = make_record("ptb", "gru", 1.0, epochs=6)
    record["history"][-1]["seconds"] = 3.0
    cell = Cell("ptb", "gru", 1.0, "scratch", 0)
    test_flops = split_sizes(300)["test"] * model_flops("gru")[1]
    expected = 3.0 / ((task_flops(probe, cell) - test_flops) / probe.train.epochs)
    assert seconds_per_flop([record], probe) == {"gru": pytest.approx(expected)}
