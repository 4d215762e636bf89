"""Intervals of stored records: each record's bootstrap values and their formatting, shared by the reports.

The leaderboard, the comparison of two runs, the data frame and the transferability section all read a
record's test metric on the same resamples of its test set (``BootstrapScores``) and print intervals alike.
"""
from __future__ import annotations

from statistics import mean

import numpy as np

from ecgbench.results.bootstrap import METRICS, Interval, SharedResamples, seed_mean_ci
from ecgbench.results.findings import Pair, record_score

BOOTSTRAP_SEED = 0
UNDEFINED = "n/a"


def _number(value: float, signed: bool) -> str:
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_interval(interval: Interval | None, signed: bool = False) -> str:
    """``0.812 [0.790, 0.830]``; the point alone when no interval exists; ``n/a`` when undefined."""
    if interval is None or interval.point is None:
        return UNDEFINED
    text = _number(interval.point, signed)
    if interval.low is None:
        return text
    return f"{text} [{_number(interval.low, signed)}, {_number(interval.high, signed)}]"


class BootstrapScores:
    """Each record's resampled metric values; records of one test set share resamples, so their values pair.

    Two instances given one ``SharedResamples`` score two runs of the same cells on the same resamples.
    """

    def __init__(self, n_resamples: int, seed: int = BOOTSTRAP_SEED, shared: SharedResamples | None = None) -> None:
        self.resamples = shared or SharedResamples(n_resamples, seed)
        self.n_resamples, self.seed = self.resamples.n_resamples, self.resamples.seed
        self._values: dict[tuple[str, str], np.ndarray | None] = {}

    @staticmethod
    def test_set(record: dict) -> tuple | None:
        predictions = record.get("predictions") or {}
        ids = predictions.get("record_ids")
        return (record["cell"]["downstream"], *ids) if ids else None

    def values(self, record: dict, metric: str) -> np.ndarray | None:
        """The metric of every resample of the record's test set; None without stored predictions."""
        cache_key = (record["key"], metric)
        if cache_key not in self._values:
            self._values[cache_key] = self._compute(record, metric)
        return self._values[cache_key]

    def _compute(self, record: dict, metric: str) -> np.ndarray | None:
        test_set = self.test_set(record)
        if test_set is None or record.get("status") != "ok":
            return None
        y_true, y_prob = record["predictions"]["y_true"], record["predictions"]["y_prob"]
        return METRICS[metric](y_true, y_prob, self.resamples.of(test_set, y_true).counts)

    def over_seeds(self, points: list[float], values: list[np.ndarray | None], test_sets: set) -> Interval:
        """Mean over seeds with its interval; the point alone when the seeds do not share one test set."""
        if any(v is None for v in values) or len(test_sets) != 1:
            return Interval(mean(points), None, None, 0)
        n_dropped = self.resamples.of(next(iter(test_sets))).n_dropped
        return seed_mean_ci(points, np.stack(values), seed=self.seed, n_dropped=n_dropped)

    def group_interval(self, records: list[dict], metric: str) -> Interval | None:
        """Interval of the mean over seeds of one cell's ok records; None where the metric is undefined."""
        scored = [r for r in records if record_score(r, metric) is not None]
        if not scored:
            return None
        return self.over_seeds([record_score(r, metric) for r in scored],
                               [self.values(r, metric) for r in scored], {self.test_set(r) for r in scored})

    def _difference(self, pair: Pair, metric: str) -> np.ndarray | None:
        """Fine-tune minus scratch on each shared resample; None when either lacks predictions."""
        tuned, scratch = self.values(pair.finetune, metric), self.values(pair.scratch, metric)
        return None if tuned is None or scratch is None else tuned - scratch

    def paired_interval(self, pairs: list[Pair], metric: str) -> Interval | None:
        """Interval of the mean fine-tune-minus-scratch difference over the seeds of paired cells."""
        scored = [p for p in pairs if p.gain(metric) is not None]
        if not scored:
            return None
        differences = [self._difference(p, metric) for p in scored]
        test_sets = {self.test_set(r) for p in scored for r in (p.finetune, p.scratch)}
        return self.over_seeds([p.gain(metric) for p in scored], differences, test_sets)
