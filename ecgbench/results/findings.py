"""The paper's four findings, each decided by one stated test on this run's paired cells.

A *pair* is a fine-tune cell and the scratch cell of the same downstream, model, fraction and seed, both ok;
its *gain* is fine-tune minus scratch test weighted F1 (the paper's metric). Each finding reduces the pairs to
one value per independent-enough *unit* (a pair or a group of pairs, see each rule) and decides on the mean of
those values with a two-sided 95 % Student-t interval:

* fewer than ``MIN_UNITS`` units -> "inconclusive (too few cells: N)", N = the number of units;
* interval entirely above 0      -> "supported";
* interval entirely below 0      -> "not supported" (the run shows the opposite);
* interval containing 0          -> "inconclusive (interval contains 0)": this run cannot tell.

Missing and failed cells never enter a unit, so they can only make a finding inconclusive, never decide it.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import mean, stdev
from typing import Callable, Iterable

from scipy.stats import t as student_t
from tabulate import tabulate

from ecgbench.models import MODELS
from ecgbench.models import model_family as registered_family
from ecgbench.results.configuration import record_hyperparameters

MODEL_ORDER = ("resnet1d18", "resnet1d50", "resnet1d101", "lstm", "bilstm", "gru")
MIN_UNITS = 3
MIN_EPOCHS = 2  # finding 3 ignores shorter runs
CONFIDENCE = 0.95
CONVERGENCE_SHARE = 0.95  # "converged" = first epoch within 5 % of the run's best validation score
TEST_METRIC = "f1_weighted"
# Validation curves, in order of preference; a pair uses the first one defined at every epoch of both runs.
VALIDATION_METRICS = ("val_f1_weighted", "val_auroc_macro", "val_loss")

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass(frozen=True)
class Pair:
    """A fine-tune record and the scratch record it is compared with."""

    finetune: dict
    scratch: dict

    @property
    def cell(self) -> dict:
        return self.finetune["cell"]

    @property
    def keys(self) -> tuple[str, str]:
        return self.finetune["key"], self.scratch["key"]

    def gain(self, metric: str = TEST_METRIC) -> float | None:
        """Fine-tune minus scratch test score; None when either is undefined."""
        tuned, scratch = record_score(self.finetune, metric), record_score(self.scratch, metric)
        return None if tuned is None or scratch is None else tuned - scratch


@dataclass(frozen=True)
class Finding:
    """One finding: its claim, the rule that decides it, this run's verdict and the cells it rests on."""

    number: int
    claim: str
    rule: str
    unit: str
    verdict: str
    n_units: int
    mean: float | None
    low: float | None
    high: float | None
    cell_keys: tuple[str, ...]
    note: str = ""

    @property
    def verdict_text(self) -> str:
        if self.verdict != INCONCLUSIVE:
            return self.verdict
        if self.n_units < MIN_UNITS:
            return f"{INCONCLUSIVE} (too few cells: {self.n_units})"
        return f"{INCONCLUSIVE} (interval contains 0)"


def record_score(record: dict, metric: str = TEST_METRIC) -> float | None:
    """A test metric of an ok record; None for failed records and undefined values."""
    if record.get("status") != "ok" or not record.get("test"):
        return None
    return record["test"].get(metric)


def paired_cells(records: Iterable[dict]) -> list[Pair]:
    """Every ok fine-tune record with its ok scratch twin, by key."""
    return paired_records(records, lambda cell: cell["regime"] == "finetune", lambda cell: cell["regime"] == "scratch")


def paired_records(records: Iterable[dict], treated: Callable[[dict], bool], control: Callable[[dict], bool]
                   ) -> list[Pair]:
    """Every ok record whose cell is ``treated`` with the ok ``control`` record of its twin cell (same downstream,
    model, fraction, seed, profile and training settings: a pair never sets one learning rate against another),
    as ``Pair(finetune=treated, scratch=control)``, by key."""
    ok = [r for r in records if r.get("status") == "ok"]
    controls = {_twin_key(r): r for r in ok if control(r["cell"])}
    pairs = [Pair(r, controls[_twin_key(r)]) for r in ok if treated(r["cell"]) and _twin_key(r) in controls]
    return sorted(pairs, key=lambda p: p.keys)


def _twin_key(record: dict) -> tuple:
    cell, hyper = record["cell"], record_hyperparameters(record)
    train = json.dumps(hyper.get("train") if isinstance(hyper, dict) else None, sort_keys=True)
    return cell["downstream"], cell["model"], float(cell["fraction"]), cell["seed"], record.get("profile"), train


def mean_by(pairs: Iterable[Pair], value: Callable[[Pair], tuple[float, float] | None],
            key: Callable[[Pair], tuple]) -> dict[tuple, tuple[float, float]]:
    """Mean of a (scratch, fine-tune) value per ``key`` over the pairs where it is defined, in key order."""
    groups = _group((p for p in pairs if value(p) is not None), key)
    return {k: tuple(mean(column) for column in zip(*map(value, members))) for k, members in groups.items()}


