"""Transferability scores: how well will an upstream checkpoint fine-tune on a downstream set, before training?

Every score reads one forward pass of the upstream checkpoint over the downstream training records:
``source_prob`` [n, S], the checkpoint's sigmoid outputs for its own S source labels, and/or ``features``
[n, D], the input of its replaceable last layer; ``y`` [n, C] holds the downstream multi-hot labels.

* ``melep`` -- MELEP (Nguyen, Duong & Do, J Healthc Inform Res 2024; reference ``melep.py`` of
  cuongvng/melep-ecg). Each source label s is a binary "dummy label" z with P(z=1 | x_i) = source_prob[i, s].
  For each target label c and source label s, the 2x2 empirical joint P(y_c, z_s) = mean_i 1[y_ic=y] P(z_s|x_i)
  gives P(y_c | z_s), and the pair's term is mean_i log sum_z P(y_ic | z) P(z | x_i). A target label's value is
  minus the mean of its terms over the source labels; MELEP is the mean of those over target labels weighted by
  their prevalence in ``y``. **Sign: the authors negate the log-likelihood, so MELEP >= 0 and LOWER means more
  transferable** (their paper reports negative correlations with the fine-tuned F1).
* ``leep`` -- LEEP (Nguyen et al., ICML 2020; reference ``LEEP.py`` of thuml/LogME) on a binary decomposition:
  the target becomes C binary tasks (y_c in {0, 1}); the source becomes one categorical distribution over 2S
  dummy labels (s, z) with P((s, z) | x_i) = P(z_s | x_i) / S, a uniform mixture of the S binary source outputs.
  LEEP of task c is the reference's mean_i log sum_(s,z) P(y_ic | s, z) P((s, z) | x_i), and ``leep`` is the
  plain mean over target labels. Its conditionals equal MELEP's, so for one label LEEP = mean_i log mean_s
  (pair likelihood) where MELEP = -mean_s mean_i log (pair likelihood). **Higher (closer to 0) is better.**
* ``logme`` -- LogME (You et al., ICML 2021; reference ``LogME.py`` of thuml/LogME, its default ``fit``: the
  fixed-point iteration) on ``features``. Each target label is its own binary classification: its LogME is the
  reference's classification evidence for y_c in {0, 1} (the mean of the evidences of the indicators y_c = 0 and
  y_c = 1), and ``logme`` is the plain mean over target labels. **Higher is better.**

Constant target labels (never or always present in ``y``) say nothing about any checkpoint, so every score
leaves them out and the remaining labels decide it (``scored_labels``); with none left the scores raise
``NothingToScore`` (a tiny training subset can hold a single label pattern). For
MELEP the reference already gives a never-present label weight 0; an always-present label it would count as
perfectly predicted (term 0, weight 1), which shrinks every checkpoint's MELEP on that data by the same factor
and so never changes their ranking: we leave it out so MELEP stays a mean over informative labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

LOGME_EPSILON = 1e-5  # the reference's regulariser of the fixed-point updates
LOGME_MAX_ITERATIONS = 11  # as the reference: converges in 2-3, stops after 11
LOGME_TOLERANCE = 1e-3  # relative change of alpha / beta that ends the iteration (the reference's)
LOGME_RANK_CUTOFF = 1e-10  # singular values at or below it are rank-deficient directions (the reference's)
GRAM_CHUNK = 2048  # features rows / columns per float64 block while forming the Gram matrix


class NothingToScore(ValueError):
    """No target label is both present and absent in the records: no score can tell checkpoints apart."""


# --- input checks -------------------------------------------------------------------------------------------

def _matrix(name: str, values, n: int | None = None, keep_float32: bool = False) -> np.ndarray:
    """``values`` as a finite float64 [n, k] array, else a ValueError naming the array and the first bad entry.

    ``keep_float32``: a float32 array stays float32 (the RNNs' features are n x 100 000; a float64 copy doubles
    the largest array of the scores, and every product with it is formed in float64 blocks anyway).
    """
    array = np.asarray(values)
    if not (keep_float32 and array.dtype == np.float32):
        array = array.astype(np.float64, copy=False)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [records, columns], got shape {array.shape}")
    if n is not None and len(array) != n:
        raise ValueError(f"{name}: {len(array)} rows, but the labels have {n} records")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if len(bad):
        raise ValueError(f"{name}: non-finite value at row {bad[0][0]}, column {bad[0][1]}")
    return array


def _labels(y) -> np.ndarray:
    """Multi-hot labels as float64 [n, C] of 0/1."""
    labels = _matrix("y", y)
    bad = np.argwhere((labels != 0) & (labels != 1))
    if len(bad):
        raise ValueError(f"y: labels must be 0 or 1, row {bad[0][0]}, column {bad[0][1]} is {labels[tuple(bad[0])]}")
    return labels


def _probabilities(source_prob, n: int) -> np.ndarray:
    probabilities = _matrix("source_prob", source_prob, n)
    bad = np.argwhere((probabilities < 0) | (probabilities > 1))
    if len(bad):
        row, column = bad[0]
        raise ValueError(f"source_prob: probabilities must lie in [0, 1] (sigmoid outputs, not logits); "
                         f"row {row}, column {column} is {probabilities[row, column]}")
    return probabilities


def scored_labels(y) -> np.ndarray:
    """Mask [C] of the target labels every score uses: present in some records and absent in others."""
    labels = _labels(y)
    prevalence = labels.mean(axis=0)
    varying = (prevalence > 0) & (prevalence < 1)
    if not varying.any():
        raise NothingToScore(f"y: no target label is both present and absent in these {len(labels)} records "
                         f"(prevalences {np.round(prevalence, 3).tolist()}): nothing to score")
    return varying


# --- MELEP and LEEP: the 2x2 empirical predictor of each (target, source) pair ---------------------------------

def _pair_likelihoods(source_prob, y) -> tuple[np.ndarray, np.ndarray]:
    """P(y_ic | x_i) under each source label's empirical predictor [n, C', S], and the scored labels [n, C'].

    The joint P(y_c = b, z_s = z) is the mean over records of 1[y_ic = b] P(z_s = z | x_i); dividing by the
    marginal P(z_s = z) gives the conditional. Where P(z_s = z) is 0 the dummy label never occurs, its
    P(z_s = z | x_i) is 0 for every record, and it contributes 0 (the reference would produce 0/0 there).
    """
    labels = _labels(y)
    p1 = _probabilities(source_prob, len(labels))
    labels = labels[:, scored_labels(labels)]
    n = len(labels)
    p0 = 1.0 - p1
    likelihood = np.zeros((n, labels.shape[1], p1.shape[1]))
    for target_value, indicator in ((1, labels), (0, 1.0 - labels)):
        for theta in (p0, p1):
            joint = indicator.T @ theta / n  # [C', S]
            marginal = theta.mean(axis=0)  # [S]
            conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
            # Records whose label equals target_value take P(target_value | z) P(z | x_i).
            likelihood += indicator[:, :, None] * conditional[None] * theta[:, None, :]
    return likelihood, labels


def melep(source_prob, y) -> float:
    """MELEP of a checkpoint's sigmoid outputs [n, S] on targets [n, C]: >= 0, LOWER = more transferable."""
    likelihood, labels = _pair_likelihoods(source_prob, y)
    per_label = -np.log(likelihood).mean(axis=0).mean(axis=1)  # [C']: minus the mean over source labels
    return float(np.average(per_label, weights=labels.mean(axis=0)))


def leep(source_prob, y) -> float:
    """LEEP on the binary decomposition (see the module docstring): <= 0, HIGHER = more transferable."""
    likelihood, _ = _pair_likelihoods(source_prob, y)
    return float(np.log(likelihood.mean(axis=2)).mean(axis=0).mean())


# --- LogME ----------------------------------------------------------------------------------------------------

Gram = Callable[[np.ndarray, bool], np.ndarray]
"""(features [n, D], by_rows) -> f^T f [D, D] when ``by_rows`` else f f^T [n, n], float64: the O(n^2 D) step."""


def numpy_gram(features: np.ndarray, by_rows: bool) -> np.ndarray:
    """f^T f (``by_rows``) or f f^T in float64, a block of GRAM_CHUNK rows or columns at a time."""
    n, d = features.shape
    gram = np.zeros((d, d) if by_rows else (n, n))
    for start in range(0, n if by_rows else d, GRAM_CHUNK):
        block = (features[start:start + GRAM_CHUNK] if by_rows
                 else features[:, start:start + GRAM_CHUNK]).astype(np.float64)
        gram += block.T @ block if by_rows else block @ block.T
    return gram


def _spectrum(features: np.ndarray, targets: np.ndarray, gram: Gram) -> tuple[np.ndarray, np.ndarray]:
    """Squared singular values [k] of ``features`` and the targets [n, T] projected on its left vectors [k, T].

    From the eigendecomposition of the smaller Gram matrix, so D = 100 000 RNN features never need an n x D SVD.
    As the reference: with more records than dimensions, rank-deficient directions are dropped (their share of
    the targets joins the residual); otherwise all min(n, D) are kept. The reference drops singular values
    <= LOGME_RANK_CUTOFF, but the Gram matrix's rounding leaves null directions (dead ReLU units are exact zeros,
    duplicated features are not) at about sqrt(eps) * largest, where the reference divides by them and reads
    noise; we also drop eigenvalues below the Gram matrix's rounding level (``numpy.linalg.matrix_rank``'s rule).
    """
    n, d = features.shape
    if n > d:
        eigenvalues, v = np.linalg.eigh(gram(features, True))
        rounding = eigenvalues.max() * d * np.finfo(np.float64).eps
        keep = eigenvalues > max(LOGME_RANK_CUTOFF ** 2, rounding)
        singular = np.sqrt(eigenvalues[keep])
        projected = v[:, keep].T @ (features.T.astype(np.float64) @ targets) / singular[:, None]
        return eigenvalues[keep], projected
    eigenvalues, u = np.linalg.eigh(gram(features, False))
    return np.clip(eigenvalues, 0.0, None), u.T @ targets


def _evidence(sigma: np.ndarray, x: np.ndarray, target: np.ndarray, d: int) -> float:
    """The reference's maximum log evidence per record of one target column (fixed-point iteration)."""
    n = len(target)
    x2 = x ** 2
    residual_outside = (target ** 2).sum() - x2.sum()  # the target's share outside the kept directions
    alpha, beta = 1.0, 1.0
    for _ in range(LOGME_MAX_ITERATIONS):
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum()
        m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
        res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + residual_outside
        alpha = gamma / (m2 + LOGME_EPSILON)
        beta = (n - gamma) / (res2 + LOGME_EPSILON)
        if abs(alpha / beta - t) / t <= LOGME_TOLERANCE:
            break
    evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * np.sum(np.log(alpha + beta * sigma))
                - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2 * np.pi))
    return float(evidence / n)


