"""The one cost/time model: what a cell or an upstream pre-training costs, model FLOPs x samples seen, in
seconds once a measurement gives each model its seconds per FLOP.

Why one: the shard balance (``ecgbench submit``, ``--ecg-shard``), the capacity plan and the performance
report's grid extrapolation all price the same tasks; with one model they agree on what a task costs and
differ only in where their seconds per FLOP come from (measured cells, probe epochs, benchmarked train steps).
Why FLOPs: cells differ in cost by three orders of magnitude (a 5 % GRU subset against a full ResNet1d101
fine-tune), so shards balanced by count are not balanced at all. The estimate is deterministic (FLOPs counted
once per model, data sizes from the profile), so every host computes the same shards. Measured times enter
only through a snapshot file (``measured_seconds`` -> ``save_measured``), never the live results folder,
which changes while shards run.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable, Mapping

from ecgbench.engine.config import TrainConfig
from ecgbench.study import (
    Cell,
    Pretraining,
    Profile,
    Task,
    Transferability,
    dataset_records,
    enumerate_cells,
    enumerate_transferability,
    pretrainings_of,
    subset_size,
)

SPLIT_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}  # the synthetic stand-ins' patient split


@dataclass(frozen=True)
class Work:
    """Samples through a model: trained (forward+backward+update) and inferred (forward only)."""

    train_samples: int = 0
    infer_samples: int = 0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.train_samples + other.train_samples, self.infer_samples + other.infer_samples)


def split_sizes(records: int) -> dict[str, int]:
    """Records per split of a dataset of ``records`` records (the synthetic shares; real splits are close)."""
    return {name: max(1, round(records * share)) for name, share in SPLIT_SHARES.items()}


def fit_work(n_train: int, n_val: int, config: TrainConfig) -> Work:
    """``fit``'s work: an epoch repeats a small training set until ``min_samples_per_epoch`` samples were seen.

    Early stopping is ignored: the estimate is the most a run can cost.
    """
    passes = max(1, math.ceil(config.min_samples_per_epoch / n_train))
    return Work(config.epochs * passes * n_train, config.epochs * n_val)


def training_work(profile: Profile, task: Task) -> Work:
    """Samples ``fit`` processes for a pre-training or a cell: every epoch's training and validation."""
    if isinstance(task, Pretraining):
        sizes = split_sizes(dataset_records(profile, task.upstream))
        return fit_work(sizes["train"], sizes["val"], profile.pretrain)
    sizes = split_sizes(dataset_records(profile, task.downstream))
    work = fit_work(subset_size(sizes["train"], task.fraction), sizes["val"], profile.train)
    if task.regime == "linear":  # a frozen backbone: no backward through it, a training step costs a forward
        work = Work(0, work.train_samples + work.infer_samples)
    return work


def task_work(profile: Profile, task: Task) -> Work:
    """Samples a pre-training (``training_work``), a cell (``training_work`` + one test pass) or a score task (one
    forward pass over its training subset; the scores' own work is ``logme_flops``) processes."""
    if isinstance(task, Transferability):
        train = split_sizes(dataset_records(profile, task.downstream))["train"]
        return Work(infer_samples=subset_size(train, task.fraction))
    work = training_work(profile, task)
    if isinstance(task, Pretraining):
        return work
    return work + Work(infer_samples=split_sizes(dataset_records(profile, task.downstream))["test"])


TRAIN_OVER_FORWARD = 3.0  # forward + backward ~ 3 forwards (measured 2.89-3.00 for every model here)


@cache
def _model_facts(model: str) -> tuple[float, int]:
    """(forward FLOPs per sample, width of the features a score task reads) of ``model``, from one build of it
    per process. The width is the input of the model's last layer (ResNets 512, RNNs 100 000 per direction)."""
    import torch

    from ecgbench.cost.flops import flops_per_sample
    from ecgbench.models import build_model

    with torch.random.fork_rng():
        built = build_model(model, 5)
        return flops_per_sample(built, backward=False, batch=1), built.last_linear.in_features


def model_flops(model: str) -> tuple[float, float]:
    """(training, inference) FLOPs per sample of ``model``; the forward is counted once per process.

    Counting the backward too would cost seconds more per process for a few percent of precision.
    """
    forward = _model_facts(model)[0]
    return TRAIN_OVER_FORWARD * forward, forward


def feature_width(model: str) -> int:
    """Width of the features a score task of ``model`` reads (see ``_model_facts``)."""
    return _model_facts(model)[1]


EIGH_FLOPS = 9.0  # a symmetric eigendecomposition with eigenvectors: about 9 m^3 FLOPs (Golub & Van Loan)


def logme_flops(n: int, width: int) -> float:
    """LogME's work after the forward pass over ``n`` records of ``width`` features: the smaller Gram matrix
    (2 n width m FLOPs, m = min(n, width)) and its eigendecomposition. MELEP and LEEP are O(n x labels), nothing
    beside it. For the RNNs this, not the forward pass, is most of a score task: a GRU over 1 000 records is
    about 0.07 TFLOP forward and 0.2 TFLOP of Gram matrix."""
    m = min(n, width)
    return 2.0 * n * width * m + EIGH_FLOPS * m ** 3


