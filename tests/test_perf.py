"""The measuring code of ``ecgbench.perf``: fair comparisons, plausible FLOPs, a report that renders.

No time thresholds here: timings belong to ``benchmarks/test_throughput.py`` and ``reports/performance.md``.
Where a test is about the measuring rather than the model, it measures ``TinyNet`` (one linear layer) and
fakes the clock, the load average or the matmul ceiling, so the whole file runs in seconds.
"""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ecgbench.data import open_dataset
from ecgbench.perf import ceiling, machine, measure, suite
from ecgbench.perf.ceiling import matmul_ceiling
from ecgbench.perf.flops import _counted, flops_per_sample, recurrent_flops
from ecgbench.perf.grid import grid_seconds
from ecgbench.perf.machine import wait_until_quiet
from ecgbench.perf.measure import (N_CLASSES, LoaderStall, epoch_splits, fresh_model, inference_step, loader_stall,
                                   our_epoch, random_batch, time_rounds, train_step)
from ecgbench.perf.reference import PaperStyleDataset, float64_copy, paper_style_epoch
from ecgbench.perf.report import COMMAND, EpochTiming, PerfRun, Throughput, render
from ecgbench.perf.suite import Plan, run_suite
from ecgbench.study import get_profile

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


def test_time_rounds_skips_warmup_and_runs_setup_untimed():
    calls = []
    timed = time_rounds(lambda n: calls.append(n), rounds=3, warmup=2, setup=lambda: (len(calls),))
    assert calls == [0, 1, 2, 3, 4] and len(timed.wall) == len(timed.cpu) == 3
    assert timed.median >= 0 and timed.cpu_share(threads=1) >= 0


def test_train_step_updates_the_weights_and_inference_leaves_them(tiny_model):
    model = fresh_model(tiny_model, CPU)
    x, y = random_batch(4, CPU)
    before = _weights(model)
    train_step(model, CPU)(x, y)
    assert model.training and _changed(before, model)
    before = _weights(model)
    inference_step(model, CPU)(x)
    assert not model.training and not _changed(before, model)


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


def test_grid_estimate_scales_with_step_time():
    profile = dataclasses.replace(get_profile("smoke"), models=("resnet1d18", "lstm"))
    times = {"resnet1d18": 0.5, "lstm": 0.2}
    once = grid_seconds(profile, times, times)
    assert once > 0
    assert grid_seconds(profile, {k: 2 * v for k, v in times.items()},
                        {k: 2 * v for k, v in times.items()}) == pytest.approx(2 * once)


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


def test_suite_measures_every_case_and_the_best_ceiling_reading_counts(monkeypatch, tiny_model, data_cache):
    """``run_suite`` end to end on one tiny model: each case, the epochs, the loader stall, and the ceiling
    read before each case and once after them, the best reading applied to every row."""
    readings = iter([3e9, 7e9, 5e9, 1e9])  # float32: before case 1, before case 2, after both; then float64
    read_dtypes = []

    def fake_ceiling(device: torch.device, dtype: torch.dtype = torch.float32, repeats: int = 5,
                     sizes: tuple[int, ...] | None = None) -> float:
        read_dtypes.append(dtype)
        return next(readings)

    monkeypatch.setattr(suite, "matmul_ceiling", fake_ceiling)
    plan = Plan(cache_dir=data_cache, models=(tiny_model,), batches=(8,), reference_batches=(8,),
                epoch_model=tiny_model, epoch_batch=8, epoch_sizes=(RECORDS,), memory=False)
    run = run_suite(plan, [CPU], load_threshold=0.6)
    assert read_dtypes == [torch.float32] * 3 + [torch.float64]
    assert run.ceilings == {"cpu float32": 7e9, "cpu float64": 1e9}
    rows = {(t.kind, t.dtype): t for t in run.throughputs}
    assert list(rows) == [("train", "float32"), ("inference", "float32"), ("train", "float64")]
    assert all(t.ceiling == 7e9 and t.seconds > 0 and t.batch == 8 for t in run.throughputs)
    assert rows["inference", "float32"].flops_per_sample == 2 * 1000 * 12 * N_CLASSES
    assert rows["train", "float32"].flops_per_sample > rows["inference", "float32"].flops_per_sample
    [epoch] = run.epochs
    assert (epoch.model, epoch.batch, epoch.records) == (tiny_model, 8, RECORDS)
    assert epoch.ours_s > 0 and epoch.reference_s > 0 and epoch.cpu_share > 0
    [stall] = run.stalls
    assert (stall.model, stall.batch) == (tiny_model, 8)
    assert run.grid_hours == {} and run.memory_mb == {}  # the paper grid needs its own models' times
    assert "| tiny | train | float64 | 8 |" in render(run)


def _run() -> PerfRun:
    peak = 100e9
    return PerfRun(
        date="2025-01-01T00:00:00+00:00", device_name="cpu (test)", torch_version="2.x", threads=2,
        load_start=0.3, load_end=0.4, load_threshold=0.6, ceilings={"cpu float32": peak},
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
    assert "load average 0.30" in text and "did not get below" not in text
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


def test_report_says_when_the_machine_was_busy():
    run = _run()
    run.load_start = 2.5
    assert "did not get below 0.6" in render(run)

