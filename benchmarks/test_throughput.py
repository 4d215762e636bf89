"""Throughput of the train/eval core (pytest-benchmark): benchmarks, not tests, so no time thresholds here.

    pytest benchmarks/test_throughput.py --benchmark-save=cpu     # the whole file: ~10-15 min on 2 CPU cores
    pytest benchmarks/test_throughput.py -k resnet1d18            # one model
    pytest benchmarks/test_throughput.py --benchmark-compare      # against the last saved run

Per model and batch: one training step (``test_train_step``) and one inference batch (``test_inference``);
one epoch of the engine's ``fit`` from the prepared cache (``test_epoch``) next to the paper-style epoch
(``test_reference_epoch``: float64, pandas frame filtered per item) at two dataset sizes; and whether the
memory-mapped loader stalls the model (``test_loader_stall``). ``extra_info`` holds samples/s, FLOPs per
sample and the fraction of the matmul ceiling (re-read after each case; the session's best reading counts).
Under ``--benchmark-disable`` each case runs once and neither FLOPs nor the ceiling is computed: a quick smoke
run. The ``_cuda`` variants skip without a GPU; set ``ECGBENCH_COMPILE=1`` to ``torch.compile`` their models.
``python -m ecgbench.perf`` writes the same measurements as ``reports/performance.md``.
"""
from __future__ import annotations

import os
import time
from functools import cache
from typing import Callable

import pytest
import torch

from ecgbench.data import open_dataset
from ecgbench.models import MODELS
from ecgbench.perf.ceiling import ceiling_dtype, matmul_ceiling
from ecgbench.perf.flops import flops_per_sample
from ecgbench.perf.measure import (configure_device, epoch_splits, fresh_model, inference_step, loader_stall,
                                   our_epoch, random_batch, rounds_for, train_step)
from ecgbench.perf.reference import PaperStyleDataset, float64_copy, paper_style_epoch

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BATCHES = (64, 256)
EPOCH_MODEL, EPOCH_BATCH, EPOCH_SIZES = "resnet1d18", 64, (500, 2000)
COMPILE = os.environ.get("ECGBENCH_COMPILE") == "1"

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
STEP_CASES = [pytest.param(m, b, id=f"{m}-b{b}") for m in MODELS.names() for b in BATCHES]
EPOCH_CASES = [pytest.param(EPOCH_MODEL, EPOCH_BATCH, n, id=f"{EPOCH_MODEL}-b{EPOCH_BATCH}-n{n}")
               for n in EPOCH_SIZES]
STALL_CASES = [pytest.param(EPOCH_MODEL, EPOCH_BATCH, id=f"{EPOCH_MODEL}-b{EPOCH_BATCH}")]


@cache
def _flops(model_name: str, backward: bool) -> float:
    return flops_per_sample(fresh_model(model_name, CPU), backward=backward)


@pytest.fixture(scope="session")
def ceiling() -> Callable[[torch.device], float]:
    """``ceiling(device)``: read the matmul ceiling again; the best reading of the session so far.

    As in the report: a ceiling is the best the device can do, so one slow reading (a neighbour's burst, a
    clock dip) must not inflate the fractions of every case.
    """
    best: dict[str, float] = {}

    def read(device: torch.device) -> float:
        best[device.type] = max(best.get(device.type, 0.0), matmul_ceiling(device, ceiling_dtype(device), repeats=3))
        return best[device.type]

    return read


@pytest.fixture(scope="session")
def prepared(ecg_runner):
    """``prepared(n)``: the synthetic ptbxl stand-in with ``n`` records, memory-mapped from the data cache."""
    return cache(lambda n: open_dataset("ptbxl", synthetic_records=n, cache_dir=ecg_runner.options.cache_dir))


@pytest.fixture(scope="session")
def epoch_seconds() -> dict:
    """Median epoch seconds of ``test_epoch`` per case, so that the reference can state its speed-up."""
    return {}


