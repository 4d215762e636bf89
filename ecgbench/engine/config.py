"""The settings of one training run: what the engine takes besides the arrays and the device."""
from __future__ import annotations

from dataclasses import dataclass

from ecgbench.engine.precision import FP32, check_precision


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings and precision of one training run; ``patience`` 0 disables early stopping.

    ``min_samples_per_epoch``: an epoch over a smaller training set repeats it (fresh shuffles) until this many
    samples were seen, so a 5 % subset still gets a useful number of optimiser steps (the paper's 100 epochs
    gave it at least 100); 0 keeps plain epochs.

    ``precision``: ``fp32`` or ``bf16`` (autocast), already resolved for this model and device by the caller
    (``ecgbench.engine.precision.resolve_precision``); a profile's configs hold the default and carry its policy
    apart.
    """

    epochs: int
    batch_size: int
    lr: float
    patience: int = 0
    min_samples_per_epoch: int = 0
    precision: str = FP32

    def __post_init__(self) -> None:
        check_precision(self.precision)
