"""What the throughput benchmarks run: the engine's own training step and inference, an epoch of ``fit``, and
the loader-stall comparison (``throughput/test_throughput.py`` times them with pytest-benchmark).

A train step is the engine's ``train_step`` with the engine's ``make_optimiser`` (the step ``fit`` takes per
batch); inference is ``predict``'s forward under the engine's ``autocast``; each in the precision it is given
(``fp32`` or ``bf16``, as the engine takes it). Nothing here times anything but
the loader stall, a paired comparison that needs runs of steps timed as ``fit`` runs them.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ecgbench.data import PreparedDataset
from ecgbench.engine.config import TrainConfig
from ecgbench.engine.precision import autocast, cpu_has_native_bf16, resolve_precision
from ecgbench.engine.train import ArraySplit, fit, iter_batches, make_optimiser
from ecgbench.engine.train import train_step as engine_train_step
from ecgbench.models import MODELS, build_model

N_CLASSES = 5  # PTB-XL's superclasses; the head's size barely changes any model's cost
VAL_RECORDS = 64  # the validation pass of a timed epoch: one batch, the same for our epoch and the reference
LR = 0.01  # the paper's (and every profile's) learning rate; it does not change a step's time


def sync(device: torch.device) -> None:
    """Wait for queued device work, so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_device(device: torch.device) -> None:
    """GPU settings for measurement: cuDNN picks its fastest kernels for the fixed shapes (benchmark mode)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def precision_in_use(model_name: str, device: torch.device) -> str:
    """The precision a study cell of ``model_name`` computes in on ``device`` under the ``auto`` policy."""
    return resolve_precision("auto", device, bf16_faster_on_cpu=MODELS.get(model_name).bf16_faster_on_cpu,
                             cpu_native_bf16=cpu_has_native_bf16())


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


def train_step(model: nn.Module, device: torch.device, *, precision: str, compile_model: bool = False,
               wait: bool = True) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """``step(x, y)``: the engine's ``train_step`` in ``precision`` with its optimiser on a batch already on the
    device (sets training mode). A float64 model (the paper's precision) runs the ``fp32`` step: no autocast.

    ``wait``: return only when the device has finished the step (to time one step); False queues it, as
    ``fit`` does, for runs of steps timed as a whole.
    """
    forward = torch.compile(model) if compile_model else model
    optimiser = make_optimiser(model.parameters(), LR, device)
    model.train()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        engine_train_step(forward, optimiser, x, y, device, precision)
        if wait:
            sync(device)

    return step


def inference_step(model: nn.Module, device: torch.device, *, precision: str, compile_model: bool = False
                   ) -> Callable[[torch.Tensor], None]:
    """``infer(x)``: ``predict``'s forward and sigmoid on a batch already on the device (sets evaluation mode)."""
    forward = torch.compile(model) if compile_model else model
    model.eval()

    @torch.no_grad()
    def infer(x: torch.Tensor) -> None:
        with autocast(device, precision):
            torch.sigmoid(forward(x).float())
        sync(device)

    return infer


# -- one epoch from the prepared cache -----------------------------------------------------------------------
def epoch_splits(dataset: PreparedDataset, val_records: int = VAL_RECORDS) -> tuple[ArraySplit, ArraySplit]:
    """Train on every record of ``dataset`` straight from its memory map; validate on its first records."""
    return (ArraySplit(dataset.signals, dataset.labels, dataset.classes),
            ArraySplit(dataset.signals[:val_records], dataset.labels[:val_records], dataset.classes))


def our_epoch(model: nn.Module, train: ArraySplit, val: ArraySplit, *, batch_size: int, device: torch.device,
              precision: str) -> None:
    """One epoch of the engine's ``fit`` (training + validation + best-state copy), as a study cell runs it."""
    fit(model, train, val, TrainConfig(epochs=1, batch_size=batch_size, lr=LR, precision=precision), seed=0,
        device=device)
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
                 precision: str, rounds: int = 8, steps: int = 8) -> LoaderStall:
    """Runs of ``steps`` train steps fed by ``fit``'s loader (``iter_batches``) against runs on a batch already
    on the device, alternated ``rounds`` times so drifting load hits both alike; medians of each, per step.

    A run is timed as ``fit`` runs it: steps queued, one wait at the end, so whatever the loader overlaps
    with the device's work costs nothing, and whatever it does not shows as stall.
    """
    steps = min(steps, len(dataset.signals) // batch_size)
    if steps < 1:
        raise ValueError(f"{dataset.name} has {len(dataset.signals)} records, fewer than one batch of {batch_size}")
    model = fresh_model(model_name, device)
    step = train_step(model, device, precision=precision, wait=False)
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
