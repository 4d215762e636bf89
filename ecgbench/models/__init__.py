"""Model registry: the paper's six architectures, open to a user's own (``register_model``)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from typing import Callable

from torch import nn

from ecgbench.models.base import HEAD_POLICIES, PAPER_HEAD_POLICY, Classifier
from ecgbench.models.resnet1d import BasicBlock, Bottleneck, resnet1d
from ecgbench.models.rnn import rnn
from ecgbench.registry import BUILT_IN, Registry

ModelFactory = Callable[[int], Classifier]
FAMILIES = ("cnn", "rnn", "other")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``factory(n_classes)`` returns a ``Classifier``; ``family`` groups it in the findings."""

    factory: ModelFactory
    family: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model family {self.family!r} is not one of {FAMILIES}")


def _discover(registry: Registry[ModelSpec]) -> None:
    """Models of the ``ecgbench.models`` entry points: a ``ModelSpec``, or a factory with a ``family`` attribute."""
    from ecgbench.entrypoints import load_group

    specs = []
    for entry in load_group("ecgbench.models"):
        value = entry.value
        if not isinstance(value, ModelSpec):
            family = getattr(value, "family", None)
            if not callable(value) or family is None:
                raise entry.error("must name an ecgbench.models.ModelSpec(factory, family) or a factory "
                                  "function with a `family` attribute ('cnn', 'rnn' or 'other'), got "
                                  f"{type(value).__name__}")
            try:
                value = ModelSpec(value, family)
            except ValueError as e:
                raise entry.error(str(e)) from None
        specs.append((entry, value))
    for entry, spec in specs:
        registry.register(entry.name, spec, entry.origin)


MODELS: Registry[ModelSpec] = Registry("model", discover=_discover)


def register_model(name: str, factory: ModelFactory, family: str = "other") -> None:
    """Add a model: ``factory(n_classes)`` returns a ``Classifier`` (which names its last layer); it joins the grid."""
    caller = sys._getframe(1).f_globals.get("__name__", "?")  # listed by `ecgbench models`
    MODELS.register(name, ModelSpec(factory, family), BUILT_IN if caller == __name__ else f"module {caller}")


def build_model(name: str, n_classes: int) -> Classifier:
    """A freshly initialised model from the registry (seed torch first for a reproducible init)."""
    return MODELS.get(name).factory(n_classes)


def model_family(name: str) -> str:
    """"cnn", "rnn" or "other", as the model was registered."""
    return MODELS.get(name).family


register_model("resnet1d18", partial(resnet1d, (2, 2, 2, 2), BasicBlock), "cnn")
register_model("resnet1d50", partial(resnet1d, (3, 4, 6, 3), Bottleneck), "cnn")
register_model("resnet1d101", partial(resnet1d, (3, 4, 23, 3), Bottleneck), "cnn")
register_model("lstm", partial(rnn, nn.LSTM, False), "rnn")
register_model("bilstm", partial(rnn, nn.LSTM, True), "rnn")
register_model("gru", partial(rnn, nn.GRU, False), "rnn")

__all__ = ["Classifier", "FAMILIES", "HEAD_POLICIES", "MODELS", "ModelSpec", "PAPER_HEAD_POLICY", "build_model",
           "model_family", "register_model"]
