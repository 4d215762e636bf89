"""The paper's question answered in one sentence per upstream, downstream and model, each with its interval.

A headline says at which training fractions fine-tuning beats scratch (the 95 % interval of the paired gain in
test weighted F1 lies above 0), by how much, and the *label efficiency*: how many times the labels of the
smallest fraction ``f0`` scratch training needs to reach fine-tuning's score at ``f0``. It is read off the
scratch curve (mean over seeds per fraction) at its first crossing of that score, interpolated linearly in
log-fraction between the two fractions around the crossing; when scratch reaches it already at ``f0`` the
efficiency is 1x, and when it never does within the run's fractions it is only known to exceed
``f_max / f0`` ("more than N x"). Intervals are the report's two-level bootstrap: each resample redraws the
test records and the seeds (one draw of seeds shared by every fraction and regime, since a seed's subsets
are nested), so one seed gives a test-set-only interval.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import mean

import numpy as np

from ecgbench.data.classes import DOWNSTREAMS
from ecgbench.results.bootstrap import Interval
from ecgbench.results.findings import TEST_METRIC, Pair, canonical_order, record_score
from ecgbench.results.record_intervals import BootstrapScores, format_interval

CONFIDENCE = 0.95
INTERPOLATION = "log-fraction"


@dataclass(frozen=True)
class FractionGain:
    """Fine-tune minus scratch at one fraction: its interval, seeds and mean training-set size."""

    fraction: float
    gain: Interval
    n_seeds: int
    train_size: float | None

    @property
    def verdict(self) -> str:
        """"beats" / "loses" when the interval excludes 0, "unclear" otherwise (or without an interval)."""
        if self.gain.low is not None and self.gain.low > 0:
            return "beats"
        if self.gain.high is not None and self.gain.high < 0:
            return "loses"
        return "unclear"


@dataclass(frozen=True)
class Efficiency:
    """Label efficiency at the smallest fraction; ``bound`` = f_max / f0, the most the run's fractions can show."""

    point: float  # math.inf: scratch never caught up
    low: float | None
    high: float | None
    bound: float
    smallest: float


@dataclass(frozen=True)
class Headline:
    upstream: str
    downstream: str
    model: str
    gains: tuple[FractionGain, ...]
    efficiency: Efficiency | None
    note: str = ""  # why there is no efficiency


