"""Signals of one input spec turned into another's: resample, cut or pad, pick the leads.

Used where the source *is* an array of signals (the synthetic stand-ins, generated at 100 Hz x 10 s): a real
dataset at another spec is read again from its files (``prepare_spec``), never up-sampled from 100 Hz.
"""
from __future__ import annotations

import numpy as np

from ecgbench.data.preprocess import crop, pad, resample
from ecgbench.inputs import InputSpec

CHUNK = 256  # records resampled at once


def signals_at(signals: np.ndarray, source: InputSpec, target: InputSpec, crop_rule: str = "start",
               pad_rule: str = "end") -> np.ndarray:
    """float32 [n, target samples, target leads] of ``signals`` [n, source samples, source leads]."""
    missing = [lead for lead in target.leads if lead not in source.leads]
    if missing:
        raise ValueError(f"input {target.describe()} needs leads {missing} that signals at {source.describe()} lack")
    columns = [source.leads.index(lead) for lead in target.leads]
    out = np.empty((len(signals), target.n_samples, len(columns)), dtype=np.float32)
    for start in range(0, len(signals), CHUNK):  # one filter call per chunk: ~4x faster than per record
        chunk = np.asarray(signals[start:start + CHUNK][:, :, columns], dtype=np.float64).transpose(1, 0, 2)
        window = crop(resample(chunk, source.rate_hz, target.rate_hz), target.n_samples, crop_rule)
        padded = pad(window.reshape(len(window), -1), target.n_samples, pad_rule)
        out[start:start + CHUNK] = padded.reshape(target.n_samples, -1, len(columns)).transpose(1, 0, 2)
    return out
