"""The study grid: one test per cell of the selected profile (``--ecg-profile``), e.g. ``-k "finetune and ptb"``,
one per upstream checkpoint, run first (``--ecg-phase pretrain`` runs only those a selection needs), and one
transferability-score task per (upstream checkpoint, downstream, fraction, seed), ``-m transferability``.

Installed: ``pytest --pyargs ecgbench.grid``; in a checkout also ``pytest benchmarks/test_grid.py``."""
import math

import pytest


def test_pretrain(ecg_pretraining, ecg_pretrain):
    checkpoint = ecg_pretrain(ecg_pretraining)
    assert checkpoint["classes"] and checkpoint["best_epoch"] is not None
    assert all(math.isfinite(epoch["val_loss"]) for epoch in checkpoint["history"])


def test_cell(ecg_cell, ecg_run):
    record = ecg_run(ecg_cell)
    assert record["status"] == "ok", record["error"]
    test = record["test"]
    assert test["f1_weighted"] is not None, "the test split has no positive label at all"
    for metric in ("f1_weighted", "f1_macro", "auroc_macro", "auprc_macro"):
        value = test[metric]  # None only where no class of the test split is defined for the metric
        assert value is None or (math.isfinite(value) and 0.0 <= value <= 1.0), (metric, value)


def test_transferability(ecg_transferability, ecg_score):
    record = ecg_score(ecg_transferability)
    if record["status"] == "failed" and record["error"].startswith("NothingToScore"):
        pytest.skip(record["error"].splitlines()[0])  # a tiny subset with one label pattern: recorded, not a bug
    assert record["status"] == "ok", record["error"]
    scores = record["scores"]
    assert all(math.isfinite(value) for value in scores.values()), scores
    assert scores["melep"] >= 0.0 and scores["leep"] <= 0.0, scores  # MELEP is a negated, LEEP a log-likelihood
    assert record["n_records"] >= 1
