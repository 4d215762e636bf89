"""Bootstrap confidence intervals of test metrics, vectorised over resamples.

A resample is stored as a row of draw counts (how often each test record was drawn), so a metric of all
resamples is a few matrix products instead of a Python loop; every count is an integer, so the sums are exact
and the results do not depend on BLAS threading. As in the PTB-XL benchmark of Strodthoff et al. (2020),
a resample is kept only when every class with a positive record in the full test set has one in the resample
too; draws continue until ``n_resamples`` are kept (or a cap is hit, see ``MAX_DRAW_ROUNDS``).

Resamples depend only on ``y_true``, ``n_resamples`` and ``seed``: two prediction sets of the same test
records evaluated on the same ``Resamples`` are paired, which is what ``paired_bootstrap_ci`` and the report's
fine-tune-minus-scratch intervals rely on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ecgbench.metrics import THRESHOLD  # the same decision threshold as the engine's metrics

# A metric of every resample at once: (y_true [n, C] bool, y_prob [n, C], counts [B, n]) -> values [B].
ResampledMetric = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

MAX_CELLS_PER_ROUND = 4_000_000  # resamples x records drawn per round: bounds memory on large test sets
MAX_DRAW_ROUNDS = 50  # a class seen once in a tiny test set could otherwise reject resamples forever


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile interval; ``low``/``high`` are None when no resample was usable."""

    point: float | None
    low: float | None
    high: float | None
    n_resamples: int
    n_dropped: int = 0


@dataclass(frozen=True)
class Resamples:
    """Draw counts of the kept resamples [B, n] and how many drawn resamples lacked a class."""

    counts: np.ndarray
    n_dropped: int


def _as_labels(y_true) -> np.ndarray:
    return np.asarray(y_true).astype(bool)


