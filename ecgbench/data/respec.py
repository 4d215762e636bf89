"""Signals of one input spec turned into another's: resample, cut or pad, pick the leads.

Used where the source *is* an array of signals (the synthetic stand-ins, generated at 100 Hz x 10 s): a real
dataset at another spec is read again from its files (``prepare_spec``), never up-sampled from 100 Hz.
"""
from __future__ import annotations

import numpy as np

from ecgbench.data.preprocess import crop, pad, resample
from ecgbench.inputs import InputSpec


def signals_at(signals: np.ndarray, source: InputSpec, target: InputSpec, crop_rule: str = "start",
               pad_rule: str = "end") -> np.ndarray:
    """float32 [n, target samples, target leads] of ``signals`` [n, source samples, source leads]."""
    missing = [lead for lead in target.leads if lead not in source.leads]
    if missing:
        raise ValueError(f"input {target.describe()} needs leads {missing} that signals at {source.describe()} lack")
    columns = [source.leads.index(lead) for lead in target.leads]
    out = np.empty((len(signals), target.n_samples, len(columns)), dtype=np.float32)
    for i, record in enumerate(signals):
        window = crop(resample(np.asarray(record[:, columns], dtype=np.float64), source.rate_hz, target.rate_hz),
                      target.n_samples, crop_rule)
        out[i] = pad(window, target.n_samples, pad_rule)
    return out
