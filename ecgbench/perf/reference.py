"""The paper's way of training an epoch, kept as the baseline our engine is measured against.

What Nguyen & Do's code does (github.com/cuongvng/transfer-learning-ecg-diagnosis, ``ptbxl_dataset.py`` and
``train.py``): the signals live in one long pandas frame, one row per time sample (``ecg_id`` + 12 lead
columns, 1000 rows per record, float64 as ``read_csv`` gives them); each ``__getitem__`` filters the whole frame
with ``x[x.ecg_id == ecg_id]``, an O(N) scan per item, so an epoch costs O(N^2); the model runs in float64; a
default ``DataLoader`` (no workers) collates items; every batch ends with ``del`` + ``torch.cuda.empty_cache()``
(on CPU we pay ``gc.collect()`` instead, the same kind of per-batch housekeeping); and after the epoch it
classifies the validation set through the same dataset at batch 128. Only the data and model are ours, so the
comparison isolates the implementation.
"""
from __future__ import annotations

import copy
import gc
import statistics
import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecgbench.data.dataset import LEADS, N_SAMPLES

VAL_BATCH = 128  # the paper's classify() batch size


class PaperStyleDataset(Dataset):
    """Records held in a long frame and looked up by filtering it per item, as the paper's PTB-XL dataset does."""

    def __init__(self, signals: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> None:
        n = len(signals)
        self.classes = list(classes)
        self.x = pd.DataFrame(np.asarray(signals, dtype=np.float64).reshape(n * N_SAMPLES, len(LEADS)),
                              columns=list(LEADS))
        self.x.insert(0, "ecg_id", np.repeat(np.arange(n), N_SAMPLES))
        self.Y = pd.DataFrame(np.asarray(labels, dtype=np.int64), columns=self.classes)
        self.Y.insert(0, "ecg_id", np.arange(n))

    def __len__(self) -> int:
        return self.Y.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        ecg_id = self.Y["ecg_id"].iloc[index]
        labels = torch.tensor(self.Y[self.classes].iloc[index].values)
        signals = torch.tensor(self.x[self.x.ecg_id == ecg_id].drop(columns=["ecg_id"]).values)
        return signals, labels


def item_fetch_ms(dataset: PaperStyleDataset, items: int = 30, seed: int = 0) -> float:
    """Median milliseconds of one ``dataset[i]`` over random items: the frame filter alone, no model."""
    times = []
    for index in np.random.default_rng(seed).integers(0, len(dataset), items):
        start = time.perf_counter()
        dataset[int(index)]
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` (the paper's ``model.to(dtype=torch.double)``); the original is untouched."""
    return copy.deepcopy(model).to(torch.float64)


def _release(device: torch.device) -> None:
    """The paper's per-batch housekeeping: ``empty_cache`` on CUDA, a full garbage collection on CPU."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    else:
        gc.collect()


def paper_style_epoch(model: nn.Module, train: PaperStyleDataset, val: PaperStyleDataset, *, batch_size: int,
                      device: torch.device, lr: float = 0.01, seed: int = 0) -> np.ndarray:
    """One training epoch of a float64 ``model`` plus the validation pass; returns the validation predictions."""
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model.train()
    for data, labels in loader:
        data, labels = data.to(device), labels.to(device, dtype=torch.double)
        optimizer.zero_grad()
        y_hat = model(data)
        loss = loss_fn(y_hat, labels)
        loss.backward()
        optimizer.step()
        del data, labels, y_hat
        _release(device)
    model.eval()
    preds = []
    with torch.no_grad():
        for data, _ in DataLoader(val, batch_size=VAL_BATCH):
            preds.append(torch.sigmoid(model(data.to(device))).cpu().numpy().round())
    return np.concatenate(preds)
