"""Transferability scores against transcriptions of their reference code, on rankings, and on bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgbench.transfer.scores import (
    SCORES,
    all_scores,
    higher_is_better,
    leep,
    logme,
    melep,
    register_score,
    scored_labels,
)


def _fixed_input(n: int = 64, n_source: int = 5, n_target: int = 4, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_target)) < 0.35).astype(np.float64)
    y[0], y[1] = 1, 0  # every target label both present and absent
    source_prob = 1 / (1 + np.exp(-(y @ rng.normal(size=(n_target, n_source)) + rng.normal(size=(n, n_source)))))
    features = y @ rng.normal(size=(n_target, dim)) + rng.normal(size=(n, dim))
    return source_prob, features, y


# --- TRANSCRIPTIONS of the reference code (kept in its own style and loops; not used by the package) ----------

def reference_melep(dummy_probas: np.ndarray, true_labels: np.ndarray) -> float:
    """TRANSCRIPTION of ``compute_melep`` in cuongvng/melep-ecg ``melep.py`` after its forward pass (Step 1 is
    replaced by the given sigmoid outputs). Tensors are float64 where the reference used torch's float32 default,
    so the comparison checks the formula rather than float32 rounding."""
    dummy_probas = torch.tensor(dummy_probas, dtype=torch.float64)
    true_labels = torch.tensor(true_labels, dtype=torch.float64)
    N = len(true_labels)
    Y = range(true_labels.shape[1])
    target_weights = true_labels.numpy().sum(axis=0) / N
    melep_all = []
    for y in range(len(Y)):
        melep_this_y = []
        for z in range(dummy_probas.shape[1]):
            P_yz = torch.zeros((2, 2), dtype=torch.float64)
            z_eq_zero_dist = 1 - dummy_probas[:, z]
            P_yz[0][0] = z_eq_zero_dist[torch.argwhere(true_labels[:, y] == 0)].sum() / N
            P_yz[1][0] = z_eq_zero_dist[torch.argwhere(true_labels[:, y] == 1)].sum() / N
            P_yz[0][1] = dummy_probas[:, z][torch.argwhere(true_labels[:, y] == 0)].sum() / N
            P_yz[1][1] = dummy_probas[:, z][torch.argwhere(true_labels[:, y] == 1)].sum() / N
            P_z = P_yz.sum(axis=0)
            P_y_given_z = P_yz / P_z
            theta_i_z0 = 1 - dummy_probas[:, z]
            theta_i_z1 = dummy_probas[:, z]
            y_i = true_labels[:, y]
            melep_this_pairs = torch.mean(torch.log(
                P_y_given_z[y_i.long(), 0] * theta_i_z0 + P_y_given_z[y_i.long(), 1] * theta_i_z1
            ))
            melep_this_y.append(melep_this_pairs)
        melep_all.append(-np.average(melep_this_y))
    return np.average(melep_all, weights=target_weights)


def reference_leep(pseudo_source_label: np.ndarray, target_label: np.ndarray) -> float:
    """TRANSCRIPTION of ``LEEP`` in thuml/LogME ``LEEP.py``."""
    N, C_s = pseudo_source_label.shape
    target_label = target_label.reshape(-1)
    C_t = int(np.max(target_label) + 1)
    normalized_prob = pseudo_source_label / float(N)
    joint = np.zeros((C_t, C_s), dtype=float)
    for i in range(C_t):
        this_class = normalized_prob[target_label == i]
        row = np.sum(this_class, axis=0)
        joint[i] = row
    p_target_given_source = (joint / joint.sum(axis=0, keepdims=True)).T
    empirical_prediction = pseudo_source_label @ p_target_given_source
    empirical_prob = np.array([predict[label] for predict, label in zip(empirical_prediction, target_label)])
    return np.mean(np.log(empirical_prob))


def reference_leep_binary_decomposition(source_prob: np.ndarray, y: np.ndarray) -> float:
    """The decomposition the package states, glued around the transcribed LEEP: 2S dummy labels, C binary tasks."""
    S = source_prob.shape[1]
    pseudo = np.zeros((len(source_prob), 2 * S))
    for s in range(S):
        pseudo[:, 2 * s] = (1 - source_prob[:, s]) / S
        pseudo[:, 2 * s + 1] = source_prob[:, s] / S
    return np.mean([reference_leep(pseudo, y[:, c].astype(int)) for c in range(y.shape[1])])


def reference_truncated_svd(x):
    """TRANSCRIPTION of ``truncated_svd`` in thuml/LogME ``LogME.py`` (without numba)."""
    u, s, vh = np.linalg.svd(x.transpose() @ x)
    s = np.sqrt(s)
    u_times_sigma = x @ vh.transpose()
    k = np.sum((s > 1e-10) * 1)
    s = s.reshape(-1, 1)
    s = s[:k]
    vh = vh[:k]
    u = u_times_sigma[:, :k] / s.reshape(1, -1)
    return u, s, vh


def reference_logme_fit(f: np.ndarray, y: np.ndarray) -> float:
    """TRANSCRIPTION of ``LogME(regression=False).fit`` (``_fit_fixed_point``) in thuml/LogME ``LogME.py``."""
    f = f.astype(np.float64)
    N, D = f.shape
    if N > D:
        u, s, vh = reference_truncated_svd(f)
    else:
        u, s, vh = np.linalg.svd(f, full_matrices=False)
    s = s.reshape(-1, 1)
    sigma = (s ** 2)
    evidences = []
    num_dim = int(y.max() + 1)
    for i in range(num_dim):
        y_ = (y == i).astype(np.float64)
        y_ = y_.reshape(-1, 1)
        x = u.T @ y_
        x2 = x ** 2
        res_x2 = (y_ ** 2).sum() - x2.sum()
        alpha, beta = 1.0, 1.0
        for _ in range(11):
            t = alpha / beta
            gamma = (sigma / (sigma + t)).sum()
            m2 = (sigma * x2 / ((t + sigma) ** 2)).sum()
            res2 = (x2 / ((1 + sigma / t) ** 2)).sum() + res_x2
            alpha = gamma / (m2 + 1e-5)
            beta = (N - gamma) / (res2 + 1e-5)
            t_ = alpha / beta
            if abs(t_ - t) / t <= 1e-3:
                break
        evidence = D / 2.0 * np.log(alpha) \
            + N / 2.0 * np.log(beta) \
            - 0.5 * np.sum(np.log(alpha + beta * sigma)) \
            - beta / 2.0 * res2 \
            - alpha / 2.0 * m2 \
            - N / 2.0 * np.log(2 * np.pi)
        evidence /= N
        evidences.append(evidence)
    return np.mean(evidences)


def reference_logme_per_label(features: np.ndarray, y: np.ndarray) -> float:
    """The stated multi-label use: the transcribed binary LogME fit on each target label, averaged."""
    return np.mean([reference_logme_fit(features, y[:, c].astype(int)) for c in range(y.shape[1])])


# --- against the references -----------------------------------------------------------------------------------

def test_melep_matches_reference_transcription():
    source_prob, _, y = _fixed_input()
    assert melep(source_prob, y) == pytest.approx(reference_melep(source_prob, y), abs=1e-6)
    assert melep(source_prob, y) > 0  # the authors' sign: a negated log-likelihood


def test_leep_matches_reference_transcription():
    source_prob, _, y = _fixed_input()
    assert leep(source_prob, y) == pytest.approx(reference_leep_binary_decomposition(source_prob, y), abs=1e-6)
    assert leep(source_prob, y) < 0


@pytest.mark.parametrize("n, dim", [(64, 8), (24, 40)], ids=["records>dims", "records<dims"])
def test_logme_matches_reference_transcription(n, dim):
    _, features, y = _fixed_input(n=n, dim=dim)
    assert logme(features, y) == pytest.approx(reference_logme_per_label(features, y), abs=1e-6)


def test_logme_dead_units_match_reference():
    """All-zero feature columns (dead ReLU units) are exact null directions: the reference drops them too."""
    _, features, y = _fixed_input(n=64, dim=6)
    features = np.concatenate([features, np.zeros((64, 3))], axis=1)
    assert logme(features, y) == pytest.approx(reference_logme_per_label(features, y), abs=1e-6)


def test_logme_duplicated_features_drop_their_null_directions():
    """Duplicated columns leave null directions the reference only drops in exact arithmetic: compare with the
    reference on the same features rotated (LogME is invariant to it) so that those directions are exact zeros."""
    _, features, y = _fixed_input(n=64, dim=6)
    mixing = np.concatenate([np.eye(6), np.eye(6)[:, :2]], axis=1)  # [f, f[:, :2]] = f @ mixing
    duplicated = features @ mixing
    _, _, vh = np.linalg.svd(mixing)
    rotated = duplicated @ vh.T
    rotated[:, 6:] = 0.0  # the null directions, exactly
    assert logme(duplicated, y) == pytest.approx(reference_logme_per_label(rotated, y), abs=1e-6)
    assert logme(rotated, y) == pytest.approx(reference_logme_per_label(rotated, y), abs=1e-6)


# --- ranking: an upstream built to transfer beats a shuffled one ---------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_informative_upstream_ranks_above_shuffled_one(seed):
    """Source outputs and features that follow the target's class structure, vs the same rows shuffled."""
    rng = np.random.default_rng(seed)
    n, n_classes = 300, 5
    y = (rng.random((n, n_classes)) < 0.3).astype(np.float64)
    mixing = np.eye(n_classes) * 3 + rng.normal(scale=0.3, size=(n_classes, n_classes))
    informative_prob = 1 / (1 + np.exp(-((2 * y - 1) @ mixing + rng.normal(size=(n, n_classes)))))
    informative_features = y @ rng.normal(size=(n_classes, 16)) + rng.normal(scale=0.5, size=(n, 16))
    order = rng.permutation(n)
    good = all_scores(informative_prob, informative_features, y)
    shuffled = all_scores(informative_prob[order], informative_features[order], y)
    for name, higher in higher_is_better().items():
        assert (good[name] > shuffled[name]) == higher, (name, good[name], shuffled[name])


