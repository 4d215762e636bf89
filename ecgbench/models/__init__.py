"""Model registry: the paper's six architectures, open to a user's own (``register_model``)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

from torch import nn

from ecgbench.inputs import DEFAULT_INPUT, STANDARD_LEADS, InputSpec, InputSpecError
from ecgbench.models.base import HEAD_POLICIES, PAPER_HEAD_POLICY, Classifier
from ecgbench.models.checks import ModelError, check_model_name, checked_model
from ecgbench.models.resnet1d import BasicBlock, Bottleneck, resnet1d
from ecgbench.models.rnn import rnn
from ecgbench.registry import BUILT_IN, Registry

ModelFactory = Callable[[int], Classifier]
FAMILIES = ("cnn", "rnn", "other")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: ``factory(n_classes)`` returns a ``Classifier``; ``family`` groups it in the findings;
    ``input`` is what it reads (its data are prepared at that rate, length and lead order).

    ``bf16_faster_on_cpu``: its training step was measured faster under bf16 autocast than in float32 on a CPU
    with native bf16 (the ``bf16`` rows of ``reports/performance.md``); only then does the ``auto`` precision
    train it in bf16 on such a CPU. A fixed fact, not a timing taken at run time, so a cell's precision never
    flips between runs. False (float32) for a model nobody measured.
    """

    factory: ModelFactory
    family: str
    input: InputSpec = field(default=DEFAULT_INPUT)
    bf16_faster_on_cpu: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model family {self.family!r} is not one of {FAMILIES}")
        if not isinstance(self.input, InputSpec):
            raise ValueError(f"model input must be an ecgbench.inputs.InputSpec, got {self.input!r}")


def _declared_input(factory: object) -> InputSpec:
    """The input a factory declares by attributes ``rate_hz``, ``seconds``, ``leads`` (each optional)."""
    return InputSpec(getattr(factory, "rate_hz", DEFAULT_INPUT.rate_hz), getattr(factory, "seconds",
                     DEFAULT_INPUT.seconds), tuple(getattr(factory, "leads", STANDARD_LEADS)))


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
                value = ModelSpec(value, family, _declared_input(value))
            except ValueError as e:
                raise entry.error(str(e)) from None
        specs.append((entry, value))
    for entry, spec in specs:
        try:
            check_model_name(entry.name)
        except ModelError as e:
            raise entry.error(str(e)) from None
        registry.register(entry.name, spec, entry.origin)


MODELS: Registry[ModelSpec] = Registry("model", discover=_discover)


def register_model(name: str, factory: ModelFactory, family: str = "other", *,
                   rate_hz: float = DEFAULT_INPUT.rate_hz, seconds: float = DEFAULT_INPUT.seconds,
                   leads: Sequence[str] = DEFAULT_INPUT.leads,
                   bf16_faster_on_cpu: bool = False) -> None:
    """Add a model: ``factory(n_classes)`` returns a ``Classifier`` (which names its last layer) reading
    [batch, rate_hz x seconds, len(leads)]; it joins the grid, its data prepared at that input."""
    caller = sys._getframe(1).f_globals.get("__name__", "?")  # listed by `ecgbench models`
    origin = BUILT_IN if caller == __name__ else f"module {caller}"
    try:
        spec = ModelSpec(factory, family, InputSpec(rate_hz, seconds, tuple(leads)), bf16_faster_on_cpu)
    except InputSpecError as e:
        raise ValueError(f"model {name!r}: {e}") from None
    MODELS.register(check_model_name(name), spec, origin)


_DRY_RUN_DONE: set[str] = set()  # models whose first build in this process passed a dry forward pass


def build_model(name: str, n_classes: int) -> Classifier:
    """A freshly initialised model from the registry (seed torch first for a reproducible init), checked
    (``checked_model``) so that a broken user model fails by name, not deep inside torch."""
    spec = MODELS.get(name)
    model = checked_model(name, spec.factory, n_classes, dry_run=name not in _DRY_RUN_DONE,
                          input_shape=(spec.input.n_samples, len(spec.input.leads)))
    _DRY_RUN_DONE.add(name)
    return model


def model_family(name: str) -> str:
    """"cnn", "rnn" or "other", as the model was registered."""
    return MODELS.get(name).family


def model_input(name: str) -> InputSpec:
    """The input the model reads, as it was registered."""
    return MODELS.get(name).input


# bf16_faster_on_cpu: the train steps of reports/performance.md (fp32 vs bf16 autocast on an AMX CPU).
register_model("resnet1d18", partial(resnet1d, (2, 2, 2, 2), BasicBlock), "cnn", bf16_faster_on_cpu=True)
register_model("resnet1d50", partial(resnet1d, (3, 4, 6, 3), Bottleneck), "cnn", bf16_faster_on_cpu=True)
register_model("resnet1d101", partial(resnet1d, (3, 4, 23, 3), Bottleneck), "cnn", bf16_faster_on_cpu=True)
register_model("lstm", partial(rnn, nn.LSTM, False), "rnn", bf16_faster_on_cpu=True)
register_model("bilstm", partial(rnn, nn.LSTM, True), "rnn", bf16_faster_on_cpu=True)
register_model("gru", partial(rnn, nn.GRU, False), "rnn")  # its bf16 step was measured slower

__all__ = ["Classifier", "FAMILIES", "HEAD_POLICIES", "MODELS", "ModelError", "ModelSpec", "PAPER_HEAD_POLICY",
           "build_model", "model_family", "model_input", "register_model"]
