"""One recording stored twice in one dataset (saved again under another name, reached by two paths): found by
its content fingerprint at prepare, never by its name.

Two records holding one recording in different splits put a test record in training: always an error naming
both. ecgbench's own stratified split keeps them together (they are grouped like one patient's records), so
this can only come from a source's fixed folds or a split column. In one split they are counted in
``info.json`` (``duplicates``) and handled by the manifest's ``[quality] duplicate`` rule: ``keep`` (the
default, like every quality rule: the dataset stays as released, the pair is reported), ``drop`` (the later
record of each pair is left out and counted) or ``error``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgbench.data.dataset import PreparedDataset
from ecgbench.data.fingerprint import FingerprintSet, Match, fingerprint_signals
from ecgbench.data.loaders.base import Loader, RecordEntry
from ecgbench.data.manifest import DataError, Manifest

MAX_LISTED = 5  # pairs named in an error or in info.json's summary


def dataset_fingerprints(ds: PreparedDataset) -> FingerprintSet:
    """The fingerprints stored with ``ds`` at prepare; computed from its signals for a dataset built in memory
    (the same function of the same signals, so the result is the same)."""
    return ds.fingerprints if ds.fingerprints is not None else fingerprint_signals(ds.name, ds.signals,
                                                                                   ds.record_ids)


def merged_groups(values: np.ndarray, matches: list[Match]) -> np.ndarray:
    """``values`` (patient or record ids) with every group linked by a duplicate pair given one value, so that
    a grouped split puts both records of a pair, and all records of their patients, in one split."""
    parent: dict[str, str] = {}

    def root(v: str) -> str:
        while parent.get(v, v) != v:
            v = parent[v]
        return v

    values = np.asarray(values).astype(str)
    for m in matches:
        a, b = root(values[m.i]), root(values[m.j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([root(v) for v in values]) if parent else values


@dataclass(frozen=True)
class Duplicates:
    """Pairs of records of one split holding one recording, and the positions the rule drops."""

    rule: str
    pairs: list[tuple[str, str, float]]
    dropped: list[int]

    def info(self) -> dict:
        return {"rule": self.rule, "pairs": len(self.pairs), "dropped": len(self.dropped),
                "record_pairs": [list(p) for p in self.pairs]}


def _pair_text(entries: list[RecordEntry], split: np.ndarray, m: Match) -> str:
    return (f"{entries[m.i].describe()} in {split[m.i]} and {entries[m.j].describe()} in {split[m.j]} "
            f"(similarity {m.score:.3f})")


def resolve_duplicates(manifest: Manifest, matches: list[Match], split: np.ndarray, entries: list[RecordEntry]
                       ) -> Duplicates:
    """The manifest's rule applied to the duplicate pairs; raises ``DataError`` naming both records of the
    first pairs that cross splits (always) or share one (rule ``error``)."""
    cross = [m for m in matches if split[m.i] != split[m.j]]
    if cross:
        raise DataError(f"{manifest.name}: {len(cross)} pair(s) of records hold one recording in different splits "
                        "(a test record seen in training): " + "; ".join(_pair_text(entries, split, m)
                                                                           for m in cross[:MAX_LISTED])
                        + ": remove one record of each pair from the index, or give both the same split")
    rule = manifest.quality.duplicate
    if matches and rule == "error":
        raise DataError(f"{manifest.name}: {len(matches)} pair(s) of records hold one recording: "
                        + "; ".join(_pair_text(entries, split, m) for m in matches[:MAX_LISTED])
                        + " (the manifest has [quality] duplicate = \"error\"; \"keep\" or \"drop\" counts them)")
    pairs = [(entries[m.i].record_id, entries[m.j].record_id, m.score) for m in matches]
    return Duplicates(rule, pairs, sorted({m.j for m in matches}) if rule == "drop" else [])


def same_file_key(loader: Loader) -> Callable[[RecordEntry], str]:
    """The file a record's location names, resolved (``..``, symlinks, absolute paths, case variants on a
    case-insensitive file system, hard links: one inode), for the one-file-one-record check; a location that is
    no file of its own (a row of an array file) stays as written."""
    seen: dict[tuple[int, int], str] = {}

    def key(entry: RecordEntry) -> str:
        base = str(loader.path(entry.location))
        for relative in loader.record_files(entry):
            path = str(loader.path(relative))
            if path.startswith(base) and os.path.isfile(path):
                stat = os.stat(path)
                return seen.setdefault((stat.st_dev, stat.st_ino), os.path.realpath(path))
        return entry.location

    return key
