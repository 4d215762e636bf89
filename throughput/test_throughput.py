"""Throughput of the train/eval core (pytest-benchmark): benchmarks, not tests, so no time thresholds here.

    pytest throughput --benchmark-json reports/throughput.json   # the whole folder: ~15 min on 2 CPU cores
    ecgbench perf --json reports/throughput.json --out reports/performance.md   # the report from that file
    pytest throughput -k resnet1d18                              # one model
    pytest throughput --benchmark-save=cpu, then --benchmark-compare   # against a saved run

Per model and batch: one step of the engine's ``train_step`` (``test_train_step``, float32; and in float64, the
paper's precision, at the reference batch: ``test_paper_style_step``) and one inference batch
(``test_inference``); one epoch of the engine's ``fit`` from the prepared cache (``test_epoch``) next to the
paper-style epoch (``test_reference_epoch``: float64, pandas frame filtered per item) at two dataset sizes;
whether the memory-mapped loader stalls the model (``test_loader_stall``); and each model's peak memory in a
fresh ``ecgbench memory`` process (``test_peak_memory``). ``extra_info`` names the measurement (``case``) and
holds what the report needs: FLOPs per sample and the matmul ceiling (re-read after each case; the report
takes the run's best reading), CPU share, item fetch time, stall, peak RSS (``ecgbench.perf.readings``).
Under ``--benchmark-disable`` each case runs once and no reading is taken: a quick smoke run. The ``_cuda``
variants skip without a GPU; set ``ECGBENCH_COMPILE=1`` to ``torch.compile`` their models.
"""
from __future__ import annotations

import os
import time
from functools import cache
from typing import Callable

import pytest
import torch

from ecgbench.cost.flops import flops_per_sample
from ecgbench.data import open_dataset
from ecgbench.models import MODELS
from ecgbench.perf.ceiling import ceiling_dtype, matmul_ceiling
from ecgbench.perf.measure import (
    configure_device,
    epoch_splits,
    fresh_model,
    inference_step,
    loader_stall,
    our_epoch,
    random_batch,
    train_step,
)
from ecgbench.perf.memory import smoke_cell_peak_mb
from ecgbench.perf.reference import PaperStyleDataset, float64_copy, item_fetch_ms, paper_style_epoch

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BATCHES = (64, 256)
REFERENCE_BATCHES = (64,)  # float64 train steps behind the report's speed-up column (batch 256 takes minutes)
EPOCH_MODEL, EPOCH_BATCH, EPOCH_SIZES = "resnet1d18", 64, (500, 2000)
COMPILE = os.environ.get("ECGBENCH_COMPILE") == "1"
SLOW_ON_CPU = frozenset({"resnet1d50", "resnet1d101"})  # seconds per batch-64 step on 2 cores

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
STEP_CASES = [pytest.param(m, b, id=f"{m}-b{b}") for m in MODELS.names() for b in BATCHES]
REFERENCE_CASES = [pytest.param(m, b, id=f"{m}-b{b}") for m in MODELS.names() for b in REFERENCE_BATCHES]
EPOCH_CASES = [pytest.param(EPOCH_MODEL, EPOCH_BATCH, n, id=f"{EPOCH_MODEL}-b{EPOCH_BATCH}-n{n}")
               for n in EPOCH_SIZES]
STALL_CASES = [pytest.param(EPOCH_MODEL, EPOCH_BATCH, id=f"{EPOCH_MODEL}-b{EPOCH_BATCH}")]


def rounds_for(model: str, batch: int, device: torch.device, dtype: torch.dtype = torch.float32) -> int:
    """Timed rounds of one step case: fewer where a CPU step takes seconds, so a full run stays ~15 min."""
    if device.type == "cuda":
        return 20
    return 3 if model in SLOW_ON_CPU or batch >= 256 or dtype == torch.float64 else 5


def _dtype_label(device: torch.device, dtype: torch.dtype, compiled: bool) -> str:
    """What the case actually ran as: a float32 model runs under bf16 autocast on CUDA."""
    label = "bf16-autocast" if device.type == "cuda" and dtype == torch.float32 else str(dtype).removeprefix("torch.")
    return label + (", compiled" if compiled else "")


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


def _pedantic(benchmark, device: torch.device, case: str, target, info: dict, **kwargs):
    """``benchmark.pedantic`` on a device configured as a study cell configures it; ``extra_info`` names the
    ``case`` and its ``info`` (model, batch, ...), and on CPU the share of CPU time the process got (below
    ~0.9: other load)."""
    configure_device(device)
    benchmark.extra_info.update(case=case, device=device.type, **info)
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
    """FLOPs per sample and the ceiling (what the report needs), samples/s and the fraction of the ceiling (to
    read the JSON alone); nothing when disabled."""
    median = _median(benchmark)
    if median is None:
        return
    flops, best = _flops(model_name, backward), ceiling(device)
    samples_per_s = batch / median
    benchmark.extra_info.update(flops_per_sample=flops, ceiling_gflops=round(best / 1e9, 2),
                                ceiling_dtype=str(ceiling_dtype(device)).removeprefix("torch."),
                                samples_per_s=round(samples_per_s, 2),
                                achieved_gflops=round(flops * samples_per_s / 1e9, 2),
                                fraction_of_ceiling=round(flops * samples_per_s / best, 4))


def _bench_train(benchmark, model_name: str, batch: int, device: torch.device,
                 ceiling: Callable[[torch.device], float], dtype: torch.dtype = torch.float32) -> None:
    compiled = COMPILE and device.type == "cuda" and dtype == torch.float32
    model = fresh_model(model_name, device, dtype)
    x, y = random_batch(batch, device, dtype)
    step = train_step(model, device, compile_model=compiled)
    _pedantic(benchmark, device, "train", step, {"model": model_name, "batch": batch,
                                                 "dtype": _dtype_label(device, dtype, compiled)},
              args=(x, y), rounds=rounds_for(model_name, batch, device, dtype),
              warmup_rounds=3 if device.type == "cuda" else 1, iterations=1)
    _record_rate(benchmark, model_name, batch, True, device, ceiling)


