"""The measuring code of ``ecgbench.perf``, the one cost model it shares with the cluster, and the commands
``ecgbench perf``, ``ecgbench capacity`` and ``ecgbench memory``: fair comparisons, plausible FLOPs, a report
rendered from a pytest-benchmark JSON file.

No time thresholds here: timings belong to ``throughput/test_throughput.py`` and ``reports/performance.md``.
Where a test is about the measuring rather than the model, it measures ``TinyNet`` (one linear layer) and
fakes the clock, the load average or the matmul ceiling, so the whole file runs in seconds.
"""
import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from record_factory import make_record
from torch import nn

from ecgbench.cli import main
from ecgbench.cost import CostModel, Work, grid_tasks, model_flops, task_flops, work_flops
from ecgbench.cost.flops import _counted, flops_per_sample, recurrent_flops
from ecgbench.data import open_dataset
from ecgbench.engine.train import make_optimiser
from ecgbench.engine.train import train_step as engine_train_step
from ecgbench.perf import ceiling, machine, measure
from ecgbench.perf.ceiling import matmul_ceiling
from ecgbench.perf.grid import grid_seconds, step_rates
from ecgbench.perf.machine import wait_until_quiet
from ecgbench.perf.measure import (
    LR,
    N_CLASSES,
    LoaderStall,
    epoch_splits,
    fresh_model,
    inference_step,
    loader_stall,
    our_epoch,
    random_batch,
    train_step,
)
from ecgbench.perf.memory import format_peak, smoke_cell_peak_mb
from ecgbench.perf.readings import load_run
from ecgbench.perf.reference import PaperStyleDataset, float64_copy, paper_style_epoch
from ecgbench.perf.report import COMMAND, EpochTiming, PerfRun, Throughput, render
from ecgbench.results.store import write_record
from ecgbench.sections import CAPACITY_SECTION, extract_section, replace_section
from ecgbench.study import Cell, get_profile

ROOT = Path(__file__).resolve().parents[1]

CPU = torch.device("cpu")
RECORDS = 24


@pytest.fixture(scope="module")
def small_dataset(data_cache):
    return open_dataset("ptbxl", synthetic_records=RECORDS, cache_dir=data_cache)