def draw_resamples(y_true, n_resamples: int = 1000, seed: int = 0) -> Resamples:
    """Resamples of the test records that keep every class present in the full test set."""
    y_true = _as_labels(y_true)
    n = len(y_true)
    if n == 0 or n_resamples < 1:
        raise ValueError(f"cannot bootstrap {n} records {n_resamples} times")
    present = y_true.any(axis=0)
    labels = y_true[:, present].astype(np.float64)
    rng = np.random.default_rng(seed)
    per_round = max(1, min(n_resamples, MAX_CELLS_PER_ROUND // n))
    kept, n_dropped = [], 0
    for _ in range(MAX_DRAW_ROUNDS):
        counts = _draw_counts(rng, per_round, n)
        complete = ((counts @ labels) > 0).all(axis=1)
        kept.append(counts[complete])
        n_dropped += int((~complete).sum())
        if sum(len(k) for k in kept) >= n_resamples:
            break
    return Resamples(np.concatenate(kept)[:n_resamples], n_dropped)


def _draw_counts(rng: np.random.Generator, n_resamples: int, n: int) -> np.ndarray:
    """Draw counts [B, n] of ``n_resamples`` draws of ``n`` records with replacement."""
    picks = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
    return np.bincount(picks.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def weighted_f1_resampled(y_true, y_prob, counts: np.ndarray) -> np.ndarray:
    """The paper's prevalence-weighted F1 (threshold 0.5) of each resample; NaN where no class has a positive."""
    y_true, y_pred = _as_labels(y_true), np.asarray(y_prob) >= THRESHOLD
    tp = counts @ (y_true & y_pred).astype(np.float64)
    positives = counts @ y_true.astype(np.float64)
    predicted = counts @ y_pred.astype(np.float64)
    # Weighting F1_c = 2tp/(pos+pred) by pos_c: classes without positives weigh 0 (as in ecgbench.metrics).
    per_class = np.divide(positives * 2 * tp, positives + predicted,
                          out=np.zeros_like(tp), where=(positives + predicted) > 0)
    total = positives.sum(axis=1)
    return np.divide(per_class.sum(axis=1), total, out=np.full(len(counts), np.nan), where=total > 0)


def macro_auroc_resampled(y_true, y_prob, counts: np.ndarray) -> np.ndarray:
    """Macro AUROC of each resample over the classes with positives and negatives in it (NaN if none)."""
    y_true, y_prob = _as_labels(y_true), np.asarray(y_prob, dtype=np.float64)
    counts_by_record = np.ascontiguousarray(counts.T)  # [n, B]: gathering records copies whole rows
    per_class = np.stack([_auroc_resampled(y_true[:, c], y_prob[:, c], counts_by_record)
                          for c in range(y_true.shape[1])], axis=1)
    defined = ~np.isnan(per_class)
    total = np.where(defined, per_class, 0.0).sum(axis=1)
    return np.divide(total, defined.sum(axis=1), out=np.full(len(counts), np.nan), where=defined.any(axis=1))


def _auroc_resampled(y_true: np.ndarray, score: np.ndarray, counts_by_record: np.ndarray) -> np.ndarray:
    """AUROC of one class under draw-count weights [n, B]: P(positive scores above negative), ties count 1/2.

    Each positive record wins against the negatives below its tie group and half of those inside it, read off
    one cumulative sum of negative weights at the group's start and end.
    """
    order = np.argsort(score, kind="stable")
    sorted_score, is_positive, weights = score[order], y_true[order], counts_by_record[order]
    starts_group = np.r_[True, sorted_score[1:] != sorted_score[:-1]]
    group_starts = np.flatnonzero(starts_group)
    group_ends = np.r_[group_starts[1:], len(score)]
    group_of = np.cumsum(starts_group) - 1
    negatives_before = np.zeros((len(score) + 1, weights.shape[1]))  # row i: negative weight of records < i
    np.cumsum(weights * ~is_positive[:, None], axis=0, out=negatives_before[1:])
    positive_rows = np.flatnonzero(is_positive)
    positive_weights = weights[positive_rows]
    below = negatives_before[group_starts[group_of[positive_rows]]]
    through = negatives_before[group_ends[group_of[positive_rows]]]
    wins = 0.5 * (positive_weights * (below + through)).sum(axis=0)
    pairs = positive_weights.sum(axis=0) * negatives_before[-1]
    return np.divide(wins, pairs, out=np.full(weights.shape[1], np.nan), where=pairs > 0)


def resampled_values(y_true, y_prob, metric_fn: ResampledMetric, resamples: Resamples) -> np.ndarray:
    """The metric of every kept resample [B]."""
    return metric_fn(y_true, y_prob, resamples.counts)


def point_value(y_true, y_prob, metric_fn: ResampledMetric) -> float | None:
    """The metric on the full test set (every record drawn once); None where it is undefined."""
    value = metric_fn(y_true, y_prob, np.ones((1, len(y_true))))[0]
    return None if np.isnan(value) else float(value)


def percentile_interval(point: float | None, values: np.ndarray, alpha: float = 0.05,
                        n_dropped: int = 0) -> Interval:
    """The (alpha/2, 1 - alpha/2) percentiles of the defined resampled values around ``point``."""
    defined = values[~np.isnan(values)]
    if len(defined) == 0:
        return Interval(point, None, None, 0, n_dropped)
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return Interval(point, float(low), float(high), len(defined), n_dropped)


def bootstrap_ci(y_true, y_prob, metric_fn: ResampledMetric, n_resamples: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> Interval:
    """Percentile bootstrap interval of a metric on one test set (e.g. ``weighted_f1_resampled``)."""
    resamples = draw_resamples(y_true, n_resamples, seed)
    values = resampled_values(y_true, y_prob, metric_fn, resamples)
    return percentile_interval(point_value(y_true, y_prob, metric_fn), values, alpha, resamples.n_dropped)


def paired_bootstrap_ci(y_true, y_prob_a, y_prob_b, metric_fn: ResampledMetric, n_resamples: int = 1000,
                        seed: int = 0, alpha: float = 0.05) -> Interval:
    """Interval of metric(a) - metric(b) on the same test records, both scored on the same resamples."""
    resamples = draw_resamples(y_true, n_resamples, seed)
    differences = (resampled_values(y_true, y_prob_a, metric_fn, resamples)
                   - resampled_values(y_true, y_prob_b, metric_fn, resamples))
    point_a, point_b = point_value(y_true, y_prob_a, metric_fn), point_value(y_true, y_prob_b, metric_fn)
    point = None if point_a is None or point_b is None else point_a - point_b
    return percentile_interval(point, differences, alpha, resamples.n_dropped)


def seed_mean_ci(points: list[float], values: np.ndarray, alpha: float = 0.05, seed: int = 0,
                 n_dropped: int = 0, strata: list | None = None) -> Interval:
    """Interval of a mean over training seeds, from each seed's resampled values [k, B] on shared resamples.

    A two-level bootstrap: each resample also redraws the k seeds with replacement, so the interval covers both
    the test-set sampling and the seed-to-seed spread; with one seed it is the plain percentile interval.
    ``strata`` (one label per row) groups rows into cells: the estimate is then the mean over cells of each
    cell's mean over seeds, and seeds are redrawn within their cell only.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n_seeds, n_resamples = values.shape
    if len(points) != n_seeds:
        raise ValueError(f"{len(points)} point estimates for {n_seeds} seeds")
    strata = [0] * n_seeds if strata is None else list(strata)
    if len(strata) != n_seeds:
        raise ValueError(f"{len(strata)} strata labels for {n_seeds} seeds")
    rng = np.random.default_rng(seed)
    cell_points, cell_means = [], []
    for label in dict.fromkeys(strata):
        rows = [i for i, s in enumerate(strata) if s == label]
        cell_points.append(float(np.mean([points[i] for i in rows])))
        if len(rows) == 1:
            cell_means.append(values[rows[0]])
            continue
        drawn_seeds = rng.integers(0, len(rows), size=(n_resamples, len(rows)))
        cell_means.append(values[rows][drawn_seeds, np.arange(n_resamples)[:, None]].mean(axis=1))
    return percentile_interval(float(np.mean(cell_points)), np.mean(cell_means, axis=0), alpha, n_dropped)


class SharedResamples:
    """The resamples of each test set, drawn once: every prediction set scored on them pairs with the others."""

    def __init__(self, n_resamples: int = 1000, seed: int = 0) -> None:
        self.n_resamples, self.seed = n_resamples, seed
        self._by_test_set: dict[tuple, Resamples] = {}

    def of(self, test_set: tuple, y_true=None) -> Resamples:
        """The resamples of ``test_set`` (a hashable id of its records), drawn from ``y_true`` on first use."""
        if test_set not in self._by_test_set:
            if y_true is None:
                raise KeyError(f"no resamples drawn yet for test set {test_set[:3]}...; pass its labels")
            self._by_test_set[test_set] = draw_resamples(y_true, self.n_resamples, self.seed)
        return self._by_test_set[test_set]


METRICS: dict[str, ResampledMetric] = {
    "f1_weighted": weighted_f1_resampled,
    "auroc_macro": macro_auroc_resampled,
}