def _test_scores(pair: Pair) -> tuple[float, float] | None:
    scratch, tuned = record_score(pair.scratch), record_score(pair.finetune)
    return None if scratch is None or tuned is None else (scratch, tuned)


def seed_mean_scores(pairs: Iterable[Pair]) -> dict[tuple, tuple[float, float]]:
    """(scratch, fine-tune) test weighted F1 averaged over seeds, per (upstream, downstream, fraction, model)."""
    return mean_by(pairs, _test_scores, lambda p: (p.cell["upstream"], p.cell["downstream"],
                                                  float(p.cell["fraction"]), p.cell["model"]))


def canonical_order(names: Iterable, preferred: Iterable = MODEL_ORDER) -> list:
    """Known names in their canonical order (the paper's models by default), then the others alphabetically."""
    rank = {name: i for i, name in enumerate(preferred)}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), str(name)))


def model_family(model: str) -> str | None:
    """"CNN" or "RNN" as the model was registered; None for another family or a model not registered here."""
    family = registered_family(model).upper() if model in MODELS else None
    return family if family in ("CNN", "RNN") else None


def validation_curve(history: list[dict], metric: str) -> list[float] | None:
    """The per-epoch values of one validation metric; None unless defined at every epoch."""
    values = [epoch.get(metric) for epoch in history or []]
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    return values


def shared_validation_metric(histories: Iterable[list[dict]]) -> str | None:
    """The preferred validation metric defined at every epoch of all ``histories``."""
    histories = list(histories)
    for metric in VALIDATION_METRICS:
        if all(validation_curve(h, metric) is not None for h in histories):
            return metric
    return None


def epochs_to_converge(curve: list[float], metric: str) -> int:
    """Epochs run until the first one within 5 % of the best: score >= 0.95 x best, or loss <= best / 0.95."""
    if metric == "val_loss":
        best = min(curve)
        reached = [v <= best / CONVERGENCE_SHARE for v in curve]
    else:
        best = max(curve)
        reached = [v >= CONVERGENCE_SHARE * best for v in curve]
    return reached.index(True) + 1


def convergence_saving(pair: Pair) -> float | None:
    """Epochs to converge of scratch minus fine-tune (positive: fine-tuning got there sooner).

    None unless both runs trained ``MIN_EPOCHS`` epochs or more: a one-epoch run converges "at once" trivially.
    """
    histories = pair.scratch.get("history") or [], pair.finetune.get("history") or []
    metric = shared_validation_metric(histories)
    if metric is None or min(len(h) for h in histories) < MIN_EPOCHS:
        return None
    scratch_epochs, tuned_epochs = (epochs_to_converge(validation_curve(h, metric), metric) for h in histories)
    return float(scratch_epochs - tuned_epochs)


# --- the decision -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Evidence:
    """The values a finding decides on, one per unit, and the cell keys behind them."""

    values: list[float]
    cell_keys: tuple[str, ...]
    note: str = ""


