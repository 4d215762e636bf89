"""The one dataset shape every source (synthetic or real) is turned into.

The engine and the study layer only ever see a ``PreparedDataset``, so they never branch on the source.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ecgbench.data.fingerprint import FingerprintSet
from ecgbench.inputs import DEFAULT_INPUT, STANDARD_LEADS, InputSpec

SPLITS = ("train", "val", "test")
N_SAMPLES = DEFAULT_INPUT.n_samples  # 10 s at 100 Hz: the study's input
N_LEADS = len(STANDARD_LEADS)
LEADS = STANDARD_LEADS


@dataclass(frozen=True)
class PreparedDataset:
    """Signals, labels and split of one dataset, ready for training.

    signals: float32 [n, samples, leads] at ``input`` (the study's 100 Hz x 10 s x 12 leads unless a model asks
    for another; may be a read-only memory map); labels: uint8 multi-hot [n, C]; split: per record one of
    ``SPLITS``; ``source`` is "synthetic" or "real".
    """

    name: str
    signals: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    record_ids: np.ndarray
    patient_ids: np.ndarray
    split: np.ndarray
    source: str
    digest: str
    input: InputSpec = DEFAULT_INPUT
    fingerprints: FingerprintSet | None = None  # stored at prepare (``fingerprint.py``); None: built in memory

    def __post_init__(self) -> None:
        n = len(self.signals)
        shape = (self.input.n_samples, len(self.input.leads))
        if self.signals.ndim != 3 or self.signals.shape[1:] != shape:
            raise ValueError(f"{self.name}: signals at {self.input.describe()} must be [n, {shape[0]}, {shape[1]}], "
                             f"got {self.signals.shape}")
        if self.signals.dtype != np.float32:
            raise ValueError(f"{self.name}: signals must be float32, got {self.signals.dtype}")
        if self.labels.shape != (n, len(self.classes)):
            raise ValueError(f"{self.name}: labels shape {self.labels.shape} != ({n}, {len(self.classes)})")
        for field in ("record_ids", "patient_ids", "split"):
            if len(getattr(self, field)) != n:
                raise ValueError(f"{self.name}: {field} has {len(getattr(self, field))} entries, expected {n}")
        unknown = set(np.unique(self.split)) - set(SPLITS)
        if unknown:
            raise ValueError(f"{self.name}: unknown split names {sorted(unknown)}")

    def indices(self, split: str) -> np.ndarray:
        """Record indices of one split, in stored order."""
        return np.flatnonzero(self.split == split)


def array_digest(*arrays: np.ndarray) -> str:
    """A short sha256 over array bytes, shapes and dtypes: the identity of prepared data."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes() if a.dtype != object else "\x00".join(map(str, a.ravel())).encode())
    return h.hexdigest()[:16]
