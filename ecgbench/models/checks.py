"""Checks that make a user's model fail once, by name, where it is registered or first built, instead of deep
inside torch in every cell (or, for a name with ``/``, by writing records into a sub-folder that the
leaderboard never reads)."""
from __future__ import annotations

import re
from typing import Callable

import torch

from ecgbench.models.base import Classifier

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
DRY_INPUT = (2, 1000, 12)  # [batch, samples, leads]: the study's input (10 s at 100 Hz, 12 leads)


class ModelError(ValueError):
    """A registered model whose name or factory cannot be used; the message names the model."""


def check_model_name(name: object) -> str:
    """``name`` if it is safe in a file name and a pytest id: record files and checkpoints are named by it."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ModelError(f"model name {name!r}: use letters, digits, '_', '.' and '-' only, starting with a letter "
                         "or digit (it names record and checkpoint files; a '/' would make a sub-folder)")
    return name


def checked_model(name: str, factory: Callable[[int], object], n_classes: int, dry_run: bool) -> Classifier:
    """``factory(n_classes)``, checked: a ``Classifier`` whose last layer has ``n_classes`` outputs (a factory
    that ignores ``n_classes`` fails here) and, with ``dry_run``, whose forward pass on a batch of two zero
    records gives one logit per class. The dry run costs one forward (about 0.2 s for ResNet1d101 on a CPU
    core), so ``build_model`` does it at a model's first build in a process only."""
    try:
        model = factory(n_classes)
    except Exception as e:  # a user's factory can fail in any way; say whose it is
        raise ModelError(f"model {name!r}: its factory failed for n_classes={n_classes}: {type(e).__name__}: "
                         f"{e}") from e
    if not isinstance(model, Classifier):
        raise ModelError(f"model {name!r}: its factory must return an ecgbench.models.Classifier, got "
                         f"{type(model).__name__}")
    if model.last_linear.out_features != n_classes:
        raise ModelError(f"model {name!r}: built for {n_classes} classes, its last layer "
                         f"{model.new_part_name('last_layer')!r} has {model.last_linear.out_features} outputs (does "
                         "the factory use its n_classes argument for the last layer?)")
    if not dry_run:
        return model
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(DRY_INPUT))
    except Exception as e:  # a shape or type fault of the user's layers
        raise ModelError(f"model {name!r}: a forward pass on a {list(DRY_INPUT)} input (batch, samples, leads) "
                         f"fails: {type(e).__name__}: {e}") from e
    finally:
        model.train(training)
    if tuple(out.shape) != (DRY_INPUT[0], n_classes):
        raise ModelError(f"model {name!r}: built for {n_classes} classes, it outputs shape {list(out.shape)} on a "
                         f"batch of {DRY_INPUT[0]}, expected [{DRY_INPUT[0]}, {n_classes}] (does the factory use "
                         "its n_classes argument for the last layer?)")
    return model
