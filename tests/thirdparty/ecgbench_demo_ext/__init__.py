"""A user's package: a tiny CNN, two WFDB datasets (format 212, 250 Hz, 8 s records), and a CNN of its own input
(250 Hz x 8 s) with pre-trained weights shipped as a checkpoint, for ecgbench."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from torch import nn

from ecgbench.models import Classifier

HERE = Path(__file__).resolve().parent
DEMO_UP = HERE / "demo_up.toml"  # entry points of group ecgbench.datasets name these paths
DEMO_DOWN = HERE / "demo_down.toml"
DEMO_SSL = HERE / "demo_ssl.toml"  # an entry point of group ecgbench.checkpoints names this manifest
LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
RATE_HZ, SECONDS = 250, 8


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(12, 8, 7, stride=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.out_features = 8

    def forward(self, x):
        return self.conv(x.transpose(1, 2))


def _head(in_features: int, n_classes: int) -> nn.Module:
    return nn.Linear(in_features, n_classes)


def tinycnn(n_classes: int) -> Classifier:
    backbone = _Backbone()
    return Classifier(backbone, _head(backbone.out_features, n_classes), head_factory=_head)


tinycnn.family = "cnn"  # how an entry point declares its model family


class _Backbone250(nn.Module):
    """Three strided convolutions sized for 2000 samples (250 Hz x 8 s), seeing 1.2 s each: 16 features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(12, 16, 15, stride=4), nn.ReLU(), nn.Conv1d(16, 16, 9, stride=4),
                                  nn.ReLU(), nn.Conv1d(16, 16, 9, stride=2, dilation=2), nn.ReLU(),
                                  nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.out_features = 16

    def forward(self, x):
        return self.conv(x.transpose(1, 2))


def tinycnn250(n_classes: int) -> Classifier:
    backbone = _Backbone250()
    return Classifier(backbone, _head(backbone.out_features, n_classes), head_factory=_head)


tinycnn250.family = "cnn"
tinycnn250.rate_hz = RATE_HZ  # the input it declares: ecgbench prepares every dataset at 250 Hz x 8 s for it
tinycnn250.seconds = SECONDS


def write_records(folder: Path, classes: tuple[str, ...], n: int, seed: int, with_split: bool) -> Path:
    """``n`` WFDB records (format 212) in ``folder`` and its ``labels.csv``; class k adds a k+1 Hz wave."""
    import wfdb
    from scipy.signal import resample

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(RATE_HZ * SECONDS) / RATE_HZ
    rows = []
    for i in range(n):
        labels = [c for k, c in enumerate(classes) if (i + k) % (k + 2) == 0] or [classes[0]]
        # a smooth random part of each record's own (as large as the class waves), so that two records are two
        # recordings to ecgbench's content fingerprints, not one recording saved twice
        own = resample(rng.standard_normal((len(t) // 20, len(LEADS))), len(t), axis=0)
        signal = (0.05 * rng.standard_normal((len(t), len(LEADS))) + 0.3 * np.sin(2 * np.pi * 1.2 * t)[:, None]
                  + 0.6 * own / own.std())
        for label in labels:
            signal += 0.5 * np.sin(2 * np.pi * (classes.index(label) + 2) * t)[:, None]
        name = f"r{i:03d}"
        (folder / "records").mkdir(exist_ok=True)
        wfdb.wrsamp(name, fs=RATE_HZ, units=["mV"] * len(LEADS), sig_name=list(LEADS), p_signal=signal,
                    fmt=["212"] * len(LEADS), write_dir=str(folder / "records"))
        split = ("train", "train", "train", "val", "test")[(i // 2) % 5]  # by patient: none in two splits
        rows.append({"record": f"records/{name}", "labels": ";".join(labels), "patient": f"p{i // 2}",
                     **({"split": split} if with_split else {})})
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder
