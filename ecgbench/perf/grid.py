"""How long a profile's whole grid takes on a device, extrapolated from measured per-step times.

Why extrapolate: the ``paper`` grid is hundreds of cells of 100 epochs; nobody runs it to learn its cost.
A cell's time is its batches times the measured step time of its model: ``epochs`` x (training batches x
train-step time + validation batches x inference time) + one test pass, plus each pre-trained upstream
checkpoint once. Upper-bound simplifications: a partial last batch costs a full one, a linear probe costs a
full training step, early stopping is ignored, data loading is free (see the loader-stall measurement).
"""
from __future__ import annotations

import math

from ecgbench.study import Profile, TrainConfig, enumerate_cells, iter_upstream_needs, subset_size

SPLIT_SHARES = {"train": 0.7, "val": 0.1, "test": 0.2}  # the synthetic stand-ins' patient split


def _split_sizes(records: int) -> dict[str, int]:
    return {name: max(1, round(records * share)) for name, share in SPLIT_SHARES.items()}


def _fit_seconds(n_train: int, n_val: int, config: TrainConfig, step_s: float, infer_s: float) -> float:
    """``fit``'s cost: an epoch repeats a small training set until ``min_samples_per_epoch`` samples were seen."""
    b = config.batch_size
    passes = max(1, math.ceil(config.min_samples_per_epoch / n_train))
    return config.epochs * (math.ceil(passes * n_train / b) * step_s + math.ceil(n_val / b) * infer_s)


def grid_seconds(profile: Profile, step_s: dict[str, float], infer_s: dict[str, float]) -> float:
    """Seconds for every cell and upstream checkpoint of ``profile``, from per-model step and inference times.

    ``step_s`` / ``infer_s`` hold the median seconds of one train step / inference batch per model, measured
    at the profile's batch size.
    """
    cells = enumerate_cells(profile)
    total = 0.0
    for upstream, model, _seed in iter_upstream_needs(cells):
        sizes = _split_sizes(profile.synthetic_records[upstream])
        total += _fit_seconds(sizes["train"], sizes["val"], profile.pretrain, step_s[model], infer_s[model])
    for cell in cells:
        sizes = _split_sizes(profile.synthetic_records[cell.downstream])
        n_train = subset_size(sizes["train"], cell.fraction)
        total += _fit_seconds(n_train, sizes["val"], profile.train, step_s[cell.model], infer_s[cell.model])
        total += math.ceil(sizes["test"] / profile.train.batch_size) * infer_s[cell.model]
    return total
