"""Test metrics of a multi-label classifier; a class absent from the split is undefined (None), never 0 or a crash."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, roc_auc_score

THRESHOLD = 0.5


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray) -> list[float | None]:
    """F1 of each class; None where the class has no positive record in ``y_true``."""
    tp = (y_true & y_pred).sum(0)
    positives, predicted = y_true.sum(0), y_pred.sum(0)
    return [None if positives[c] == 0 else float(2 * tp[c] / (positives[c] + predicted[c]))
            for c in range(y_true.shape[1])]


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """The paper's metric: per-class F1 averaged with weights = class prevalence in the evaluated split."""
    f1 = per_class_f1(y_true, y_pred)
    support = y_true.sum(0)
    if support.sum() == 0:
        return None
    return float(sum(s * f for s, f in zip(support, f1) if f is not None) / support.sum())


def _per_class_ranking(y_true: np.ndarray, y_prob: np.ndarray, score) -> list[float | None]:
    """Each class's ranking score, within [0, 1]: average precision sums precision x recall steps, and for a
    perfect ranking of 9 positives sklearn's sum is 1.0000000000000002 by rounding alone."""
    out: list[float | None] = []
    for c in range(y_true.shape[1]):
        both_present = 0 < y_true[:, c].sum() < len(y_true)
        out.append(min(1.0, max(0.0, float(score(y_true[:, c], y_prob[:, c])))) if both_present else None)
    return out


def rank_auroc(y_true: np.ndarray, score: np.ndarray) -> float:
    """AUROC as the Mann-Whitney statistic (ties count 1/2): sklearn's value, without its per-call checks."""
    positive = np.asarray(y_true).astype(bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    rank_sum = rankdata(score)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def step_average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """Average precision as sklearn defines it (precision at each distinct score, weighted by the recall it
    adds), without its per-call checks."""
    order = np.argsort(-np.asarray(score), kind="mergesort")
    ordered, hits = np.asarray(score)[order], np.asarray(y_true).astype(bool)[order]
    last_of_value = np.r_[ordered[1:] != ordered[:-1], True]
    true_pos = np.cumsum(hits)[last_of_value]
    precision = true_pos / np.arange(1, len(hits) + 1)[last_of_value]
    return float(np.sum(np.diff(np.r_[0, true_pos / true_pos[-1]]) * precision))


Ranking = Callable[[np.ndarray, np.ndarray], float]


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray, classes: tuple[str, ...],
                           auroc: Ranking = roc_auc_score, auprc: Ranking = average_precision_score) -> dict:
    """Per-class F1 / AUROC / AUPRC at threshold 0.5 and their averages (weighted F1 is the paper's score).

    ``auroc``/``auprc``: the ranking scores; sklearn's by default, ``rank_auroc``/``step_average_precision``
    where the same values are needed for many records fast (checking stored records as they are read)."""
    y_true = np.asarray(y_true).astype(bool)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_true.shape != y_prob.shape or y_true.shape[1] != len(classes):
        raise ValueError(f"labels {y_true.shape}, probabilities {y_prob.shape}, {len(classes)} classes disagree")
    if not np.isfinite(y_prob).all():
        raise ValueError("probabilities contain NaN or inf")
    y_pred = y_prob >= THRESHOLD
    f1 = per_class_f1(y_true, y_pred)
    aurocs = _per_class_ranking(y_true, y_prob, auroc)
    auprcs = _per_class_ranking(y_true, y_prob, auprc)
    return {
        "f1_weighted": weighted_f1(y_true, y_pred),
        "f1_macro": _mean_defined(f1),
        "auroc_macro": _mean_defined(aurocs),
        "auprc_macro": _mean_defined(auprcs),
        "per_class": {name: {"f1": f1[i], "auroc": aurocs[i], "auprc": auprcs[i],
                             "support": int(y_true[:, i].sum())} for i, name in enumerate(classes)},
        "n": int(len(y_true)),
    }


def bce_loss(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities (clipped, so a confident error is large but finite)."""
    p = np.clip(np.asarray(y_prob, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y_true, dtype=np.float64)
    value = float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
    return value if math.isfinite(value) else float("inf")
