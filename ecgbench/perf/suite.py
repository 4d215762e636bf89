"""The measurement plan behind ``reports/performance.md``: what is measured, in which order, on which devices."""
from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ecgbench.data import open_dataset
from ecgbench.models import MODELS
from ecgbench.perf.ceiling import ceiling_dtype, matmul_ceiling
from ecgbench.perf.flops import flops_per_sample
from ecgbench.perf.grid import grid_seconds
from ecgbench.perf.machine import load_average
from ecgbench.perf.measure import (configure_device, epoch_splits, fresh_model, inference_step, loader_stall,
                                   our_epoch, random_batch, rounds_for, Rounds, time_rounds, train_step)
from ecgbench.perf.memory import smoke_cell_peak_mb
from ecgbench.perf.reference import PaperStyleDataset, float64_copy, item_fetch_ms, paper_style_epoch
from ecgbench.perf.report import EpochTiming, PerfRun, Throughput
from ecgbench.provenance import device_name
from ecgbench.study import Profile, get_profile


@dataclass(frozen=True)
class Plan:
    """What one run measures; the defaults are the report's (about 10-15 minutes on 2 CPU cores)."""

    cache_dir: Path
    models: tuple[str, ...] = tuple(MODELS.names())
    batches: tuple[int, ...] = (64, 256)
    reference_batches: tuple[int, ...] = (64,)  # float64 train steps: the speed-up column (batch 256 is minutes)
    epoch_model: str = "resnet1d18"
    epoch_batch: int = 64
    epoch_sizes: tuple[int, ...] = (500, 2000)
    epoch_rounds: int = 1
    memory: bool = True
    compile_model: bool = False  # torch.compile the CUDA models


def _dtype_label(device: torch.device, dtype: torch.dtype, compiled: bool) -> str:
    """What the row actually ran as: a float32 model runs under bf16 autocast on CUDA."""
    label = "bf16-autocast" if device.type == "cuda" and dtype == torch.float32 else str(dtype).removeprefix("torch.")
    return label + (", compiled" if compiled else "")


def _share(timed: Rounds, device: torch.device) -> float | None:
    """The CPU share of CPU measurements (a GPU run leaves the CPU idle by design)."""
    return timed.cpu_share(torch.get_num_threads()) if device.type == "cpu" else None


def _throughput(plan: Plan, device: torch.device, flops: dict[str, tuple[float, float]]) -> list[Throughput]:
    """Every model x batch x dtype case; the ceiling is read before each case and the best reading counts.

    A ceiling is the best the device can do: re-reading it between cases keeps one slow reading (a
    neighbour's burst, a clock dip) from inflating every fraction of the run.
    """
    compiled = plan.compile_model and device.type == "cuda"
    warmup = 3 if device.type == "cuda" else 1
    dtype_of_ceiling = ceiling_dtype(device)
    rows, ceilings = [], []
    for model_name in plan.models:
        train_flops, infer_flops = flops[model_name]
        cases = [(b, torch.float32) for b in plan.batches] + [(b, torch.float64) for b in plan.reference_batches]
        for batch, dtype in cases:
            ceilings.append(matmul_ceiling(device, dtype_of_ceiling, repeats=3))
            model = fresh_model(model_name, device, dtype)
            x, y = random_batch(batch, device, dtype)
            rounds = rounds_for(model_name, batch, device)
            label = _dtype_label(device, dtype, compiled)
            step = train_step(model, device, compile_model=compiled)  # puts the model in training mode
            timed = time_rounds(lambda: step(x, y), rounds=rounds, warmup=warmup)
            rows.append(Throughput(model_name, "train", label, batch, device.type, timed.median, train_flops,
                                   0.0, _share(timed, device)))
            if dtype == torch.float32:
                infer = inference_step(model, device, compile_model=compiled)  # puts it in evaluation mode
                timed = time_rounds(lambda: infer(x), rounds=rounds, warmup=warmup)
                rows.append(Throughput(model_name, "inference", label, batch, device.type, timed.median, infer_flops,
                                       0.0, _share(timed, device)))
    ceilings.append(matmul_ceiling(device, dtype_of_ceiling))
    return [replace(r, ceiling=max(ceilings)) for r in rows]