class TinyNet(nn.Module):
    """[B, 1000, 12] -> [B, n_classes] through one linear layer: 2 * 12000 * n_classes FLOPs per forward."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(1000 * 12, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


@pytest.fixture
def tiny_model(monkeypatch) -> str:
    """The registry name ``"tiny"`` builds a ``TinyNet`` in every ``ecgbench.perf`` measurement (this test only)."""
    real = measure.build_model
    monkeypatch.setattr(measure, "build_model", lambda name, n: TinyNet(n) if name == "tiny" else real(name, n))
    return "tiny"


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _changed(before: list[torch.Tensor], model: nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_paper_style_dataset_returns_exactly_what_direct_slicing_returns(small_dataset):
    ds = PaperStyleDataset(small_dataset.signals, small_dataset.labels, small_dataset.classes)
    assert len(ds) == len(small_dataset.signals)
    for i in (0, 1, len(ds) // 2, len(ds) - 1):
        signals, labels = ds[i]
        assert signals.dtype == torch.float64 and signals.shape == (1000, 12)
        np.testing.assert_array_equal(signals.numpy(), small_dataset.signals[i].astype(np.float64))
        np.testing.assert_array_equal(labels.numpy(), small_dataset.labels[i])


def test_float64_copy_is_float64_and_leaves_the_original_alone():
    model = fresh_model("resnet1d18", CPU)
    copy = float64_copy(model)
    assert all(p.dtype == torch.float64 for p in copy.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(a.double(), b) for a, b in zip(model.parameters(), copy.parameters()))


def test_flops_are_positive_and_per_sample_independent_of_the_batch():
    model = fresh_model("resnet1d18", CPU)
    one, two = (flops_per_sample(model, backward=True, batch=b) for b in (1, 2))
    forward = flops_per_sample(model, backward=False, batch=1)
    assert 1e8 < forward < one  # a ResNet18 over 1000 samples: hundreds of MFLOPs forward
    assert two == pytest.approx(one, rel=0.01)  # so the total grows linearly with the batch
    assert one == pytest.approx(3 * forward, rel=0.05)  # backward costs about twice the forward
    assert all(p.grad is None for p in model.parameters())


class Recurrent(nn.Module):
    """[B, T, 12] -> every step's output, flattened: the shape of the registry's recurrent backbones, but small."""

    def __init__(self, cell: type[nn.RNNBase], **kwargs) -> None:
        super().__init__()
        self.rnn = cell(12, 8, batch_first=True, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0].flatten(1)


SEQ = 20  # a short sequence: FLOPs are linear in it, and a CPU RNN steps through it one time step at a time


@pytest.mark.parametrize("backward", [False, True])
def test_recurrent_flops_match_the_counter_where_it_sees_them(backward):
    """The counter sees the CPU GRU's matmuls (but not the fused LSTM's): the analytic count must agree."""
    model = Recurrent(nn.GRU, num_layers=2, bidirectional=True)
    _, per_module = _counted(model, torch.randn(2, SEQ, 12), backward=backward)
    assert recurrent_flops(model.rnn, SEQ, backward) == pytest.approx(per_module["Recurrent.rnn"] / 2, rel=0.01)


def test_lstm_flops_add_the_recurrence_the_counter_misses():
    """Per sample: the head as counted (forward, weight and input gradients) plus the LSTM counted analytically."""
    model = nn.Sequential(Recurrent(nn.LSTM), nn.Linear(SEQ * 8, N_CLASSES))
    expected = 3 * 2 * SEQ * 8 * N_CLASSES + recurrent_flops(model[0].rnn, SEQ, backward=True)
    assert flops_per_sample(model, backward=True, seq_len=SEQ) == pytest.approx(expected, rel=0.01)
    bidirectional = nn.LSTM(12, 100, bidirectional=True)
    assert recurrent_flops(bidirectional, 1000, True) == 2 * recurrent_flops(nn.LSTM(12, 100), 1000, True)


def test_matmul_ceiling_is_the_best_rate_of_every_size_and_repeat(monkeypatch):
    """2 n^3 FLOPs per product over its time; the highest rate counts, not the shortest time."""
    ticks = iter([0.0, 1.0, 0.0, 0.5,  # n=8: 1 s, then 0.5 s -> 2048 FLOP/s at best
                  0.0, 2.0, 0.0, 4.0])  # n=16: 2 s, then 4 s -> 4096 FLOP/s at best
    monkeypatch.setattr(ceiling, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))
    assert matmul_ceiling(CPU, sizes=(8, 16), repeats=2) == 2 * 16 ** 3 / 2.0
    assert next(ticks, None) is None  # every product was timed, warm-ups were not


def test_matmul_ceiling_measures_the_real_device():
    assert matmul_ceiling(CPU, torch.float64, sizes=(64,), repeats=1) > 0


def test_train_step_updates_the_weights_and_inference_leaves_them(tiny_model):
    model = fresh_model(tiny_model, CPU)
    x, y = random_batch(4, CPU)
    before = _weights(model)
    train_step(model, CPU)(x, y)
    assert model.training and _changed(before, model)
    before = _weights(model)
    inference_step(model, CPU)(x)
    assert not model.training and not _changed(before, model)


def test_the_measured_train_step_is_the_engines_step(tiny_model):
    """Same model, same batch: perf's step and the engine's ``train_step`` with its optimiser give the same weights."""
    x, y = random_batch(4, CPU)
    measured, engine = fresh_model(tiny_model, CPU), fresh_model(tiny_model, CPU)
    train_step(measured, CPU)(x, y)
    engine.train()
    engine_train_step(engine, make_optimiser(engine.parameters(), LR, CPU), x, y, CPU)
    assert all(torch.equal(a, b) for a, b in zip(measured.parameters(), engine.parameters()))


def test_a_float64_step_trains_in_float64(tiny_model):
    model = float64_copy(fresh_model(tiny_model, CPU))
    x, y = random_batch(4, CPU, torch.float64)
    before = _weights(model)
    train_step(model, CPU)(x, y)
    assert _changed(before, model) and all(p.dtype == torch.float64 for p in model.parameters())


def test_both_epochs_train_on_the_same_records(small_dataset, tiny_model):
    """Ours in float32, the paper-style one in float64, both on the same memory-mapped splits."""
    train, val = epoch_splits(small_dataset, val_records=8)
    assert isinstance(train.x, np.memmap) and len(train) == len(small_dataset.signals) and len(val) == 8
    ours = fresh_model(tiny_model, CPU)
    before = _weights(ours)
    our_epoch(ours, train, val, batch_size=16, device=CPU)
    assert _changed(before, ours)
    reference = float64_copy(fresh_model(tiny_model, CPU))
    before = _weights(reference)
    preds = paper_style_epoch(reference, PaperStyleDataset(train.x, train.y, train.classes),
                              PaperStyleDataset(val.x, val.y, val.classes), batch_size=16, device=CPU)
    assert _changed(before, reference)
    assert preds.shape == (8, len(small_dataset.classes)) and set(np.unique(preds)) <= {0.0, 1.0}


def test_loader_stall_measures_both_paths(small_dataset, tiny_model):
    result = loader_stall(tiny_model, small_dataset, batch_size=8, device=CPU, rounds=2, steps=3)
    assert (result.model, result.batch, result.device) == (tiny_model, 8, "cpu")
    assert result.loader_step_s > result.batch_only_s > 0 and result.memory_step_s > 0
    with pytest.raises(ValueError, match="fewer than"):
        loader_stall(tiny_model, small_dataset, batch_size=RECORDS + 1, device=CPU)


def test_grid_estimate_is_the_cost_model_at_the_train_steps_rate():
    """A step's measured seconds over the cost model's FLOPs of that step is the rate; the grid costs its FLOPs
    at that rate, so it scales with the step time and a task priced alone costs FLOPs x rate."""
    profile = dataclasses.replace(get_profile("smoke"), models=("resnet1d18", "lstm"))
    steps = {"resnet1d18": 0.5, "lstm": 0.2}
    batch = profile.train.batch_size
    rates = step_rates(steps, batch)
    assert rates["lstm"] == pytest.approx(0.2 / (batch * model_flops("lstm")[0]))
    once = grid_seconds(profile, steps)
    assert once == pytest.approx(sum(task_flops(profile, t) * rates[t.model] for t in grid_tasks(profile)))
    assert grid_seconds(profile, {k: 2 * v for k, v in steps.items()}) == pytest.approx(2 * once)
    with pytest.raises(ValueError, match=r"no train step measured at batch .* \['lstm'\]"):
        grid_seconds(profile, {"resnet1d18": 0.5})


def test_cost_model_takes_given_rates_or_fits_them_on_measured_tasks():
    profile = dataclasses.replace(get_profile("smoke"), models=("resnet1d18", "lstm"))
    tasks = grid_tasks(profile)
    given = CostModel(profile, rates={"resnet1d18": 2e-12, "lstm": 4e-12})
    assert given.calibrated and given.unit() == "s"
    assert given.cost(tasks[0]) == pytest.approx(task_flops(profile, tasks[0]) * given.rates[tasks[0].model])
    measured = {t.key: given.cost(t) for t in tasks[:3]}
    fitted = CostModel(profile, measured)
    assert {m: pytest.approx(r) for m, r in fitted.rates.items()} == {
        m: r for m, r in given.rates.items() if m in {t.model for t in tasks[:3]}}
    assert fitted.total() == pytest.approx(sum(fitted.cost(t) for t in tasks))
    assert not CostModel(profile).calibrated and CostModel(profile).unit() == "FLOP"
    with pytest.raises(ValueError, match="positive and finite"):
        CostModel(profile, rates={"lstm": 0.0})
    assert work_flops("lstm", Work(2, 3)) == 2 * model_flops("lstm")[0] + 3 * model_flops("lstm")[1]


@pytest.fixture
def fake_clock(monkeypatch) -> list[float]:
    """``machine``'s sleeps advance a fake monotonic clock; the list holds every sleep."""
    sleeps: list[float] = []
    monkeypatch.setattr(machine, "time", SimpleNamespace(monotonic=lambda: sum(sleeps), sleep=sleeps.append))
    return sleeps


