"""Train/validation/test assignment: the source's own folds, or a seeded multi-label stratified split that
keeps every patient's records in one split.

The stratified split is iterative stratification (Sechidis et al., 2011) over patient groups: the rarest
class is placed first, each group going to the split that still needs that class most, so small classes
land in every split in proportion. Ties are broken by a seeded permutation, so a seed gives one split.
"""
from __future__ import annotations

import numpy as np

from ecgbench.data.dataset import SPLITS
from ecgbench.data.manifest import DataError, FoldSplit, StratifiedSplit


def fold_split(folds: np.ndarray, rule: FoldSplit, names: list[str] | None = None) -> np.ndarray:
    """Split name per record from its fold; a fold the rule does not assign is an error naming its records
    (``names``: how to name each record, e.g. with the index file and line that gives its fold)."""
    split_of = {fold: name for name in SPLITS for fold in getattr(rule, name)}
    unassigned = sorted(set(folds.tolist()) - set(split_of))
    if unassigned:
        names = names or [f"record at position {i}" for i in range(len(folds))]
        bad = [f"{names[i]} has fold {folds[i]}" for i in np.flatnonzero(np.isin(folds, unassigned))]
        raise DataError(f"folds {unassigned} are in no split of the manifest's rule (train {list(rule.train)}, "
                        f"val {list(rule.val)}, test {list(rule.test)}): " + "; ".join(bad[:5])
                        + (f"; ... {len(bad) - 5} more" if len(bad) > 5 else ""))
    return np.array([split_of[f] for f in folds.tolist()], dtype="<U5")


def stratified_split(labels: np.ndarray, groups: np.ndarray, fractions: tuple[float, float, float],
                     seed: int) -> np.ndarray:
    """Split name per record; records of one group always share a split."""
    group_keys, group_of = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(group_keys), labels.shape[1]), dtype=np.int64)
    np.add.at(counts, group_of, labels.astype(np.int64))
    sizes = np.bincount(group_of, minlength=len(group_keys))
    frac = np.asarray(fractions, dtype=float)
    want_records = frac * len(labels)
    want_labels = frac[:, None] * counts.sum(axis=0)[None, :]
    open_split = frac > 0
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(len(SPLITS))
    assigned = np.full(len(group_keys), -1)

    def best(need: np.ndarray) -> int:
        # largest need first, then largest remaining record need, then the seeded order
        keys = (tiebreak, -want_records, -np.where(open_split, need, -np.inf))
        return int(np.lexsort(keys)[0])

    order = rng.permutation(len(group_keys))
    while True:
        remaining = order[assigned[order] < 0]
        positives = counts[remaining].sum(axis=0)
        if not positives.any():
            break
        rarest = int(np.argmin(np.where(positives > 0, positives, np.iinfo(np.int64).max)))
        for g in remaining[counts[remaining, rarest] > 0]:
            s = best(want_labels[:, rarest])
            assigned[g] = s
            want_labels[s] -= counts[g]
            want_records[s] -= sizes[g]
    for g in order[assigned[order] < 0]:
        s = best(want_records)
        assigned[g] = s
        want_records[s] -= sizes[g]
    return np.asarray(SPLITS, dtype="<U5")[assigned[group_of]]


def check_every_split(split: np.ndarray, where: str) -> np.ndarray:
    """``split`` if train, val and test each hold records; else an error saying which are empty. An empty
    validation or test split would fail every cell late and obscurely (no records to evaluate)."""
    counts = {name: int((split == name).sum()) for name in SPLITS}
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"{where}: the split leaves {' and '.join(empty)} empty ({counts}): train, val and test "
                        "each need records (more records, other split fractions, or split column rows of each)")
    return split


def assign_splits(rule: FoldSplit | StratifiedSplit, labels: np.ndarray, patient_ids: np.ndarray,
                  record_ids: np.ndarray, folds: list[int | None], names: list[str] | None = None) -> np.ndarray:
    """The manifest's split rule applied to the kept records (``names`` name them in errors)."""
    if isinstance(rule, FoldSplit):
        if any(f is None for f in folds):
            raise DataError("the manifest splits by the source's folds, but the loader gives records without one")
        return fold_split(np.asarray(folds), rule, names)
    groups = patient_ids if rule.group_by_patient else record_ids
    return stratified_split(labels, groups, (rule.train, rule.val, rule.test), rule.seed)