def _epochs(plan: Plan, device: torch.device) -> list[EpochTiming]:
    """Ours vs the paper-style epoch per dataset size, each on a fresh model (the paper-style one in float64).

    On CUDA each side gets an untimed epoch first: the first one pays cuDNN's kernel search and lazy
    initialisation, which would otherwise fall on whichever side runs first.
    """
    warmup = 1 if device.type == "cuda" else 0
    rows = []
    for records in plan.epoch_sizes:
        ds = open_dataset("ptbxl", synthetic_records=records, cache_dir=plan.cache_dir)
        train, val = epoch_splits(ds)
        ours = time_rounds(lambda m: our_epoch(m, train, val, batch_size=plan.epoch_batch, device=device),
                           setup=lambda: (fresh_model(plan.epoch_model, device),),
                           rounds=plan.epoch_rounds, warmup=warmup)
        ref_train = PaperStyleDataset(train.x, train.y, train.classes)
        ref_val = PaperStyleDataset(val.x, val.y, val.classes)
        reference = time_rounds(
            lambda m: paper_style_epoch(m, ref_train, ref_val, batch_size=plan.epoch_batch, device=device),
            setup=lambda: (float64_copy(fresh_model(plan.epoch_model, torch.device("cpu"))),),
            rounds=plan.epoch_rounds, warmup=warmup)
        shares = [s for s in (_share(ours, device), _share(reference, device)) if s is not None]
        rows.append(EpochTiming(plan.epoch_model, plan.epoch_batch, records, device.type, ours.median,
                                reference.median, min(shares) if shares else None, item_fetch_ms(ref_train)))
    return rows


def _grid_hours(profile: Profile, rows: list[Throughput]) -> float | None:
    """Hours of ``profile``'s grid from one device's times at its batch size; None when a model lacks them."""
    step = {t.model: t.seconds for t in rows if t.kind == "train" and t.batch == profile.train.batch_size
            and t.dtype != "float64"}
    infer = {t.model: t.seconds for t in rows if t.kind == "inference" and t.batch == profile.train.batch_size}
    if not set(profile.models) <= set(step) & set(infer):
        return None
    return grid_seconds(profile, step, infer) / 3600


def run_suite(plan: Plan, devices: list[torch.device], load_threshold: float) -> PerfRun:
    """Measure everything of ``plan`` on each device; CPU runs at the current ``torch.get_num_threads()``."""
    started = time.perf_counter()
    paper = get_profile("paper")  # read before measuring: a broken profiles.toml fails now, not after an hour
    run = PerfRun(date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  device_name=", ".join(device_name(d) for d in devices), torch_version=torch.__version__,
                  threads=torch.get_num_threads(), load_start=load_average(), load_end=0.0,
                  load_threshold=load_threshold, ceilings={})
    flops = {}
    for name in plan.models:
        model = fresh_model(name, torch.device("cpu"))
        flops[name] = (flops_per_sample(model, backward=True), flops_per_sample(model, backward=False))
    for device in devices:
        configure_device(device)
        rows = _throughput(plan, device, flops)
        run.ceilings[f"{device.type} {str(ceiling_dtype(device)).removeprefix('torch.')}"] = rows[0].ceiling
        if device.type == "cpu":
            run.ceilings["cpu float64"] = matmul_ceiling(device, torch.float64)
        run.throughputs += rows
        run.epochs += _epochs(plan, device)
        stall_data = open_dataset("ptbxl", synthetic_records=max(plan.epoch_sizes), cache_dir=plan.cache_dir)
        run.stalls.append(loader_stall(plan.epoch_model, stall_data, batch_size=plan.epoch_batch, device=device))
        hours = _grid_hours(paper, rows)
        if hours is not None:
            run.grid_hours[device_name(device)] = hours
    if plan.memory:
        with tempfile.TemporaryDirectory() as results:
            run.memory_mb = {m: smoke_cell_peak_mb(m, plan.cache_dir, Path(results) / m, torch.get_num_threads())
                             for m in plan.models}
    run.load_end = load_average()
    run.minutes = (time.perf_counter() - started) / 60
    return run
