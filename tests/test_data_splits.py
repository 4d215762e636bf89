import numpy as np
import pytest

from ecgbench.data.manifest import DataError
from ecgbench.data.registry import get_manifest
from ecgbench.data.splits import check_every_split, fold_split, stratified_split


def _multilabel(n_patients: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1-5 records per patient; labels shared within a patient; class prevalences from 40 % to 2 %."""
    rng = np.random.default_rng(seed)
    per_patient = rng.integers(1, 6, n_patients)
    groups = np.repeat(np.arange(n_patients), per_patient).astype(str)
    patient_labels = rng.random((n_patients, 5)) < [0.4, 0.2, 0.1, 0.05, 0.02]
    return patient_labels[np.repeat(np.arange(n_patients), per_patient)].astype(np.uint8), groups


def test_ptbxl_folds_1_to_8_train_9_val_10_test():
    rule = get_manifest("ptbxl").split
    split = fold_split(np.arange(1, 11), rule)
    assert split.tolist() == ["train"] * 8 + ["val", "test"]
    with pytest.raises(DataError, match=r"folds \[11\]"):
        fold_split(np.array([1, 11]), rule)


def test_no_patient_is_in_two_splits_and_proportions_are_kept():
    labels, groups = _multilabel(400)
    split = stratified_split(labels, groups, (0.7, 0.1, 0.2), seed=0)
    for g in np.unique(groups):
        assert len(set(split[groups == g])) == 1
    shares = [np.mean(split == s) for s in ("train", "val", "test")]
    np.testing.assert_allclose(shares, [0.7, 0.1, 0.2], atol=0.03)
    for c in range(labels.shape[1]):  # even the 2 % class lands in every split, in proportion
        positives = labels[:, c].astype(bool)
        share = [np.mean(split[positives] == s) for s in ("train", "val", "test")]
        np.testing.assert_allclose(share, [0.7, 0.1, 0.2], atol=0.12)


def test_the_split_is_a_function_of_the_seed():
    labels, groups = _multilabel(200)
    first = stratified_split(labels, groups, (0.7, 0.1, 0.2), seed=3)
    np.testing.assert_array_equal(first, stratified_split(labels, groups, (0.7, 0.1, 0.2), seed=3))
    assert (first != stratified_split(labels, groups, (0.7, 0.1, 0.2), seed=4)).any()


def test_a_zero_fraction_split_stays_empty():
    labels, groups = _multilabel(50)
    split = stratified_split(labels, groups, (0.8, 0.0, 0.2), seed=0)
    assert not (split == "val").any()



def test_a_split_that_leaves_a_split_empty_is_an_error_saying_which():
    check_every_split(np.array(["train", "val", "test"]), "d")
    with pytest.raises(DataError,
                       match=r"d: the split leaves val and test empty \(\{'train': 2, 'val': 0, 'test': 0\}\)"):
        check_every_split(np.array(["train", "train"]), "d")