def test_wait_until_quiet_polls_until_the_load_drops(monkeypatch, fake_clock):
    loads = iter([2.0, 1.0, 0.3])
    monkeypatch.setattr(machine, "load_average", lambda: next(loads))
    assert wait_until_quiet(threshold=0.5, timeout_s=100, poll_s=15) == 0.3
    assert fake_clock == [15, 15]


def test_wait_until_quiet_gives_up_at_the_timeout(monkeypatch, fake_clock):
    monkeypatch.setattr(machine, "load_average", lambda: 2.0)
    assert wait_until_quiet(threshold=0.5, timeout_s=40, poll_s=15) == 2.0
    assert fake_clock == [15, 15, 10]  # the last sleep ends at the deadline, not a poll later
    fake_clock.clear()
    assert wait_until_quiet(threshold=0.5, timeout_s=0) == 2.0 and fake_clock == []


def _run() -> PerfRun:
    peak = 100e9
    return PerfRun(
        date="2025-01-01T00:00:00+00:00", device_name="cpu (test)", torch_version="2.x", threads=2,
        load_start=0.3, load_end=0.4, ceilings={"cpu float32": peak},
        throughputs=[Throughput("resnet1d18", "train", "float32", 64, "cpu", 0.64, 1e9, peak, 0.98),
                     Throughput("resnet1d18", "train", "float64", 64, "cpu", 1.92, 1e9, peak),
                     Throughput("resnet1d18", "inference", "float32", 64, "cpu", 0.2, 0.35e9, peak),
                     Throughput("resnet1d50", "train", "float32", 256, "cpu", 20.0, 4.7e9, peak)],
        epochs=[EpochTiming("resnet1d18", 64, 500, "cpu", 10.0, 30.0, 0.9, 2.0),
                EpochTiming("resnet1d18", 64, 2000, "cpu", 40.0, 200.0, 0.9, 8.0)],
        stalls=[LoaderStall("resnet1d18", 64, "cpu", 0.642, 0.64, 0.001)],
        memory_mb={"resnet1d18": 600.0}, grid_hours={"cpu (test)": 1234.0}, minutes=12)


