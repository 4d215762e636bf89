"""The one-sentence answers: where fine-tuning beats scratch, by how much, and the label efficiency."""
from __future__ import annotations

import math

import numpy as np
import pytest
from record_factory import make_record

from ecgbench.results.findings import paired_cells
from ecgbench.results.headlines import headline_sentence, headlines, headlines_markdown, label_efficiency
from ecgbench.results.record_intervals import BootstrapScores

FRACTIONS = np.array([0.05, 0.25, 1.0])


def test_label_efficiency_interpolates_the_first_crossing_in_log_fraction():
    scratch = np.array([[0.2, 0.4, 0.6], [0.5, 0.6, 0.7], [0.1, 0.2, 0.3], [0.2, 0.5, 0.4]])
    target = np.array([0.3, 0.4, 0.9, 0.35])
    found = label_efficiency(FRACTIONS, scratch, target)
    assert found[0] == pytest.approx(math.sqrt(0.05 * 0.25) / 0.05)  # half-way between 0.05 and 0.25 in log
    assert found[1] == 1.0  # scratch is there already at the smallest fraction
    assert math.isinf(found[2])  # never caught up within the run's fractions
    assert found[3] == pytest.approx(math.exp(np.log(0.05) + 0.5 * np.log(5)) / 0.05)  # first crossing, not last


def _study(scratch_quality, tuned_quality, seeds=(0, 1)) -> list[dict]:
    records = []
    for fraction in FRACTIONS:
        for seed in seeds:
            records.append(make_record("ptb", "resnet1d18", float(fraction), "scratch", seed,
                                       quality=scratch_quality(fraction)))
            records.append(make_record("ptb", "resnet1d18", float(fraction), "finetune", seed, "ptbxl",
                                       quality=tuned_quality(fraction)))
    return records


def test_fine_tuning_that_scratch_never_reaches_beats_it_everywhere_by_more_than_the_fraction_range():
    records = _study(lambda f: 0.0, lambda f: 3.0)
    (headline,) = headlines(paired_cells(records), BootstrapScores(200))
    assert [g.verdict for g in headline.gains] == ["beats"] * 3
    assert all(g.n_seeds == 2 and g.gain.low > 0 for g in headline.gains)
    assert math.isinf(headline.efficiency.point) and headline.efficiency.bound == 20
    sentence = headline_sentence(headline)
    assert sentence.startswith("**ptbxl → ptb, resnet1d18**: fine-tuning beats scratch at fraction 0.05 (+")
    assert "label efficiency more than 20x [more than 20x, more than 20x]" in sentence
    assert "50 training records" in sentence  # the training-set size, not only its fraction


def test_scratch_that_catches_up_gives_a_finite_efficiency_within_its_interval():
    records = _study(lambda f: 0.3 + 2.5 * f, lambda f: 1.0)
    (headline,) = headlines(paired_cells(records), BootstrapScores(200))
    efficiency = headline.efficiency
    assert 1.0 < efficiency.point < 20 and efficiency.low <= efficiency.point <= efficiency.high
    assert headline.gains[-1].verdict == "loses"  # at the full set scratch (quality 2.8) is the better one
    assert "scratch is better at 1 (-" in headline_sentence(headline)


def test_a_single_fraction_has_gains_but_no_efficiency_and_says_why():
    records = [r for r in _study(lambda f: 0.5, lambda f: 1.5) if r["cell"]["fraction"] == 0.05]
    (headline,) = headlines(paired_cells(records), BootstrapScores(100))
    assert headline.efficiency is None and "no label efficiency (one fraction only)" in headline_sentence(headline)
    assert "log-fraction" in headlines_markdown([headline])


def test_no_pair_gives_no_headline():
    assert headlines_markdown(headlines([], BootstrapScores(10))).startswith("No fine-tune cell")
