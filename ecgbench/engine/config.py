"""The optimiser settings of one training run: what the engine takes besides the arrays."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings of one training run; ``patience`` 0 disables early stopping.

    ``min_samples_per_epoch``: an epoch over a smaller training set repeats it (fresh shuffles) until this many
    samples were seen, so a 5 % subset still gets a useful number of optimiser steps (the paper's 100 epochs
    gave it at least 100); 0 keeps plain epochs.
    """

    epochs: int
    batch_size: int
    lr: float
    patience: int = 0
    min_samples_per_epoch: int = 0