def work_flops(model: str, work: Work) -> float:
    train, infer = model_flops(model)
    return work.train_samples * train + work.infer_samples * infer


def task_flops(profile: Profile, task: Task) -> float:
    work = task_work(profile, task)
    flops = work_flops(task.model, work)
    if isinstance(task, Transferability):
        flops += logme_flops(work.infer_samples, feature_width(task.model))
    return flops


def grid_tasks(profile: Profile) -> list[Task]:
    """Every upstream pre-training, every cell and every score task of ``profile``'s whole grid, checkpoints
    first."""
    cells = enumerate_cells(profile)
    return [*pretrainings_of(cells), *cells, *enumerate_transferability(profile)]


def measured_seconds(records: Iterable[dict]) -> dict[str, float]:
    """Measured seconds per task key from stored records: each ok cell, and each checkpoint a cell used.

    A cell that built its checkpoint counts without the pre-training time, which goes to the checkpoint.
    """
    seconds: dict[str, float] = {}
    for record in records:
        timing = record.get("timing") or {}
        if record.get("status") != "ok" or timing.get("wall_s") is None:
            continue
        cell = Cell.from_dict(record["cell"])
        pretrain_s = float(timing.get("pretrain_s") or 0.0)
        seconds[cell.key] = float(timing["wall_s"]) - (pretrain_s if timing.get("pretrain_built_here") else 0.0)
        if cell.pretraining is not None and pretrain_s > 0:
            seconds[cell.pretraining.key] = pretrain_s
    return seconds


def save_measured(seconds: Mapping[str, float], path: Path) -> None:
    from ecgbench.atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(dict(sorted(seconds.items())), indent=1).encode())


def load_measured(path: Path) -> dict[str, float]:
    """A snapshot written by ``save_measured``; a clear error naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read measured times ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, (int, float)) for v in data.values()):
        raise ValueError(f"{path}: measured times must be a JSON object of task key -> seconds")
    return {str(k): float(v) for k, v in data.items()}


class CostModel:
    """Cost of each task of a profile: measured seconds where known, else FLOPs x seconds-per-FLOP.

    Seconds per FLOP come either given per model (``rates``: from probe epochs or benchmarked train steps)
    or fitted per model on the measured tasks of the profile's whole grid (median ratio); a model without
    its own rate takes the median over all models. Fitting on the whole grid, not on a selection, gives every
    phase, shard and host one unit. Without any measurement or rate the cost is in FLOPs (``calibrated`` is
    False) and only its proportions mean something.
    """

    def __init__(self, profile: Profile, measured: Mapping[str, float] | None = None,
                 rates: Mapping[str, float] | None = None) -> None:
        self.profile = profile
        self.measured = dict(measured or {})
        self._ratio: dict[str, float] = {}
        self._global_ratio: float | None = None
        if rates is not None:
            self._set_rates({model: [rate] for model, rate in rates.items()})
        elif self.measured:
            self._fit()

    def _fit(self) -> None:
        ratios: dict[str, list[float]] = {}
        for task in grid_tasks(self.profile):
            if task.key in self.measured:
                ratios.setdefault(task.model, []).append(self.measured[task.key] / task_flops(self.profile, task))
        self._set_rates(ratios)

    def _set_rates(self, ratios: Mapping[str, list[float]]) -> None:
        if any(r <= 0 or not math.isfinite(r) for rs in ratios.values() for r in rs):
            raise ValueError(f"seconds per FLOP must be positive and finite, got {dict(ratios)}")
        self._ratio = {model: statistics.median(r) for model, r in ratios.items()}
        every = [r for rs in ratios.values() for r in rs]
        self._global_ratio = statistics.median(every) if every else None

    @property
    def rates(self) -> dict[str, float]:
        """Seconds per FLOP of each model that has its own (given or fitted)."""
        return dict(self._ratio)

    @property
    def calibrated(self) -> bool:
        return self._global_ratio is not None

    def cost(self, task: Task) -> float:
        """Seconds when calibrated (measured, or FLOPs scaled), else FLOPs."""
        if task.key in self.measured:
            return self.measured[task.key]
        flops = task_flops(self.profile, task)
        if not self.calibrated:
            return flops
        return flops * self._ratio.get(task.model, self._global_ratio)

    def unit(self) -> str:
        return "s" if self.calibrated else "FLOP"

    def format(self, value: float) -> str:
        """A cost for people: hours or seconds when calibrated, else FLOPs with a prefix."""
        return format_cost(value, self.unit())

    def total(self) -> float:
        """The cost of the profile's whole grid (``grid_tasks``)."""
        return sum(self.cost(task) for task in grid_tasks(self.profile))


def format_cost(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value / 3600:.2f} h" if value >= 3600 else f"{value:.0f} s"
    for prefix, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9)):
        if value >= scale:
            return f"{value / scale:.2f} {prefix}FLOP"
    return f"{value:.0f} FLOP"
