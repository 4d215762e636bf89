"""Model registry: the paper's six architectures, open to a user's own (``register_model``)."""
from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from ecgbench.models.base import Classifier
from ecgbench.models.resnet1d import BasicBlock, Bottleneck, resnet1d
from ecgbench.models.rnn import rnn
from ecgbench.registry import Registry

ModelFactory = Callable[[int], Classifier]

MODELS: Registry[ModelFactory] = Registry("model")
MODELS.register("resnet1d18", partial(resnet1d, (2, 2, 2, 2), BasicBlock))
MODELS.register("resnet1d50", partial(resnet1d, (3, 4, 6, 3), Bottleneck))
MODELS.register("resnet1d101", partial(resnet1d, (3, 4, 23, 3), Bottleneck))
MODELS.register("lstm", partial(rnn, nn.LSTM, False))
MODELS.register("bilstm", partial(rnn, nn.LSTM, True))
MODELS.register("gru", partial(rnn, nn.GRU, False))

CNN_MODELS = ("resnet1d18", "resnet1d50", "resnet1d101")


def build_model(name: str, n_classes: int) -> Classifier:
    """A freshly initialised model from the registry (seed torch first for a reproducible init)."""
    return MODELS.get(name)(n_classes)


def register_model(name: str, factory: ModelFactory) -> None:
    """Add a user model: ``factory(n_classes)`` returns a ``Classifier``; it then joins the grid."""
    MODELS.register(name, factory)


__all__ = ["Classifier", "MODELS", "CNN_MODELS", "build_model", "register_model"]