def _pedantic(benchmark, device: torch.device, target, **kwargs):
    """``benchmark.pedantic`` on a device configured as the report configures it, noting on CPU the share of
    CPU time the process got (below ~0.9: other load)."""
    configure_device(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = benchmark.pedantic(target, **kwargs)
    if device.type == "cpu":
        share = (time.process_time() - cpu) / ((time.perf_counter() - wall) * torch.get_num_threads())
        benchmark.extra_info["cpu_share"] = round(share, 3)
    return result


def _median(benchmark) -> float | None:
    """The benchmark's median seconds, or None under ``--benchmark-disable`` (then nothing is recorded)."""
    return benchmark.stats.stats.median if benchmark.stats is not None else None


def _record_rate(benchmark, model_name: str, batch: int, backward: bool, device: torch.device,
                 ceiling: Callable[[torch.device], float]) -> None:
    """Samples/s, FLOPs per sample and the fraction of the ceiling, in ``extra_info`` (nothing when disabled)."""
    median = _median(benchmark)
    if median is None:
        return
    flops, best = _flops(model_name, backward), ceiling(device)
    samples_per_s = batch / median
    benchmark.extra_info.update(samples_per_s=round(samples_per_s, 2), flops_per_sample=flops,
                                achieved_gflops=round(flops * samples_per_s / 1e9, 2),
                                ceiling_gflops=round(best / 1e9, 2),
                                fraction_of_ceiling=round(flops * samples_per_s / best, 4))


def _bench_train(benchmark, model_name: str, batch: int, device: torch.device,
                 ceiling: Callable[[torch.device], float]) -> None:
    model = fresh_model(model_name, device)
    x, y = random_batch(batch, device)
    step = train_step(model, device, compile_model=COMPILE and device.type == "cuda")
    _pedantic(benchmark, device, step, args=(x, y), rounds=rounds_for(model_name, batch, device),
              warmup_rounds=3 if device.type == "cuda" else 1, iterations=1)
    _record_rate(benchmark, model_name, batch, True, device, ceiling)


def _bench_inference(benchmark, model_name: str, batch: int, device: torch.device,
                     ceiling: Callable[[torch.device], float]) -> None:
    model = fresh_model(model_name, device)
    x, _ = random_batch(batch, device)
    infer = inference_step(model, device, compile_model=COMPILE and device.type == "cuda")
    _pedantic(benchmark, device, infer, args=(x,), rounds=rounds_for(model_name, batch, device),
              warmup_rounds=3 if device.type == "cuda" else 1, iterations=1)
    _record_rate(benchmark, model_name, batch, False, device, ceiling)


def _bench_epoch(benchmark, prepared, epoch_seconds: dict, model_name: str, batch: int, records: int,
                 device: torch.device) -> None:
    train, val = epoch_splits(prepared(records))
    _pedantic(benchmark, device, our_epoch,
              setup=lambda: ((fresh_model(model_name, device), train, val), {"batch_size": batch, "device": device}),
              rounds=1 if device.type == "cpu" else 3)
    median = _median(benchmark)
    if median is not None:
        epoch_seconds[(model_name, batch, records, device.type)] = median
        benchmark.extra_info.update(records=records, samples_per_s=round(records / median, 2))


def _bench_reference_epoch(benchmark, prepared, epoch_seconds: dict, model_name: str, batch: int,
                           records: int, device: torch.device) -> None:
    train, val = epoch_splits(prepared(records))
    ref_train = PaperStyleDataset(train.x, train.y, train.classes)
    ref_val = PaperStyleDataset(val.x, val.y, val.classes)
    _pedantic(benchmark, device, paper_style_epoch,
              setup=lambda: ((float64_copy(fresh_model(model_name, CPU)), ref_train, ref_val),
                             {"batch_size": batch, "device": device}),
              rounds=1 if device.type == "cpu" else 3)
    median = _median(benchmark)
    ours = epoch_seconds.get((model_name, batch, records, device.type))
    if median is not None:
        benchmark.extra_info.update(records=records, samples_per_s=round(records / median, 2))
        if ours is not None:
            benchmark.extra_info["speedup_of_ours"] = round(median / ours, 3)


def _bench_loader_stall(benchmark, prepared, model_name: str, batch: int, device: torch.device) -> None:
    """The benchmark times the whole paired measurement; the comparison itself goes to ``extra_info``."""
    result = _pedantic(benchmark, device, loader_stall, args=(model_name, prepared(max(EPOCH_SIZES))),
                       kwargs={"batch_size": batch, "device": device}, rounds=1)
    benchmark.extra_info.update(loader_step_ms=round(result.loader_step_s * 1e3, 2),
                                memory_step_ms=round(result.memory_step_s * 1e3, 2),
                                loader_alone_ms=round(result.batch_only_s * 1e3, 3),
                                stall_fraction=round(result.stall, 4))


@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_train_step(benchmark, ceiling, model_name, batch):
    _bench_train(benchmark, model_name, batch, CPU, ceiling)


@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_inference(benchmark, ceiling, model_name, batch):
    _bench_inference(benchmark, model_name, batch, CPU, ceiling)


@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records):
    _bench_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records, CPU)


@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_reference_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records):
    _bench_reference_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records, CPU)


@pytest.mark.parametrize("model_name, batch", STALL_CASES)
def test_loader_stall(benchmark, prepared, model_name, batch):
    _bench_loader_stall(benchmark, prepared, model_name, batch, CPU)


@needs_cuda
@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_train_step_cuda(benchmark, ceiling, model_name, batch):
    _bench_train(benchmark, model_name, batch, CUDA, ceiling)


@needs_cuda
@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_inference_cuda(benchmark, ceiling, model_name, batch):
    _bench_inference(benchmark, model_name, batch, CUDA, ceiling)


@needs_cuda
@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_epoch_cuda(benchmark, prepared, epoch_seconds, model_name, batch, records):
    _bench_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records, CUDA)


@needs_cuda
@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_reference_epoch_cuda(benchmark, prepared, epoch_seconds, model_name, batch, records):
    _bench_reference_epoch(benchmark, prepared, epoch_seconds, model_name, batch, records, CUDA)


@needs_cuda
@pytest.mark.parametrize("model_name, batch", STALL_CASES)
def test_loader_stall_cuda(benchmark, prepared, model_name, batch):
    _bench_loader_stall(benchmark, prepared, model_name, batch, CUDA)