def label_efficiency(fractions: np.ndarray, scratch: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Label efficiency of each row: scratch [B, n] at ascending ``fractions`` [n] against ``target`` [B].

    The first fraction where scratch reaches the target, interpolated in log-fraction with the one before,
    divided by the smallest fraction; 1 when it reaches it at once, inf when it never does.
    """
    scratch, target = np.atleast_2d(scratch), np.atleast_1d(target)
    log_f = np.log(np.asarray(fractions, dtype=np.float64))
    reached = scratch >= target[:, None]
    first = np.argmax(reached, axis=1)
    out = np.full(len(scratch), np.inf)
    at_once = reached[:, 0]
    out[at_once] = 1.0
    later = reached.any(axis=1) & ~at_once
    rows, hi = np.flatnonzero(later), first[later]
    below, above = scratch[rows, hi - 1], scratch[rows, hi]
    share = (target[rows] - below) / (above - below)  # above > target > below: never a division by 0
    out[rows] = np.exp(log_f[hi - 1] + share * (log_f[hi] - log_f[hi - 1]) - log_f[0])
    return out


def _quantiles(values: np.ndarray) -> tuple[float, float]:
    """Percentiles that are order statistics, so "never caught up" (inf) stays a value instead of a NaN."""
    alpha = 1 - CONFIDENCE
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return float(low), float(high)


def _common_seeds(by_fraction: dict[float, list[Pair]]) -> list[int]:
    seeds = [{p.cell["seed"] for p in pairs if record_score(p.scratch) is not None} for pairs in by_fraction.values()]
    smallest = min(by_fraction)
    seeds.append({p.cell["seed"] for p in by_fraction[smallest] if record_score(p.finetune) is not None})
    return sorted(set.intersection(*seeds))


def _efficiency(by_fraction: dict[float, list[Pair]], scores: BootstrapScores) -> Efficiency | str:
    fractions = sorted(by_fraction)
    if len(fractions) < 2:
        return "one fraction only"
    seeds = _common_seeds(by_fraction)
    if not seeds:
        return "no seed has a scratch cell at every fraction"
    scratch = {f: {p.cell["seed"]: p.scratch for p in by_fraction[f]} for f in fractions}
    tuned = {p.cell["seed"]: p.finetune for p in by_fraction[fractions[0]]}
    curve = np.array([mean(record_score(scratch[f][s]) for s in seeds) for f in fractions])
    target = mean(record_score(tuned[s]) for s in seeds)
    point = float(label_efficiency(np.array(fractions), curve[None], np.array([target]))[0])
    bound = fractions[-1] / fractions[0]
    low = high = None
    scratch_values = [[scores.values(scratch[f][s], TEST_METRIC) for s in seeds] for f in fractions]
    tuned_values = [scores.values(tuned[s], TEST_METRIC) for s in seeds]
    test_sets = {scores.test_set(r) for r in [*tuned.values(), *(r for f in fractions for r in scratch[f].values())]}
    if len(test_sets) == 1 and all(v is not None for v in [*tuned_values, *sum(scratch_values, [])]):
        resampled = np.array(scratch_values)  # [n, K, B]
        n_resamples = resampled.shape[2]
        drawn = np.random.default_rng(scores.seed).integers(0, len(seeds), size=(n_resamples, len(seeds)))
        columns = np.arange(n_resamples)[:, None]
        curves = resampled[:, drawn, columns].mean(axis=2).T  # [B, n]
        targets = np.array(tuned_values)[drawn, columns].mean(axis=1)
        low, high = _quantiles(label_efficiency(np.array(fractions), curves, targets))
    return Efficiency(point, low, high, bound, fractions[0])


def _train_size(pairs: list[Pair]) -> float | None:
    sizes = [(p.finetune.get("sizes") or {}).get("train") for p in pairs]
    return mean(sizes) if sizes and all(s is not None for s in sizes) else None


def headlines(pairs: list[Pair], scores: BootstrapScores) -> list[Headline]:
    """One headline per (upstream, downstream, model) with paired cells, in canonical order."""
    groups: dict[tuple, dict[float, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for pair in pairs:
        if pair.gain() is not None:
            cell = pair.cell
            groups[(cell["upstream"], cell["downstream"], cell["model"])][float(cell["fraction"])].append(pair)
    upstreams = canonical_order({k[0] for k in groups}, DOWNSTREAMS)
    downstreams = canonical_order({k[1] for k in groups}, DOWNSTREAMS)
    models = canonical_order({k[2] for k in groups})
    found = []
    for key in sorted(groups, key=lambda k: (downstreams.index(k[1]), upstreams.index(k[0]), models.index(k[2]))):
        by_fraction = dict(sorted(groups[key].items()))
        gains = tuple(FractionGain(f, scores.paired_interval(p, TEST_METRIC), len(p), _train_size(p))
                      for f, p in by_fraction.items())
        efficiency = _efficiency(by_fraction, scores)
        found.append(Headline(*key, gains, None if isinstance(efficiency, str) else efficiency,
                              efficiency if isinstance(efficiency, str) else ""))
    return found


# --- sentences ----------------------------------------------------------------------------------------------

def _times(value: float | None, bound: float) -> str:
    if value is None:
        return "-"
    return f"more than {bound:g}x" if math.isinf(value) else f"{value:.1f}x"


def efficiency_text(efficiency: Efficiency) -> str:
    """``3.2x [1.0x, more than 20x]``: the point, then its interval when there is one."""
    text = _times(efficiency.point, efficiency.bound)
    if efficiency.low is None:
        return text
    return f"{text} [{_times(efficiency.low, efficiency.bound)}, {_times(efficiency.high, efficiency.bound)}]"


def _at(gain: FractionGain) -> str:
    size = f", {gain.train_size:.0f} training records" if gain.train_size is not None else ""
    return f"{gain.fraction:g} ({format_interval(gain.gain, signed=True)}{size})"


def headline_sentence(headline: Headline) -> str:
    """One sentence: where fine-tuning beats scratch and by how much, where it does not, the label efficiency."""
    by_verdict = defaultdict(list)
    for gain in headline.gains:
        by_verdict[gain.verdict].append(_at(gain))
    clauses = []
    if by_verdict["beats"]:
        clauses.append(f"fine-tuning beats scratch at fraction {' and '.join(by_verdict['beats'])}")
    else:
        clauses.append("fine-tuning beats scratch at no fraction")
    if by_verdict["loses"]:
        clauses.append(f"scratch is better at {' and '.join(by_verdict['loses'])}")
    if by_verdict["unclear"]:
        clauses.append(f"no clear difference at {' and '.join(by_verdict['unclear'])}")
    if headline.efficiency is not None:
        e = headline.efficiency
        clauses.append(f"label efficiency {efficiency_text(e)}: scratch needs that many times the labels to match "
                       f"fine-tuning at fraction {e.smallest:g}")
    else:
        clauses.append(f"no label efficiency ({headline.note})")
    return (f"**{headline.upstream} → {headline.downstream}, {headline.model}**: " + "; ".join(clauses) + ".")


def headlines_markdown(found: list[Headline]) -> str:
    """The headline sentences and how to read them."""
    if not found:
        return "No fine-tune cell has an ok scratch twin yet: no headline."
    lines = [f"- {headline_sentence(h)}" for h in found]
    return "\n".join([
        "Gains: fine-tune minus scratch test weighted F1 at each training fraction, mean over seeds [95 % CI, "
        "bootstrap over test records and seeds]; 'beats' when the whole interval is above 0. Label efficiency: "
        "the labels scratch needs, as a multiple of the smallest fraction, to reach fine-tuning's score there "
        f"(first crossing of the scratch curve, interpolated linearly in {INTERPOLATION}; 'more than N x' when "
        "scratch never reaches it within the run's fractions).", "", *lines])
