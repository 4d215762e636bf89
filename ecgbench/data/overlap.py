"""The overlap guard: before a transfer cell runs, the recordings its upstream checkpoint was trained on are
compared, by content fingerprint, with the downstream's validation and test recordings (PhysioNet/CinC 2021
holds all of PTB-XL, CPSC2018 and Georgia: an upstream built from it has seen their test sets).

The profile's ``overlap`` decides: ``fail`` (the default) stops the cell at once, naming both datasets, the
count and the first records on each side; ``drop`` leaves the shared records out of that cell's validation and
test sets (its test set, and so its id, differs: ``compare`` never pairs it with an unguarded cell); ``report``
runs as is and records what is shared. An upstream whose training data are unknown is recorded as "unknown",
never as "none found"; so is one whose training data could only partly be compared (a given checkpoint trained
on a dataset that is not at hand here) when the part compared shares nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecgbench.data.dataset import PreparedDataset
from ecgbench.data.fingerprint import FingerprintSet, Match, find_matches
from ecgbench.data.manifest import DataError

OVERLAP_MODES = ("fail", "drop", "report")
DEFAULT_OVERLAP = "fail"
GUARDED_SPLITS = ("val", "test")
TRAINED_SPLITS = ("train", "val")  # the validation split chose the checkpoint's epoch: it was seen too
MAX_NAMED = 5


class OverlapError(DataError):
    """An upstream was trained on recordings of the downstream's validation or test split (``overlap`` says
    which, for the failed cell's record)."""

    def __init__(self, message: str, overlap: Overlap) -> None:
        super().__init__(message)
        self.overlap = overlap


def training_fingerprints(ds: PreparedDataset, prints: FingerprintSet) -> FingerprintSet:
    """What a checkpoint pre-trained on ``ds`` has seen: its training and validation records."""
    return prints.subset(np.flatnonzero(np.isin(ds.split, TRAINED_SPLITS)))


@dataclass(frozen=True)
class Overlap:
    """What an upstream and a downstream share, per guarded split, and what the guard did about it."""

    upstream: str
    downstream: str
    mode: str
    checked: bool  # False: the upstream's training data are unknown
    shared: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # split -> (upstream id, downstream id)
    dropped: dict[str, np.ndarray] = field(default_factory=dict)  # split -> downstream positions left out
    not_compared: tuple[str, ...] = ()  # datasets the upstream was trained on that could not be compared here

    @property
    def decision(self) -> str:
        """What the guard did; "none found" only where all the upstream was trained on was compared."""
        if self.checked and any(self.shared.values()):
            return {"fail": "failed", "drop": "dropped", "report": "reported"}[self.mode]
        return "unknown" if not self.checked or self.not_compared else "none found"

    def kept(self, ds: PreparedDataset, split: str) -> np.ndarray:
        """The positions of ``split`` the cell evaluates on (all, unless ``drop`` left some out)."""
        idx = ds.indices(split)
        return np.setdiff1d(idx, self.dropped[split]) if split in self.dropped else idx

    def identity(self) -> dict:
        """What enters the cell id: nothing under the default (ids stay as they were), else the mode and the
        records dropped per split."""
        if self.mode == DEFAULT_OVERLAP:
            return {}
        return {"overlap": {"mode": self.mode, "dropped": {s: len(v) for s, v in sorted(self.dropped.items())}}}

    def info(self) -> dict:
        """The record's ``overlap``: counts, the decision, and the first shared pairs per split."""
        return {"upstream": self.upstream, "downstream": self.downstream, "mode": self.mode,
                "checked": self.checked, "decision": self.decision,
                **({"not_compared": list(self.not_compared)} if self.not_compared else {}),
                "shared": {s: len(p) for s, p in self.shared.items()},
                "dropped": {s: len(v) for s, v in self.dropped.items()},
                "examples": {s: [list(x) for x in p[:MAX_NAMED]] for s, p in self.shared.items()}}


def _describe(overlap: Overlap) -> str:
    counts = ", ".join(f"{len(p)} of {s}" for s, p in overlap.shared.items() if p)
    pairs = [pair for p in overlap.shared.values() for pair in p][:MAX_NAMED]
    return (f"upstream {overlap.upstream} was trained on recordings of downstream {overlap.downstream}'s "
            f"validation/test splits ({counts}); first {overlap.upstream} records "
            f"{[u for u, _ in pairs]} = {overlap.downstream} records {[d for _, d in pairs]}")


def one_per_record(matches: list[Match]) -> list[Match]:
    """The first match of each record of the second set, so that counts are of its records: a recording the
    first set holds twice (two datasets of a collection, a kept duplicate) is one record shared."""
    first: dict[int, Match] = {}
    for m in matches:
        first.setdefault(m.j, m)
    return list(first.values())


def find_overlap(mode: str, upstream: str, trained_on: FingerprintSet | None, downstream: PreparedDataset,
                 prints: FingerprintSet, not_compared: tuple[str, ...] = ()) -> Overlap:
    """What ``upstream`` (trained on ``trained_on``, and on ``not_compared`` datasets that cannot be compared;
    None: unknown) shares with ``downstream`` (fingerprints ``prints``) in the guarded splits, and what ``mode``
    drops; ``enforce`` raises under ``fail``."""
    if mode not in OVERLAP_MODES:
        raise ValueError(f"overlap must be one of {OVERLAP_MODES}, got {mode!r}")
    if trained_on is None:
        return Overlap(upstream, downstream.name, mode, checked=False, not_compared=not_compared)
    shared, dropped = {}, {}
    for split in GUARDED_SPLITS:
        idx = downstream.indices(split)
        matches = one_per_record(find_matches(trained_on, prints.subset(idx)))
        shared[split] = [(str(trained_on.record_ids[m.i]), str(downstream.record_ids[idx[m.j]])) for m in matches]
        if mode == "drop":
            dropped[split] = np.unique(idx[[m.j for m in matches]]).astype(np.int64)
    return Overlap(upstream, downstream.name, mode, True, shared, dropped, not_compared)


def enforce(overlap: Overlap) -> Overlap:
    """``overlap``, unless the mode is ``fail`` and something is shared: then ``OverlapError`` naming both."""
    if overlap.mode == "fail" and any(overlap.shared.values()):
        raise OverlapError(_describe(overlap) + "; the profile's overlap = \"drop\" leaves them out of this cell's "
                           "validation/test sets, \"report\" runs it as is", overlap)
    return overlap