def test_the_score_registry_names_each_score_once_and_a_registered_score_joins_every_task(monkeypatch):
    assert higher_is_better() == {"melep": False, "leep": True, "logme": True}
    with pytest.raises(ValueError, match="'leep' is already registered"):
        register_score("leep", True, lambda *args: 0.0)
    source_prob, features, y = _fixed_input()
    before = all_scores(source_prob, features, y)
    monkeypatch.setattr("ecgbench.transfer.scores.SCORES", dict(SCORES))
    register_score("width", True, lambda source_prob, features, y, gram: float(features.shape[1]))
    after = all_scores(source_prob, features, y)
    assert after == {**before, "width": float(features.shape[1])} and higher_is_better()["width"] is True


# --- bad inputs and constant labels ---------------------------------------------------------------------------

def test_shape_mismatch_is_an_error():
    source_prob, features, y = _fixed_input()
    with pytest.raises(ValueError, match="source_prob: 63 rows, but the labels have 64"):
        melep(source_prob[1:], y)
    with pytest.raises(ValueError, match="features: 60 rows"):
        logme(features[4:], y)
    with pytest.raises(ValueError, match="2-D"):
        leep(source_prob[:, 0], y)


def test_probabilities_outside_unit_interval_are_an_error():
    source_prob, _, y = _fixed_input()
    logits = np.log(source_prob / (1 - source_prob))
    with pytest.raises(ValueError, match=r"\[0, 1\] \(sigmoid outputs, not logits\); row 0"):
        melep(logits, y)
    source_prob[3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite value at row 3, column 2"):
        leep(source_prob, y)


def test_non_binary_labels_are_an_error():
    source_prob, _, y = _fixed_input()
    y[5, 1] = 0.5
    with pytest.raises(ValueError, match="row 5, column 1 is 0.5"):
        melep(source_prob, y)


def test_constant_labels_are_left_out():
    """A never-present and an always-present label change no score; the reference agrees on the first."""
    source_prob, features, y = _fixed_input()
    padded = np.concatenate([y, np.zeros((len(y), 1)), np.ones((len(y), 1))], axis=1)
    assert scored_labels(padded).tolist() == [True] * y.shape[1] + [False, False]
    assert all_scores(source_prob, features, padded) == pytest.approx(all_scores(source_prob, features, y), abs=1e-12)
    never = padded[:, :-1]
    assert melep(source_prob, never) == pytest.approx(reference_melep(source_prob, never), abs=1e-6)
    # The reference counts an always-present label as perfect (term 0, prevalence weight 1): the same
    # positive factor for every checkpoint, which the package leaves out.
    weights = y.mean(axis=0).sum()
    assert reference_melep(source_prob, padded) == pytest.approx(melep(source_prob, y) * weights / (weights + 1),
                                                                 abs=1e-6)


def test_no_varying_label_is_an_error():
    source_prob, features, y = _fixed_input()
    constant = np.zeros_like(y)
    constant[:, 0] = 1
    for score, first in ((melep, source_prob), (leep, source_prob), (logme, features)):
        with pytest.raises(ValueError, match="no target label is both present and absent in these 64 records"):
            score(first, constant)


def test_saturated_source_output_is_finite():
    """A source label the checkpoint never (or always) predicts: its unseen dummy label contributes 0, not 0/0."""
    source_prob, _, y = _fixed_input()
    source_prob[:, 0], source_prob[:, 1] = 0.0, 1.0
    assert np.isfinite(melep(source_prob, y)) and np.isfinite(leep(source_prob, y))
