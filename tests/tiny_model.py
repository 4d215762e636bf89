"""A registered model small enough that a real run of a few cells trains in seconds on a CPU: ``tinycnn``.

Tests import it, and pytester runs use its text as their conftest (``TINY_MODEL_CONFTEST``); registering twice
in one process is skipped (the registry rejects duplicates).
"""
from pathlib import Path

from torch import nn

from ecgbench.models import MODELS, Classifier, register_model

NAME = "tinycnn"
TINY_MODEL_CONFTEST = Path(__file__).read_text()


class TinyBackbone(nn.Module):
    """One strided convolution and a global average: 8 features."""

    out_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(12, 8, 9, stride=4), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x.transpose(1, 2))


def build_tiny(n_classes: int) -> Classifier:
    return Classifier(TinyBackbone(), nn.Linear(TinyBackbone.out_features, n_classes), nn.Linear)


if NAME not in MODELS.names():
    register_model(NAME, build_tiny, "cnn")


def tiny_profiles(lr: float = 0.003, records: int = 200, epochs: int = 5) -> str:
    """A profiles file (``--ecg-profiles``) with one profile, ``tiny``: ``tinycnn`` from scratch on ptb."""
    return f"""[tiny]
description = "tinycnn on ptb from scratch: a real run of a few cells in seconds"
upstreams = ["cpsc2018"]
downstreams = ["ptb"]
models = ["{NAME}"]
fractions = [0.5, 1.0]
regimes = ["scratch"]
seeds = 1
synthetic_records = {{ cpsc2018 = 60, ptb = {records} }}
pretrain = {{ epochs = 1, batch_size = 16, lr = 0.001 }}
train = {{ epochs = {epochs}, batch_size = 16, lr = {lr} }}
"""


def import_what_training_imports() -> None:
    """Train one step outside pytester: what torch imports on first use inside an in-process pytester run is
    unloaded after it, and torch cannot register its operator libraries twice (call at a test module's import)."""
    import torch

    from ecgbench.engine.train import make_optimiser, train_step

    model, device = build_tiny(2), torch.device("cpu")
    train_step(model, make_optimiser(model.parameters(), 0.001, device), torch.zeros(2, 1000, 12),
               torch.zeros(2, 2), device, "fp32")


def tiny_weights(path: Path, outputs: int = 3, seed: int = 0, model: str = NAME) -> Path:
    """A state dict of ``model`` (tinycnn) with ``outputs`` classes, as a user's pre-training would save it."""
    import torch

    from ecgbench.models import build_model

    torch.manual_seed(seed)
    torch.save(build_model(model, outputs).state_dict(), path)
    return path


def new_checkpoint(folder: Path, name: str, weights: Path, *options: str) -> Path:
    """``ecgbench checkpoint new NAME --model tinycnn --weights WEIGHTS OPTIONS``: the manifest it wrote."""
    from ecgbench import cli

    out = folder / f"{name}.toml"
    assert cli.main(["checkpoint", "new", name, "--model", NAME, "--weights", str(weights), "--out", str(out),
                     *options]) == 0
    return out
