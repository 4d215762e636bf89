import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from ecgbench.metrics import bce_loss, classification_metrics

CLASSES = ("A", "B", "C")


def test_metrics_match_hand_computed_values():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    p = np.array([[0.9, 0.2, 0.1], [0.4, 0.7, 0.6], [0.6, 0.8, 0.2], [0.1, 0.3, 0.3]])
    m = classification_metrics(y, p, CLASSES)
    # A: tp=1 fp=1 fn=1 -> F1 0.5; B: tp=2 -> 1.0; C has no positive -> undefined.
    assert m["per_class"]["A"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["B"]["f1"] == pytest.approx(1.0)
    assert m["per_class"]["C"]["f1"] is None
    # Weighted by prevalence (2 positives each for A and B): (2*0.5 + 2*1.0) / 4.
    assert m["f1_weighted"] == pytest.approx(0.75)
    assert m["f1_macro"] == pytest.approx(0.75)
    # A: positives scored 0.9, 0.4 vs negatives 0.6, 0.1 -> 3 of 4 pairs ranked right.
    assert m["per_class"]["A"]["auroc"] == pytest.approx(0.75)
    assert m["per_class"]["B"]["auroc"] == pytest.approx(1.0)
    assert m["per_class"]["C"]["auroc"] is None
    assert m["auroc_macro"] == pytest.approx(0.875)
    assert m["per_class"]["A"]["support"] == 2 and m["n"] == 4


def test_weighted_f1_agrees_with_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < [0.5, 0.2, 0.1, 0.05, 0.3]).astype(int)
    p = np.clip(y * 0.4 + rng.random((200, 5)) * 0.6, 0, 1)
    m = classification_metrics(y, p, tuple("ABCDE"))
    assert m["f1_weighted"] == pytest.approx(f1_score(y, p >= 0.5, average="weighted"))
    assert m["auroc_macro"] == pytest.approx(roc_auc_score(y, p, average="macro"))


def test_all_classes_absent_gives_undefined_not_zero():
    m = classification_metrics(np.zeros((3, 3), int), np.full((3, 3), 0.7), CLASSES)
    assert m["f1_weighted"] is None and m["f1_macro"] is None and m["auroc_macro"] is None


def test_shape_mismatch_and_nan_are_rejected():
    with pytest.raises(ValueError, match="disagree"):
        classification_metrics(np.zeros((3, 2), int), np.zeros((3, 3)), CLASSES)
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(np.zeros((2, 3), int), np.full((2, 3), np.nan), CLASSES)


def test_bce_loss_is_finite_for_confident_errors():
    assert bce_loss(np.array([[1.0]]), np.array([[0.0]])) == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert bce_loss(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])) < 1e-6


def test_ranking_scores_stay_within_0_and_1_despite_rounding():
    """sklearn's average precision of a perfect ranking of 9 positives is 1.0000000000000002 (a cell of the
    default grid hit it); the metrics never report a score above 1."""
    from sklearn.metrics import average_precision_score

    y_true = np.array([[1]] * 9 + [[0]] * 3)
    y_prob = np.linspace(1, 0, 12)[:, None]
    assert average_precision_score(y_true[:, 0], y_prob[:, 0]) > 1.0  # the rounding this guards against
    metrics = classification_metrics(y_true, y_prob, ("A",))
    assert metrics["auprc_macro"] == 1.0 and metrics["per_class"]["A"]["auprc"] == 1.0
