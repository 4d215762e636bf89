"""The shared torch train/eval core: plain arrays and a config in, weights and a history out. No pytest here."""
from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ecgbench.engine.config import TrainConfig
from ecgbench.metrics import bce_loss, classification_metrics


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss: the cell stops at once instead of training on garbage."""


@dataclass(frozen=True)
class ArraySplit:
    """One split as arrays: x float32 [n, 1000, 12] (a memory map is fine), y multi-hot [n, C]."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    history: list[dict] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    stop_reason: str = "max_epochs"
    train_seconds: float = 0.0


def _raise_if_not_finite(loss: float, where: str) -> None:
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"loss became {loss} {where}")


def autocast(device: torch.device):
    """bf16 autocast on CUDA (float64 tensors are left as they are), nothing on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _host_batch(split: ArraySplit, idx: np.ndarray, pin: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Slice one batch straight from the (memory-mapped) arrays: no per-record Python work.

    ``pin``: page-locked memory, so that the copy to the GPU can overlap with its kernels.
    """
    idx = np.sort(idx)
    x = torch.from_numpy(np.ascontiguousarray(split.x[idx], dtype=np.float32))
    y = torch.from_numpy(np.asarray(split.y[idx], dtype=np.float32))
    return (x.pin_memory(), y.pin_memory()) if pin else (x, y)


def iter_batches(split: ArraySplit, order: np.ndarray, batch_size: int, device: torch.device
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``split`` in ``order`` on ``device``.

    On CUDA a helper thread slices and pins the next batch while the GPU runs this one (numpy's copy and the
    pinning release the GIL), so a model step is never kept waiting by the loader. On CPU the loader's work
    and the model's share the same cores: nothing to hide it behind, so batches are made in line.
    """
    chunks = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if device.type != "cuda":
        yield from (_host_batch(split, idx, pin=False) for idx in chunks)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = [pool.submit(_host_batch, split, idx, True) for idx in chunks[:1]]
        for i in range(len(chunks)):
            x, y = upcoming.pop().result()
            if i + 1 < len(chunks):
                upcoming.append(pool.submit(_host_batch, split, chunks[i + 1], True))
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    """Sigmoid probabilities [n, C] in float32, in the order of ``x``."""
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.array(x[start:start + batch_size], dtype=np.float32)).to(device)  # a writable copy
        with autocast(device):
            logits = model(xb)
        out.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _validate(model: nn.Module, val: ArraySplit, batch_size: int, device: torch.device, epoch: int) -> dict:
    prob = predict(model, val.x, batch_size, device)
    if not np.isfinite(prob).all():  # weights that diverged in the epoch's last step: the loss never showed it
        raise NonFiniteLossError(f"the model's validation outputs became NaN or infinite after epoch {epoch}")
    metrics = classification_metrics(val.y, prob, val.classes)
    return {"val_loss": bce_loss(val.y, prob), "val_f1_weighted": metrics["f1_weighted"],
            "val_auroc_macro": metrics["auroc_macro"]}


def make_optimiser(params: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The study's optimiser: Adam, fused into one kernel per step on CUDA."""
    return torch.optim.Adam(params, lr=lr, fused=device.type == "cuda")


def train_step(model: nn.Module, optimiser: torch.optim.Optimizer, xb: torch.Tensor, yb: torch.Tensor,
               device: torch.device) -> torch.Tensor:
    """One optimiser step on a batch already on ``device``: forward under autocast, BCE-with-logits in the
    labels' precision, backward, step. Returns the detached loss (reading it would sync a GPU: callers decide)."""
    with autocast(device):
        logits = model(xb)
    loss = nn.functional.binary_cross_entropy_with_logits(logits.to(yb.dtype), yb)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss.detach()


def fit(model: nn.Module, train: ArraySplit, val: ArraySplit, config: TrainConfig, *, seed: int,
        device: torch.device) -> FitResult:
    """Adam + BCE-with-logits; validation after every epoch; the best epoch (lowest validation loss) is kept.

    Only parameters with ``requires_grad`` are optimised (a linear probe freezes its backbone beforehand).
    ``best_state`` is a real copy of the best epoch's weights, not a view of the live ones.
    """
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once,
        torch.backends.cudnn.deterministic = True  # among the deterministic ones: same seed, same numbers
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimiser = make_optimiser(params, config.lr, device)
    order_rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    result = FitResult(best_epoch=-1, best_val_loss=math.inf)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        model.train()
        passes = max(1, math.ceil(config.min_samples_per_epoch / len(train)))
        order = np.concatenate([order_rng.permutation(len(train)) for _ in range(passes)])
        loss_sum, seen = torch.zeros((), device=device), 0
        for step, (xb, yb) in enumerate(iter_batches(train, order, config.batch_size, device)):
            loss = train_step(model, optimiser, xb, yb, device)
            if device.type != "cuda":  # free on CPU; on CUDA a check per step would sync the GPU every step
                _raise_if_not_finite(loss.item(), f"at epoch {epoch}, batch starting {step * config.batch_size}")
            loss_sum += loss * len(yb)
            seen += len(yb)
        train_loss = loss_sum.item() / seen  # the one host sync of the epoch
        _raise_if_not_finite(train_loss, f"at epoch {epoch} (mean training loss)")
        log = {"epoch": epoch, "train_loss": train_loss, **_validate(model, val, config.batch_size, device, epoch)}
        log["seconds"] = time.perf_counter() - t0
        result.history.append(log)
        if log["val_loss"] < result.best_val_loss:
            result.best_epoch, result.best_val_loss = epoch, log["val_loss"]
            result.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif config.patience and epoch - result.best_epoch >= config.patience:
            result.stop_reason = f"early_stop(patience={config.patience})"
            break
    result.train_seconds = time.perf_counter() - started
    return result
