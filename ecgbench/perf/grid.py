"""How long a profile's whole grid takes on a device, from its benchmarked training steps.

Why extrapolate: the ``paper`` grid is hundreds of cells of 100 epochs; nobody runs it to learn its cost. The
one cost model (``ecgbench.cost``) prices every task as FLOPs x seconds per FLOP; here a model's seconds per
FLOP is its measured train step divided by the FLOPs the cost model counts for that step (batch x training
FLOPs per sample), so the grid costs what its training steps cost at the measured rate. Inference and the
frozen backbone of a linear probe are priced at the same rate per FLOP (the model counts them as forwards).
Simplifications, as in the cost model: early stopping is ignored, data loading is free (see the loader-stall
measurement). ``ecgbench capacity`` uses the same model with rates from per-epoch times of the capacity probe.
"""
from __future__ import annotations

from typing import Mapping

from ecgbench.cost import CostModel, Work, work_flops
from ecgbench.study import Profile


def step_rates(step_seconds: Mapping[str, float], batch: int) -> dict[str, float]:
    """Seconds per FLOP of each model from the seconds of one training step of ``batch`` samples."""
    return {model: seconds / work_flops(model, Work(train_samples=batch)) for model, seconds in step_seconds.items()}


def grid_seconds(profile: Profile, step_seconds: Mapping[str, float]) -> float:
    """Seconds for every cell and upstream checkpoint of ``profile``, from per-model train-step seconds measured
    at the profile's training batch size; every model of the profile needs its step time."""
    missing = sorted(set(profile.models) - set(step_seconds))
    if missing:
        raise ValueError(f"no train step measured at batch {profile.train.batch_size} for {missing}")
    return CostModel(profile, rates=step_rates(step_seconds, profile.train.batch_size)).total()
