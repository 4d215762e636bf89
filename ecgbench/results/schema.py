"""The result record of one cell: a versioned JSON document with a fixed set of top-level keys.

Keys (schema 1):
  schema_version  int
  key             the cell's readable id, e.g. "cpsc2018->ptb-resnet1d18-f0.25-finetune-s0"
  cell            {upstream, downstream, model, fraction, regime, seed}
  cell_id         hash of everything that changes the result (see ``identity``)
  identity        {profile, hyperparameters, classes, dataset digests, split digest, checkpoint id, code_digest
                   (of the result-affecting source, ``ecgbench.codeid``)}
  profile         the profile's name
  data_source     "synthetic" or "real" (a cell never mixes them)
  status          "ok" or "failed"; ``error`` holds the text of a failure
  history         per epoch: epoch, train_loss, val_loss, val_f1_weighted, val_auroc_macro, seconds
  best_epoch      chosen on the validation split, never the test split
  stop_reason     "max_epochs" or "early_stop(...)"
  test            test metrics of the best epoch (see ``ecgbench.metrics``), None when failed
  predictions     {record_ids, y_true, y_prob} of the test split, so metrics and intervals can be recomputed
  sizes           {train, val, test, train_full}: records used
  timing          {wall_s, train_s, pretrain_s (seconds the upstream checkpoint took), pretrain_built_here}
  environment     {ecgbench, commit, dirty, python, torch, device, device_name, torch_threads, peak_rss_mb,
                   peak_gpu_mb (CUDA only: this cell's peak of allocated GPU memory)}
  created         ISO-8601 UTC time the record was written
"""
from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed")
RECORD_KEYS = frozenset({
    "schema_version", "key", "cell", "cell_id", "identity", "profile", "data_source", "status", "error",
    "history", "best_epoch", "stop_reason", "test", "predictions", "sizes", "timing", "environment", "created",
})
CELL_KEYS = frozenset({"upstream", "downstream", "model", "fraction", "regime", "seed"})


class ResultRecordError(ValueError):
    """A stored record that cannot be trusted (wrong schema, unknown or missing keys)."""


def validate_record(record: Any, where: str = "record") -> dict:
    """Return ``record`` if it matches the schema, else raise ``ResultRecordError`` naming ``where``."""
    if not isinstance(record, dict):
        raise ResultRecordError(f"{where}: not a JSON object")
    if record.get("schema_version") != SCHEMA_VERSION:
        raise ResultRecordError(f"{where}: schema_version {record.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    unknown, missing = set(record) - RECORD_KEYS, RECORD_KEYS - set(record)
    if unknown or missing:
        raise ResultRecordError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    if not isinstance(record["cell"], dict) or set(record["cell"]) != CELL_KEYS:
        raise ResultRecordError(f"{where}: cell must have exactly {sorted(CELL_KEYS)}")
    if record["status"] not in STATUSES:
        raise ResultRecordError(f"{where}: status {record['status']!r} not in {STATUSES}")
    if record["status"] == "ok" and not isinstance(record["test"], dict):
        raise ResultRecordError(f"{where}: an ok record needs test metrics")
    return record