def test_report_renders_every_measurement():
    text = render(_run())
    assert f"`{COMMAND}`" in text.splitlines()[2]
    assert "load average 0.30 when measuring started, 0.40 when it ended" in text
    assert ("| resnet1d18 | train | float32 | 64 | 100.0 | 1.000 | 100.0 | 100% | 3.00x | 0.98 | cpu | 2025-01-01 |"
            in text)
    assert "| resnet1d18 | train | float64 | 64 | 33.3 | 1.000 | 33.3 | 33% | baseline |" in text
    assert "| resnet1d18 | inference | float32 | 64 | 320.0 | 0.350 | 112.0 | 112% | - | - |" in text
    assert "| resnet1d18 | 64 | 2000 | 40.0 | 200.0 | 5.00x | 8.00 | 0.90 | cpu |" in text
    assert "speed-up grows with records | increasing | 3.00x -> 5.00x | yes |" in text
    assert "item fetch cpu: grows with records (O(N) filter) | increasing | 2.0 ms -> 8.0 ms | yes |" in text
    assert "resnet1d50 train b256 cpu float32: fraction of ceiling | >= 50% | 60% | yes |" in text
    assert "| loader stall resnet1d18 b64 cpu | <= 5% | +0.3% | yes |" in text
    assert "| resnet1d18 | 600 |" in text and "| cpu (test) | 1,234 |" in text




# -- the report from a pytest-benchmark JSON file ------------------------------------------------------------
FACTS = {"torch": "2.x", "threads": 2, "device_names": {"cpu": "cpu (test)"}, "load_start": 0.3, "load_end": 0.5,
         "minutes": 14.0}


def _bench(name: str, median: float | None, **extra) -> dict:
    """One entry of ``benchmarks`` as pytest-benchmark writes it (``stats`` absent when it did not time)."""
    entry = {"group": None, "name": name, "fullname": f"throughput/test_throughput.py::{name}", "params": {},
             "param": None, "extra_info": extra,
             "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0,
                         "min_time": 5e-06, "warmup": False}}
    if median is not None:
        entry["stats"] = {"min": median, "max": median, "mean": median, "stddev": 0.0, "rounds": 3,
                          "median": median, "iqr": 0.0, "q1": median, "q3": median, "iqr_outliers": 0,
                          "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": median, "hd15iqr": median,
                          "ops": 1 / median, "total": 3 * median, "data": [median] * 3, "iterations": 1}
    return entry


