"""Timing helpers shared by ``benchmarks/test_throughput.py`` and the report, so both measure the same thing.

A train step is what ``engine.train.fit`` does per batch (forward under the engine's autocast, BCE-with-logits
in float32, backward, Adam); inference is ``predict``'s forward. Times exclude warm-up rounds and are read
after a device synchronisation; callers take the median of several rounds.
"""
from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ecgbench.data import PreparedDataset
from ecgbench.engine.train import ArraySplit, autocast as _autocast, fit, iter_batches
from ecgbench.models import build_model
from ecgbench.engine.config import TrainConfig

N_CLASSES = 5  # PTB-XL's superclasses; the head's size barely changes any model's cost
VAL_RECORDS = 64  # the validation pass of a timed epoch: one batch, the same for our epoch and the reference


def sync(device: torch.device) -> None:
    """Wait for queued device work, so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_device(device: torch.device) -> None:
    """GPU settings for measurement: cuDNN picks its fastest kernels for the fixed shapes (benchmark mode)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def fresh_model(name: str, device: torch.device, dtype: torch.dtype = torch.float32, seed: int = 0) -> nn.Module:
    """A seeded model of the registry on ``device`` in ``dtype``."""
    torch.manual_seed(seed)
    return build_model(name, N_CLASSES).to(device=device, dtype=dtype)


def random_batch(batch: int, device: torch.device, dtype: torch.dtype = torch.float32, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch already in device memory: x [batch, 1000, 12], multi-hot y [batch, N_CLASSES]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1000, 12, generator=g, dtype=dtype)
    y = (torch.rand(batch, N_CLASSES, generator=g) < 0.3).to(dtype)
    return x.to(device), y.to(device)


def _autocast_for(device: torch.device, dtype: torch.dtype):
    """The engine's autocast (bf16 on CUDA) for float32 models; a float64 model runs as it is, as the paper's."""
    return _autocast(device) if dtype == torch.float32 else nullcontext()


def train_step(model: nn.Module, device: torch.device, *, compile_model: bool = False, wait: bool = True
               ) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``step(x, y)``: one optimiser step of ``fit`` on a batch already on the device (sets training mode).

    ``wait``: return only when the device has finished the step (to time one step); False queues it, as
    ``fit`` does, for runs of steps timed as a whole.
    """
    dtype = next(model.parameters()).dtype
    forward = torch.compile(model) if compile_model else model
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda")  # as ``fit``
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with _autocast_for(device, dtype):
            logits = forward(x)
        loss = loss_fn(logits.to(y.dtype), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if wait:
            sync(device)

    return step


def inference_step(model: nn.Module, device: torch.device, *, compile_model: bool = False
                   ) -> Callable[[torch.Tensor], None]:
    """``infer(x)``: ``predict``'s forward and sigmoid on a batch already on the device (sets evaluation mode)."""
    dtype = next(model.parameters()).dtype
    forward = torch.compile(model) if compile_model else model
    model.eval()

    @torch.no_grad()
    def infer(x: torch.Tensor) -> None:
        with _autocast_for(device, dtype):
            torch.sigmoid(forward(x).float())
        sync(device)

    return infer


@dataclass(frozen=True)
class Rounds:
    """Wall-clock and process CPU seconds of each timed round."""

    wall: list[float]
    cpu: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    def cpu_share(self, threads: int) -> float:
        """CPU time this process got per wall second and thread: below ~0.9 another process took CPU from it."""
        return sum(self.cpu) / (sum(self.wall) * threads)


def time_rounds(fn: Callable[..., object], *, rounds: int, warmup: int = 1,
                setup: Callable[[], tuple] | None = None) -> Rounds:
    """Time ``rounds`` calls of ``fn`` after ``warmup`` untimed ones; ``fn(*setup())`` with an untimed ``setup``."""
    wall, cpu = [], []
    for i in range(warmup + rounds):
        args = setup() if setup else ()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn(*args)
        if i >= warmup:
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return Rounds(wall, cpu)


# -- one epoch from the prepared cache -----------------------------------------------------------------------
def epoch_splits(dataset: PreparedDataset, val_records: int = VAL_RECORDS) -> tuple[ArraySplit, ArraySplit]:
    """Train on every record of ``dataset`` straight from its memory map; validate on its first records."""
    return (ArraySplit(dataset.signals, dataset.labels, dataset.classes),
            ArraySplit(dataset.signals[:val_records], dataset.labels[:val_records], dataset.classes))


def our_epoch(model: nn.Module, train: ArraySplit, val: ArraySplit, *, batch_size: int,
              device: torch.device) -> None:
    """One epoch of the engine's ``fit`` (training + validation + best-state copy), as a study cell runs it."""
    fit(model, train, val, TrainConfig(epochs=1, batch_size=batch_size, lr=0.01), seed=0, device=device)
    sync(device)


# -- does the loader stall the model? ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoaderStall:
    """Median seconds per train step fed by the engine's loader vs by a batch already in memory."""

    model: str
    batch: int
    device: str
    loader_step_s: float
    memory_step_s: float
    batch_only_s: float  # the loader alone: slicing the memory map and copying to the device

    @property
    def stall(self) -> float:
        """Extra step time the loader costs, as a fraction of the in-memory step (<= 0.05 is the target)."""
        return self.loader_step_s / self.memory_step_s - 1


def loader_stall(model_name: str, dataset: PreparedDataset, *, batch_size: int, device: torch.device,
                 rounds: int = 8, steps: int = 8) -> LoaderStall:
    """Runs of ``steps`` train steps fed by ``fit``'s loader (``iter_batches``) against runs on a batch already
    on the device, alternated ``rounds`` times so drifting load hits both alike; medians of each, per step.

    A run is timed as ``fit`` runs it: steps queued, one wait at the end, so whatever the loader overlaps
    with the device's work costs nothing, and whatever it does not shows as stall.
    """
    steps = min(steps, len(dataset.signals) // batch_size)
    if steps < 1:
        raise ValueError(f"{dataset.name} has {len(dataset.signals)} records, fewer than one batch of {batch_size}")
    model = fresh_model(model_name, device)
    step = train_step(model, device, wait=False)
    split = ArraySplit(dataset.signals, dataset.labels, dataset.classes)
    order = np.random.default_rng(0).permutation(len(split))[:batch_size * steps]
    x_mem, y_mem = next(iter_batches(split, order[:batch_size], batch_size, device))
    step(x_mem, y_mem)  # warm-up
    sync(device)

    def per_step(batches, work: Callable[[torch.Tensor, torch.Tensor], None]) -> float:
        start = time.perf_counter()
        for xb, yb in batches:
            work(xb, yb)
        sync(device)
        return (time.perf_counter() - start) / steps

    loader_s, memory_s = [], []
    for _ in range(rounds):
        loader_s.append(per_step(iter_batches(split, order, batch_size, device), step))
        memory_s.append(per_step(((x_mem, y_mem) for _ in range(steps)), step))
    batch_s = [per_step(iter_batches(split, order, batch_size, device), lambda x, y: None) for _ in range(rounds)]
    return LoaderStall(model_name, batch_size, device.type, statistics.median(loader_s),
                       statistics.median(memory_s), statistics.median(batch_s))


SLOW_ON_CPU = frozenset({"resnet1d50", "resnet1d101"})  # seconds per batch-64 step on 2 cores


def rounds_for(model: str, batch: int, device: torch.device) -> int:
    """Timed rounds of one throughput case: fewer where a CPU step takes seconds, so a full run stays ~10 min."""
    if device.type == "cuda":
        return 20
    return 3 if model in SLOW_ON_CPU or batch >= 256 else 5