def _keys_of(pairs: Iterable[Pair]) -> tuple[str, ...]:
    return tuple(sorted({key for pair in pairs for key in pair.keys}))


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and two-sided 95 % Student-t interval of at least two values."""
    centre = mean(values)
    half_width = student_t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * stdev(values) / math.sqrt(len(values))
    return centre, centre - half_width, centre + half_width


def _decide(number: int, claim: str, rule: str, unit: str, evidence: _Evidence) -> Finding:
    n = len(evidence.values)
    if n < MIN_UNITS:
        centre = mean(evidence.values) if evidence.values else None
        return Finding(number, claim, rule, unit, INCONCLUSIVE, n, centre, None, None, evidence.cell_keys,
                       evidence.note)
    centre, low, high = t_interval(evidence.values)
    verdict = SUPPORTED if low > 0 else NOT_SUPPORTED if high < 0 else INCONCLUSIVE
    return Finding(number, claim, rule, unit, verdict, n, centre, low, high, evidence.cell_keys, evidence.note)


# --- the four findings --------------------------------------------------------------------------------------

def _gain_on_small_sets(pairs: list[Pair]) -> _Evidence:
    gains = [(p, gain) for p in pairs if (gain := p.gain()) is not None]
    if not gains:
        return _Evidence([], ())
    smallest = min(float(p.cell["fraction"]) for p, _ in gains)
    used = [(p, g) for p, g in gains if float(p.cell["fraction"]) == smallest]
    return _Evidence([g for _, g in used], _keys_of(p for p, _ in used), f"smallest fraction: {smallest:g}")


def _group(pairs: Iterable[Pair], key: Callable[[Pair], tuple]) -> dict[tuple, list[Pair]]:
    groups: dict[tuple, list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[key(pair)].append(pair)
    return dict(sorted(groups.items(), key=lambda item: repr(item[0])))


def _gain_shrinkage(pairs: list[Pair]) -> _Evidence:
    defined = [p for p in pairs if p.gain() is not None]
    groups = _group(defined, lambda p: (p.cell["downstream"], p.cell["upstream"], p.cell["model"], p.cell["seed"]))
    values, used, largest_gains = [], [], []
    for members in groups.values():
        by_fraction = sorted(members, key=lambda p: float(p.cell["fraction"]))
        if float(by_fraction[0].cell["fraction"]) == float(by_fraction[-1].cell["fraction"]):
            continue
        values.append(by_fraction[0].gain() - by_fraction[-1].gain())
        largest_gains.append(by_fraction[-1].gain())
        used += [by_fraction[0], by_fraction[-1]]
    note = f"mean gain at each group's largest fraction: {mean(largest_gains):+.3f}" if largest_gains else ""
    return _Evidence(values, _keys_of(used), note)


def _faster_convergence(pairs: list[Pair]) -> _Evidence:
    saved = [(p, convergence_saving(p)) for p in pairs]
    used = [(p, s) for p, s in saved if s is not None]
    return _Evidence([s for _, s in used], _keys_of(p for p, _ in used))


def _cnn_over_rnn(pairs: list[Pair]) -> _Evidence:
    defined = [p for p in pairs if p.gain() is not None and model_family(p.cell["model"])]
    groups = _group(defined, lambda p: (p.cell["downstream"], p.cell["upstream"], float(p.cell["fraction"]),
                                        p.cell["seed"]))
    values, used = [], []
    for members in groups.values():
        cnn = [p.gain() for p in members if model_family(p.cell["model"]) == "CNN"]
        rnn = [p.gain() for p in members if model_family(p.cell["model"]) == "RNN"]
        if cnn and rnn:
            values.append(mean(cnn) - mean(rnn))
            used += members
    return _Evidence(values, _keys_of(used))


FINDINGS: tuple[tuple[str, str, str, Callable[[list[Pair]], _Evidence]], ...] = (
    ("Fine-tuning helps on small downstream training sets.",
     "gain = fine-tune minus scratch test weighted F1 of each pair at the run's smallest fraction; "
     "supported if the 95 % t-interval of the mean gain lies above 0.",
     "pairs", _gain_on_small_sets),
    ("The gain shrinks as the downstream training set grows.",
     "per (downstream, upstream, model, seed) with pairs at two or more fractions: gain at the smallest "
     "fraction minus gain at the largest; supported if the 95 % t-interval of the mean lies above 0.",
     "groups", _gain_shrinkage),
    ("Fine-tuning converges faster than training from scratch.",
     f"per pair whose runs both trained {MIN_EPOCHS}+ epochs: epochs until the validation score is first "
     "within 5 % of its best (val weighted F1, else val macro AUROC, else val loss), scratch minus fine-tune; "
     "supported if the 95 % t-interval of the mean lies above 0.",
     "pairs", _faster_convergence),
    ("CNNs gain more from transfer than RNNs.",
     "per (downstream, upstream, fraction, seed) with a CNN and an RNN pair: mean CNN gain minus mean RNN gain; "
     "supported if the 95 % t-interval of the mean lies above 0.",
     "groups", _cnn_over_rnn),
)


def evaluate_findings(records: Iterable[dict]) -> list[Finding]:
    """This run's verdict on each of the paper's four findings."""
    pairs = paired_cells(records)
    return [_decide(number, claim, rule, unit, evidence_of(pairs))
            for number, (claim, rule, unit, evidence_of) in enumerate(FINDINGS, start=1)]


# --- Markdown -----------------------------------------------------------------------------------------------

def _estimate_text(finding: Finding) -> str:
    if finding.mean is None:
        return "-"
    if finding.low is None:
        return f"{finding.mean:+.3f}"
    return f"{finding.mean:+.3f} [{finding.low:+.3f}, {finding.high:+.3f}]"


RULES_HEADING = "How the findings were decided"


def findings_markdown(findings: list[Finding]) -> str:
    """The verdict table, read first; each finding's rule and cells are in ``findings_rules_markdown``."""
    rows = [[f.number, f.claim, f"**{f.verdict_text}**", _estimate_text(f), f"{f.n_units} {f.unit}"]
            for f in findings]
    table = tabulate(rows, headers=["#", "finding", "this run", "mean [95 % CI]", "units"], tablefmt="github")
    anchor = RULES_HEADING.lower().replace(" ", "-")
    return "\n".join([table, "", f"At least {MIN_UNITS} units, else inconclusive; 'supported' when the whole 95 % "
                                 "t-interval of the mean is above 0, 'not supported' when below 0. Gains are in "
                                 f"weighted F1, finding 3 in epochs. Each rule and its cells: [below](#{anchor})."])


def findings_rules_markdown(findings: list[Finding]) -> str:
    """Each finding's rule, then the cell keys it rests on, folded (a long list that nobody reads first)."""
    parts = [f"## {RULES_HEADING}", ""]
    for f in findings:
        note = f" {f.note}." if f.note else ""
        parts += [f"{f.number}. {f.rule}{note}",
                  f"   <details><summary>{len(f.cell_keys)} cells</summary>{', '.join(f.cell_keys) or 'none'}"
                  "</details>"]
    return "\n".join(parts)