def _benchmark_json(tmp_path: Path, benchmarks: list[dict] | None = None, facts: dict | None = FACTS) -> Path:
    step = {"device": "cpu", "model": "resnet1d18", "batch": 64}
    benchmarks = benchmarks if benchmarks is not None else [
        _bench("test_train_step[resnet1d18-b64]", 0.64, case="train", dtype="float32", flops_per_sample=1e9,
               ceiling_gflops=80.0, ceiling_dtype="float32", cpu_share=0.98, **step),
        _bench("test_paper_style_step[resnet1d18-b64]", 1.92, case="train", dtype="float64", flops_per_sample=1e9,
               ceiling_gflops=100.0, ceiling_dtype="float32", **step),
        _bench("test_inference[resnet1d18-b64]", 0.2, case="inference", dtype="float32", flops_per_sample=0.35e9,
               ceiling_gflops=90.0, ceiling_dtype="float32", **step),
        _bench("test_epoch[resnet1d18-b64-n500]", 10.0, case="epoch", records=500, cpu_share=0.95, **step),
        _bench("test_reference_epoch[resnet1d18-b64-n500]", 30.0, case="reference_epoch", records=500,
               cpu_share=0.9, item_fetch_ms=2.0, **step),
        _bench("test_loader_stall[resnet1d18-b64]", 5.0, case="loader_stall", loader_step_s=0.642,
               memory_step_s=0.64, loader_alone_s=0.001, **step),
        _bench("test_peak_memory[resnet1d18]", 30.0, case="memory", device="cpu", model="resnet1d18",
               peak_rss_mb=600.0),
        _bench("test_unrelated", 1.0)]  # no case: a benchmark the report does not use
    machine_info = {"node": "test", "processor": "x86_64", "machine": "x86_64", "python_version": "3.11.0"}
    if facts is not None:
        machine_info["ecgbench"] = facts
    path = tmp_path / "throughput.json"
    path.write_text(json.dumps({"machine_info": machine_info, "commit_info": {"id": "abc", "dirty": False},
                                "benchmarks": benchmarks, "datetime": "2025-01-01T00:00:00+00:00",
                                "version": "5.1.0"}))
    return path


def _small_grid():
    smoke = get_profile("smoke")
    return dataclasses.replace(smoke, models=("resnet1d18",), train=dataclasses.replace(smoke.train, batch_size=64))


def test_the_report_renders_from_a_benchmark_json(tmp_path):
    """Every case of the JSON lands in its table; the run's best ceiling reading applies to every row, and the
    grid is extrapolated from the train step at the grid's batch size."""
    profile = _small_grid()
    run = load_run(_benchmark_json(tmp_path), profile)
    assert run.ceilings == {"cpu float32": 100e9} and (run.threads, run.minutes) == (2, 14.0)
    assert run.grid_hours == {"cpu (test)": pytest.approx(grid_seconds(profile, {"resnet1d18": 0.64}) / 3600)}
    text = render(run)
    assert ("| resnet1d18 | train | float32 | 64 | 100.0 | 1.000 | 100.0 | 100% | 3.00x | 0.98 | cpu | 2025-01-01 |"
            in text)
    assert "| resnet1d18 | inference | float32 | 64 | 320.0 | 0.350 | 112.0 | 112% | - | - |" in text
    assert "| resnet1d18 | 64 | 500 | 10.0 | 30.0 | 3.00x | 2.00 | 0.90 | cpu |" in text
    assert "| loader stall resnet1d18 b64 cpu | <= 5% | +0.3% | yes |" in text
    assert "| resnet1d18 | 600 |" in text and "cpu float32 100.0 GFLOP/s" in text
    assert load_run(_benchmark_json(tmp_path), get_profile("paper")).grid_hours == {}  # no batch-256 steps


