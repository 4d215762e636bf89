"""Scores from one forward pass of a classifier: the right outputs and features, batch-independent, no side effects."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgbench.models import build_model
from ecgbench.transfer.forward import classifier_forward, source_outputs, transferability_scores
from ecgbench.transfer.scores import all_scores


def _records(n: int = 6, n_classes: int = 3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1000, 12)).astype(np.float32)
    y = (rng.random((n, n_classes)) < 0.4).astype(np.float64)
    y[0], y[1] = 1, 0
    return x, y


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return build_model("resnet1d18", 4)


def test_resnet_features_are_the_input_of_fc2(resnet):
    x, _ = _records()
    probabilities, features = source_outputs(classifier_forward(resnet), x, batch_size=4)
    resnet.eval()
    with torch.no_grad():
        batch = torch.from_numpy(x)
        pooled = resnet.backbone(batch)
        expected_features = torch.relu(resnet.head[0](pooled))
        expected_prob = torch.sigmoid(resnet(batch))
    assert features.shape == (6, 512) and probabilities.shape == (6, 4)
    np.testing.assert_allclose(features, expected_features.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities, expected_prob.numpy(), rtol=1e-5, atol=1e-6)


def test_rnn_features_are_the_flattened_sequence():
    torch.manual_seed(0)
    model = build_model("gru", 2)
    x, _ = _records(n=3)
    _, features = source_outputs(classifier_forward(model), x)
    with torch.no_grad():
        expected = model.backbone(torch.from_numpy(x))
    assert features.shape == (3, 100_000)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_scores_match_the_arrays_and_do_not_depend_on_batching(resnet):
    x, y = _records()
    resnet.train()
    forward = classifier_forward(resnet)
    small_batches = transferability_scores(forward, x, y, batch_size=4)
    assert resnet.training and not resnet.head[2]._forward_pre_hooks  # mode restored, hook removed
    assert small_batches == pytest.approx(transferability_scores(forward, x, y, batch_size=6), abs=1e-5)
    assert small_batches == pytest.approx(all_scores(*source_outputs(forward, x), y), abs=1e-9)


def test_mismatched_records_are_an_error(resnet):
    x, y = _records()
    with pytest.raises(ValueError, match=r"same n, got shapes \(6, 1000, 12\) and \(5, 3\)"):
        transferability_scores(classifier_forward(resnet), x, y[1:])


@pytest.mark.parametrize("n, d", [(7, 300), (40, 6)])  # the n x n and the D x D Gram matrix
def test_torch_gram_matches_numpy_and_gives_the_same_logme(n, d):
    from ecgbench.transfer.forward import torch_gram
    from ecgbench.transfer.scores import logme, numpy_gram

    rng = np.random.default_rng(1)
    features = rng.normal(size=(n, d)).astype(np.float32)
    y = (rng.random((n, 3)) < 0.5).astype(np.float64)
    y[0], y[1] = 1, 0
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for by_rows in (True, False):
            np.testing.assert_allclose(torch_gram(device)(features, by_rows), numpy_gram(features, by_rows),
                                       rtol=1e-12, atol=1e-9)
        assert logme(features, y, torch_gram(device)) == pytest.approx(logme(features, y), rel=1e-9)
