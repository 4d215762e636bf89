"""Rank correlations (Kendall tau-b, Spearman rho) of many bootstrap resamples at once, and of point estimates.

The row-wise versions score every resample of a transferability analysis in a few array operations; they
match ``scipy.stats`` on each row (tests/test_transferability_report.py).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ConstantInputWarning, kendalltau, rankdata, spearmanr

MAX_PAIR_CELLS = 4_000_000  # resamples x point pairs per Kendall block: bounds memory on the pooled rows


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair of x, y [B, k] (average ranks for ties); NaN where a row is constant."""
    rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum(axis=1))
    return np.divide((rx * ry).sum(axis=1), denominator, out=np.full(len(x), np.nan), where=denominator > 0)


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of x, y [B, k]: (concordant - discordant) / sqrt(untied in x * untied in y)."""
    first, second = np.triu_indices(x.shape[1], 1)
    rows_per_block = max(1, MAX_PAIR_CELLS // max(1, len(first)))
    taus = np.full(len(x), np.nan)
    for start in range(0, len(x), rows_per_block):
        block = slice(start, start + rows_per_block)
        sx = np.sign(x[block, first] - x[block, second])
        sy = np.sign(y[block, first] - y[block, second])
        untied = (sx != 0).sum(axis=1) * (sy != 0).sum(axis=1)
        taus[block] = np.divide((sx * sy).sum(axis=1), np.sqrt(untied), out=np.full(len(sx), np.nan),
                                where=untied > 0)
    return taus


def correlation_point(correlation, x: np.ndarray, y: np.ndarray) -> float | None:
    """scipy's correlation of the point estimates; None where it is undefined (a constant side)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        value = correlation(x, y).statistic
    return None if np.isnan(value) else float(value)


CORRELATIONS = {"kendall": (kendalltau, kendall_rows), "spearman": (spearmanr, spearman_rows)}
