"""Every transferability score of one upstream checkpoint from one forward pass over the downstream records.

The scores need two things per record: the checkpoint's sigmoid outputs for its own (source) labels and the
features its replaceable last layer reads. ``transferability_scores`` takes them from any ``SourceForward``
callable; ``classifier_forward`` is the one for an ``ecgbench.models.Classifier`` and is the only torch-specific
part: it reads the features as the input of the classifier's ``last_linear`` (a forward pre-hook), the layer
the paper's fine-tuning replaces (ResNets: ``fc2``, whose input is ``ReLU(fc1(pooled))``; RNNs: ``fc``, whose input
is the flattened output sequence, 1000 x 100 per direction). Forward passes run in float32 in eval mode.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ecgbench.models import Classifier
from ecgbench.transfer.scores import GRAM_CHUNK, Gram, all_scores, numpy_gram

SourceForward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""A batch [b, 1000, 12] (float32, on the CPU) -> (source probabilities [b, S] in [0, 1], features [b, D])."""


def classifier_forward(model: Classifier) -> SourceForward:
    """A ``SourceForward`` of a classifier on its own device; its train/eval mode is restored after each batch."""
    last_layer = model.last_linear
    device = next(model.parameters()).device

    def forward(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []
        hook = last_layer.register_forward_pre_hook(lambda _module, inputs: captured.append(inputs[0]))
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                logits = model(batch.to(device, dtype=torch.float32))
        finally:
            hook.remove()
            model.train(was_training)
        if not captured:
            raise RuntimeError(f"the last layer ({last_layer}) was not called in the forward pass")
        return torch.sigmoid(logits).cpu(), captured[0].flatten(1).cpu()

    return forward


def source_outputs(forward: SourceForward, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Source probabilities [n, S] (float64) and features [n, D] (float32, the largest array) over ``x`` in batches."""
    if len(x) == 0 or batch_size < 1:
        raise ValueError(f"cannot run {len(x)} records in batches of {batch_size}")
    probabilities, features = [], []
    for start in range(0, len(x), batch_size):
        batch_prob, batch_features = forward(torch.as_tensor(np.asarray(x[start:start + batch_size], np.float32)))
        probabilities.append(batch_prob.double().numpy())
        features.append(batch_features.float().numpy())
    return np.concatenate(probabilities), np.concatenate(features)


def torch_gram(device: torch.device | str) -> Gram:
    """A ``Gram`` formed on ``device`` in float64, GRAM_CHUNK feature rows or columns at a time.

    LogME's Gram matrix of the RNNs' 100 000-wide features is O(n^2 D): about 2e13 multiply-adds for PTB-XL's
    15 000 training records, minutes on CPU cores and about a second on a GPU. Only the blocks and the result
    live on the device; the features stay in host memory.
    """
    device = torch.device(device)

    def gram(features: np.ndarray, by_rows: bool) -> np.ndarray:
        n, d = features.shape
        out = torch.zeros((d, d) if by_rows else (n, n), dtype=torch.float64, device=device)
        for start in range(0, n if by_rows else d, GRAM_CHUNK):
            part = features[start:start + GRAM_CHUNK] if by_rows else features[:, start:start + GRAM_CHUNK]
            block = torch.as_tensor(np.ascontiguousarray(part)).to(device, torch.float64)
            out += block.T @ block if by_rows else block @ block.T
        return out.cpu().numpy()

    return gram


def device_gram(device: torch.device) -> Gram:
    """The Gram of a task's device: torch on a GPU, numpy (the reference-tested path) on the CPU."""
    return torch_gram(device) if device.type == "cuda" else numpy_gram


def transferability_scores(forward: SourceForward, x: np.ndarray, y: np.ndarray,
                           batch_size: int = 256, gram: Gram = numpy_gram) -> dict[str, float]:
    """``{"melep", "leep", "logme"}`` of one upstream on downstream records x [n, 1000, 12], labels y [n, C].

    Signs as ``ecgbench.transfer.scores.SCORES``: MELEP lower is better, LEEP and LogME higher.
    LogME forms an n x n Gram matrix of the features when they are wider than n (the RNNs' 100 000): memory
    8 n^2 bytes and O(n^2 D) time, the cost to plan for on large downstream sets.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 3 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected x [n, samples, leads] and y [n, classes] with the same n, got shapes "
                         f"{x.shape} and {y.shape}")
    probabilities, features = source_outputs(forward, x, batch_size)
    return all_scores(probabilities, features, y, gram)