def _bench_inference(benchmark, model_name: str, batch: int, device: torch.device,
                     ceiling: Callable[[torch.device], float]) -> None:
    compiled = COMPILE and device.type == "cuda"
    model = fresh_model(model_name, device)
    x, _ = random_batch(batch, device)
    infer = inference_step(model, device, compile_model=compiled)
    _pedantic(benchmark, device, "inference", infer, {"model": model_name, "batch": batch,
                                                      "dtype": _dtype_label(device, torch.float32, compiled)},
              args=(x,), rounds=rounds_for(model_name, batch, device),
              warmup_rounds=3 if device.type == "cuda" else 1, iterations=1)
    _record_rate(benchmark, model_name, batch, False, device, ceiling)


def _bench_epoch(benchmark, prepared, model_name: str, batch: int, records: int, device: torch.device) -> None:
    """On CUDA each side gets an untimed epoch first: the first one pays cuDNN's kernel search and lazy
    initialisation, which would otherwise fall on whichever side runs first."""
    train, val = epoch_splits(prepared(records))
    _pedantic(benchmark, device, "epoch", our_epoch, {"model": model_name, "batch": batch, "records": records},
              setup=lambda: ((fresh_model(model_name, device), train, val), {"batch_size": batch, "device": device}),
              rounds=1 if device.type == "cpu" else 3, warmup_rounds=0 if device.type == "cpu" else 1)


def _bench_reference_epoch(benchmark, prepared, model_name: str, batch: int, records: int,
                           device: torch.device) -> None:
    train, val = epoch_splits(prepared(records))
    ref_train = PaperStyleDataset(train.x, train.y, train.classes)
    ref_val = PaperStyleDataset(val.x, val.y, val.classes)
    _pedantic(benchmark, device, "reference_epoch", paper_style_epoch,
              {"model": model_name, "batch": batch, "records": records},
              setup=lambda: ((float64_copy(fresh_model(model_name, CPU)), ref_train, ref_val),
                             {"batch_size": batch, "device": device}),
              rounds=1 if device.type == "cpu" else 3, warmup_rounds=0 if device.type == "cpu" else 1)
    if _median(benchmark) is not None:
        benchmark.extra_info["item_fetch_ms"] = round(item_fetch_ms(ref_train), 3)


def _bench_loader_stall(benchmark, prepared, model_name: str, batch: int, device: torch.device) -> None:
    """The benchmark times the whole paired measurement; the comparison itself goes to ``extra_info``."""
    result = _pedantic(benchmark, device, "loader_stall", loader_stall, {"model": model_name, "batch": batch},
                       args=(model_name, prepared(max(EPOCH_SIZES))),
                       kwargs={"batch_size": batch, "device": device}, rounds=1)
    benchmark.extra_info.update(loader_step_s=result.loader_step_s, memory_step_s=result.memory_step_s,
                                loader_alone_s=result.batch_only_s, stall_fraction=round(result.stall, 4))


@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_train_step(benchmark, ceiling, model_name, batch):
    _bench_train(benchmark, model_name, batch, CPU, ceiling)


@pytest.mark.parametrize("model_name, batch", REFERENCE_CASES)
def test_paper_style_step(benchmark, ceiling, model_name, batch):
    _bench_train(benchmark, model_name, batch, CPU, ceiling, torch.float64)


@pytest.mark.parametrize("model_name, batch", STEP_CASES)
def test_inference(benchmark, ceiling, model_name, batch):
    _bench_inference(benchmark, model_name, batch, CPU, ceiling)


@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_epoch(benchmark, prepared, model_name, batch, records):
    _bench_epoch(benchmark, prepared, model_name, batch, records, CPU)


@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_reference_epoch(benchmark, prepared, model_name, batch, records):
    _bench_reference_epoch(benchmark, prepared, model_name, batch, records, CPU)


@pytest.mark.parametrize("model_name, batch", STALL_CASES)
def test_loader_stall(benchmark, prepared, model_name, batch):
    _bench_loader_stall(benchmark, prepared, model_name, batch, CPU)


@pytest.mark.parametrize("model_name", MODELS.names())
def test_peak_memory(benchmark, ecg_runner, tmp_path, model_name):
    """Peak RSS of a fresh ``ecgbench memory`` process (the time is the whole process: start, pre-train,
    fine-tune, test); one round, since a peak needs a fresh process each time."""
    peak = benchmark.pedantic(smoke_cell_peak_mb, args=(model_name, ecg_runner.options.cache_dir, tmp_path,
                                                        torch.get_num_threads()), rounds=1)
    benchmark.extra_info.update(case="memory", device="cpu", model=model_name, peak_rss_mb=peak)


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
def test_epoch_cuda(benchmark, prepared, model_name, batch, records):
    _bench_epoch(benchmark, prepared, model_name, batch, records, CUDA)


@needs_cuda
@pytest.mark.parametrize("model_name, batch, records", EPOCH_CASES)
def test_reference_epoch_cuda(benchmark, prepared, model_name, batch, records):
    _bench_reference_epoch(benchmark, prepared, model_name, batch, records, CUDA)


@needs_cuda
@pytest.mark.parametrize("model_name, batch", STALL_CASES)
def test_loader_stall_cuda(benchmark, prepared, model_name, batch):
    _bench_loader_stall(benchmark, prepared, model_name, batch, CUDA)
