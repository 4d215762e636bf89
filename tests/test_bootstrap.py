"""Bootstrap intervals: correct point estimates, sensible widths, class-complete resamples, exact pairing."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ecgbench.metrics import classification_metrics
from ecgbench.results.bootstrap import (
    SharedResamples,
    bootstrap_ci,
    draw_resamples,
    macro_auroc_resampled,
    paired_bootstrap_ci,
    seed_mean_ci,
    weighted_f1_resampled,
)


def _data(n: int, n_classes: int = 4, quality: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random((n, n_classes)) < 0.3
    labels[:n_classes, :] = np.eye(n_classes, dtype=bool)
    logits = quality * (2 * labels - 1) + rng.normal(size=labels.shape)
    return labels, np.round(1 / (1 + np.exp(-logits)), 3)  # rounding makes ties, which AUROC must handle


@pytest.mark.parametrize("metric, name", [(weighted_f1_resampled, "f1_weighted"),
                                          (macro_auroc_resampled, "auroc_macro")])
def test_point_estimate_matches_the_engine_metric_and_lies_inside_the_interval(metric, name):
    labels, probabilities = _data(300)
    interval = bootstrap_ci(labels, probabilities, metric, n_resamples=300)
    expected = classification_metrics(labels, probabilities, ("a", "b", "c", "d"))[name]
    assert interval.point == pytest.approx(expected, abs=1e-12)
    assert interval.low < interval.point < interval.high


@pytest.mark.parametrize("metric", [weighted_f1_resampled, macro_auroc_resampled])
def test_resampled_metric_equals_the_metric_of_the_expanded_resample(metric):
    labels, probabilities = _data(80)
    counts = draw_resamples(labels, 3, seed=5).counts
    for row in counts:
        drawn = np.repeat(np.arange(len(labels)), row.astype(int))
        metrics = classification_metrics(labels[drawn], probabilities[drawn], ("a", "b", "c", "d"))
        key = "f1_weighted" if metric is weighted_f1_resampled else "auroc_macro"
        assert metric(labels, probabilities, row[None, :])[0] == pytest.approx(metrics[key], abs=1e-12)


def test_interval_narrows_with_more_test_records():
    small = bootstrap_ci(*_data(100), weighted_f1_resampled, n_resamples=400)
    large = bootstrap_ci(*_data(2000), weighted_f1_resampled, n_resamples=400)
    assert large.high - large.low < (small.high - small.low) / 2


def test_resamples_missing_a_class_are_dropped():
    labels = np.zeros((20, 2), dtype=bool)
    labels[:10, 0] = True
    labels[0, 1] = True  # one positive of class 1: about a third of resamples miss it
    resamples = draw_resamples(labels, 200, seed=1)
    assert resamples.n_dropped > 0
    assert len(resamples.counts) == 200
    assert ((resamples.counts @ labels.astype(float)) > 0).all()


def test_a_class_absent_from_the_full_test_set_does_not_reject_resamples():
    labels = np.zeros((30, 2), dtype=bool)
    labels[:15, 0] = True
    assert draw_resamples(labels, 100).n_dropped == 0


def test_paired_interval_of_identical_predictions_is_exactly_zero():
    labels, probabilities = _data(200)
    for metric in (weighted_f1_resampled, macro_auroc_resampled):
        interval = paired_bootstrap_ci(labels, probabilities, probabilities.copy(), metric, n_resamples=200)
        assert (interval.point, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_paired_interval_of_a_better_model_is_above_zero():
    labels, worse = _data(400, quality=0.3)
    _, better = _data(400, quality=2.0)
    interval = paired_bootstrap_ci(labels, better, worse, weighted_f1_resampled, n_resamples=300)
    assert 0 < interval.low < interval.point < interval.high


def test_same_seed_same_interval_other_seed_other_interval():
    labels, probabilities = _data(150)
    first = bootstrap_ci(labels, probabilities, macro_auroc_resampled, n_resamples=200, seed=3)
    assert bootstrap_ci(labels, probabilities, macro_auroc_resampled, n_resamples=200, seed=3) == first
    assert bootstrap_ci(labels, probabilities, macro_auroc_resampled, n_resamples=200, seed=4) != first


def test_seed_mean_interval_widens_with_seed_spread_and_reduces_to_one_seed():
    values = np.random.default_rng(0).normal(0.7, 0.01, size=(1, 500))
    single = seed_mean_ci([0.7], values)
    assert (single.low, single.high) == tuple(np.quantile(values[0], [0.025, 0.975]))
    spread = seed_mean_ci([0.6, 0.7, 0.8], np.vstack([values[0] - 0.1, values[0], values[0] + 0.1]))
    assert spread.point == pytest.approx(0.7)
    assert spread.high - spread.low > single.high - single.low


def test_strata_average_cells_equally_and_redraw_seeds_only_within_a_cell():
    values = np.random.default_rng(1).normal(0.0, 0.01, size=(1, 400))[0]
    # Two cells: one with three seeds around 0.1, one with a single seed at 0.5.
    rows = np.vstack([values + 0.05, values + 0.1, values + 0.15, values + 0.5])
    stratified = seed_mean_ci([0.05, 0.1, 0.15, 0.5], rows, strata=["a", "a", "a", "b"])
    assert stratified.point == pytest.approx((0.1 + 0.5) / 2)  # not the plain mean 0.2 over the four rows
    singletons = seed_mean_ci([0.05, 0.1, 0.15, 0.5], rows, strata=[0, 1, 2, 3])
    expected = np.quantile(rows.mean(axis=0), [0.025, 0.975])  # no seed redraw: the mean of each resample
    assert (singletons.low, singletons.high) == pytest.approx(tuple(expected))
    one_cell = seed_mean_ci([0.05, 0.1, 0.15, 0.5], rows, strata=["x"] * 4)
    assert one_cell == seed_mean_ci([0.05, 0.1, 0.15, 0.5], rows)
    with pytest.raises(ValueError, match="3 strata labels for 4 seeds"):
        seed_mean_ci([0.05, 0.1, 0.15, 0.5], rows, strata=[0, 1, 2])


def test_shared_resamples_are_drawn_once_per_test_set():
    labels, _ = _data(60)
    shared = SharedResamples(50, seed=2)
    first = shared.of(("ptb", "r1"), labels)
    assert shared.of(("ptb", "r1")) is first
    assert np.array_equal(first.counts, draw_resamples(labels, 50, seed=2).counts)
    with pytest.raises(KeyError, match="no resamples drawn yet"):
        shared.of(("ptb", "other"))


def test_thousand_resamples_of_weighted_f1_take_well_under_a_second():
    labels, probabilities = _data(1000, n_classes=10)
    started = time.perf_counter()
    bootstrap_ci(labels, probabilities, weighted_f1_resampled, n_resamples=1000)
    assert time.perf_counter() - started < 0.5