def test_a_benchmark_json_that_cannot_make_the_report_is_named(tmp_path):
    with pytest.raises(ValueError, match="machine_info has no 'ecgbench' facts"):
        load_run(_benchmark_json(tmp_path, facts=None), _small_grid())
    disabled = [_bench("test_train_step[gru-b64]", None, case="train", model="gru", batch=64, device="cpu")]
    with pytest.raises(ValueError, match=r"test_train_step\[gru-b64\].*no positive median"):
        load_run(_benchmark_json(tmp_path, disabled), _small_grid())
    with pytest.raises(ValueError, match="unknown case 'warp'"):
        load_run(_benchmark_json(tmp_path, [_bench("test_x", 1.0, case="warp")]), _small_grid())
    with pytest.raises(ValueError, match=r"test_y.*extra_info has no 'flops_per_sample'"):
        load_run(_benchmark_json(tmp_path, [_bench("test_y", 1.0, case="inference", model="gru", batch=8,
                                                   device="cpu", dtype="float32", ceiling_gflops=1.0,
                                                   ceiling_dtype="float32")]), _small_grid())
    with pytest.raises(ValueError, match=r"the run's facts lack \['minutes'\]"):
        load_run(_benchmark_json(tmp_path, facts={k: v for k, v in FACTS.items() if k != "minutes"}), _small_grid())
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: cannot read"):
        load_run(tmp_path / "bad.json", _small_grid())


# -- the commands ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, flag", [("perf", "--measure"), ("capacity", "--probe"), ("memory", "--threads")])
def test_every_command_has_help(capsys, command, flag):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and flag in capsys.readouterr().out


def test_perf_renders_from_json_and_keeps_the_capacity_section(tmp_path, capsys):
    out = tmp_path / "performance.md"
    out.write_text(replace_section("# old report\n", CAPACITY_SECTION, "## Capacity plan\nkept"))
    args = ["perf", "--json", str(_benchmark_json(tmp_path)), "--out", str(out), "--grid-profile", "smoke"]
    assert main(args) == 0
    text = out.read_text()
    assert "# old report" not in text and "| resnet1d18 | 600 |" in text
    assert extract_section(text, CAPACITY_SECTION).splitlines()[2] == "kept"
    assert f"wrote {out}" in capsys.readouterr().out


def test_perf_measure_runs_the_benchmarks_with_the_throughput_conftest(tmp_path):
    """``--measure`` runs pytest-benchmark on the benchmarks folder (here a one-case stand-in that uses the real
    ``throughput/conftest.py``) into the JSON, then renders the report from it."""
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "conftest.py").write_text((ROOT / "throughput" / "conftest.py").read_text())
    (bench / "test_one.py").write_text(
        "def test_peak(benchmark):\n"
        "    benchmark.pedantic(lambda: None, rounds=2)\n"
        "    benchmark.extra_info.update(case='memory', device='cpu', model='gru', peak_rss_mb=123.0)\n")
    out, report_json = tmp_path / "performance.md", tmp_path / "run.json"
    args = ["perf", "--measure", "--benchmarks", str(bench), "--json", str(report_json), "--out", str(out),
            "--max-wait", "0", "--grid-profile", "smoke"]
    assert main(args) == 0
    facts = json.loads(report_json.read_text())["machine_info"]["ecgbench"]
    assert facts["threads"] >= 1 and facts["device_names"]["cpu"].startswith("cpu")
    assert "| gru | 123 |" in out.read_text()


def test_capacity_writes_its_section_into_the_performance_report(tmp_path, capsys):
    probe = tmp_path / "probe"
    for model in ("resnet1d18", "lstm"):
        record = make_record("cpsc2018", model, epochs=2)
        record["profile"] = record["identity"]["profile"] = "probe"
        write_record(probe, Cell.from_dict(record["cell"]).key, record)
    report = tmp_path / "performance.md"
    report.write_text("# Performance\n")
    args = ["capacity", "--probe", str(probe), "--probe-profiles", str(ROOT / "benchmarks" / "capacity-probe.toml"),
            "--profile", "default", "--gpus", "1", "4", "--update", str(report)]
    assert main(args) == 0
    text = report.read_text()
    section = extract_section(text, CAPACITY_SECTION)
    assert text.startswith("# Performance\n") and "Capacity plan: the `default` grid" in section
    assert "| resnet1d18 " in section and "| lstm " in section
    capsys.readouterr()
    assert main([*args[:5], "--profile", "paper"]) == 2  # the paper grid has models the probe did not measure
    assert "the probe measured no cell of ['bilstm', 'gru', 'resnet1d101', 'resnet1d50']" in capsys.readouterr().err


def test_memory_names_the_failing_child_process(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)ecgbench memory nope .* exited 2: .*invalid choice"):
        smoke_cell_peak_mb("nope", tmp_path, tmp_path / "results", 1)
    assert format_peak("gru", 512.04) == "gru: heaviest smoke cell, peak RSS 512.0 MiB"