def logme(features, y, gram: Gram = numpy_gram) -> float:
    """LogME of penultimate features [n, D] on targets [n, C], mean of per-label binary LogME: HIGHER = better.

    ``gram`` forms the Gram matrix, the one O(n^2 D) step (``ecgbench.transfer.forward.torch_gram`` on a GPU).
    """
    labels = _labels(y)
    labels = labels[:, scored_labels(labels)]
    features = _matrix("features", features, len(labels), keep_float32=True)
    # Per label the reference's classification targets: the indicators of y_c = 0 and of y_c = 1.
    targets = np.concatenate([1.0 - labels, labels], axis=1)
    sigma, projected = _spectrum(features, targets, gram)
    evidences = [_evidence(sigma, projected[:, j], targets[:, j], features.shape[1]) for j in range(targets.shape[1])]
    return float(np.mean(evidences))  # each label has exactly two indicators: the mean of the per-label means


@dataclass(frozen=True)
class Score:
    """A transferability score: its name, which way is better, and how it is computed from one forward pass
    (source probabilities, last-layer inputs, downstream labels, the Gram of the device)."""

    name: str
    higher_is_better: bool
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray, Gram], float]


SCORES: dict[str, Score] = {}


def register_score(name: str, higher_is_better: bool,
                   compute: Callable[[np.ndarray, np.ndarray, np.ndarray, Gram], float]) -> Score:
    """Add a score to every score task (as lm-eval's ``register_metric``); a name is registered once."""
    if name in SCORES:
        raise ValueError(f"transferability score {name!r} is already registered")
    SCORES[name] = score = Score(name, higher_is_better, compute)
    return score


register_score("melep", False, lambda source_prob, features, y, gram: melep(source_prob, y))
register_score("leep", True, lambda source_prob, features, y, gram: leep(source_prob, y))
register_score("logme", True, lambda source_prob, features, y, gram: logme(features, y, gram))


def higher_is_better() -> dict[str, bool]:
    """Which way each registered score points, as a score record stores it."""
    return {name: score.higher_is_better for name, score in SCORES.items()}


def all_scores(source_prob, features, y, gram: Gram = numpy_gram) -> dict[str, float]:
    """Every registered score of one forward pass, by name, in registration order."""
    return {name: score.compute(source_prob, features, y, gram) for name, score in SCORES.items()}
