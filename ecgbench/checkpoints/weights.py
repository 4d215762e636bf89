"""Reading a checkpoint's weights safely and checking that they fit the registered model they claim.

``torch.load(..., weights_only=True)`` only: a file that needs arbitrary pickled code to load is refused,
naming the file, never executed. Each refusal says what differs (keys, shapes, output count).
"""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgbench.models import PAPER_HEAD_POLICY, build_model


class CheckpointError(ValueError):
    """A checkpoint (manifest or weights) that cannot be used as an upstream; the message names the file."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``path``: a state dict, or one under ``state_dict`` (as ecgbench's own and Lightning's)."""
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weights file") from None
    except pickle.UnpicklingError as e:
        code = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        if code is None:
            raise CheckpointError(f"{path}: not a torch weights file (torch.load with weights_only: "
                                  f"{_unpickler_reason(str(e))})") from None
        raise CheckpointError(f"{path}: holds Python objects other than tensors ({code.group(1)}), which "
                              "weights_only loading refuses to run; save the weights alone: "
                              f"torch.save(model.state_dict(), {path.name!r})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a torch weights file ({type(e).__name__}: {e})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()):
        raise CheckpointError(f"{path}: not a state dict (a mapping of parameter names to tensors), got "
                              f"{type(loaded).__name__}" + (f" with keys {list(loaded)[:5]}"
                                                            if isinstance(loaded, dict) else ""))
    return loaded


def _unpickler_reason(message: str) -> str:
    """The unpickler's own reason inside torch's long weights_only message."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", message, re.S)
    return found.group(1).strip() if found else message.strip().splitlines()[0]


@dataclass(frozen=True)
class Fit:
    """How a state dict fits a registered model: its output count and the layer transfer replaces."""

    outputs: int
    last_layer: str  # qualified name, e.g. ``head.fc2``
    parameters: int


def check_fit(state: dict[str, torch.Tensor], model: str, where: Path, outputs: int | None = None) -> Fit:
    """Refuse weights that do not load into ``model`` exactly (missing, unexpected or reshaped keys) or whose last
    layer has another output count than ``outputs`` (the manifest's), naming what differs."""
    probe = build_model(model, 1)
    last = probe.new_part_name(PAPER_HEAD_POLICY)
    weight = state.get(f"{last}.weight")
    if weight is None or weight.ndim != 2:
        raise CheckpointError(f"{where}: does not fit model {model!r}: no 2-D {last}.weight (the layer transfer "
                              f"replaces); its keys start {sorted(state)[:6]}")
    found = int(weight.shape[0])
    if outputs is not None and found != outputs:
        raise CheckpointError(f"{where}: its last layer {last} has {found} outputs, the manifest says "
                              f"{outputs} classes")
    expected = build_model(model, found).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"{where}: does not fit model {model!r} (fits another model?): " + "; ".join(
                f"{what} {len(keys)} keys {keys[:4]}" for what, keys in (
                    ("missing", missing), ("unexpected", unexpected),
                    ("shape differs for", [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                                           for k in reshaped])) if keys))
    return Fit(found, last, sum(int(v.numel()) for v in state.values()))
