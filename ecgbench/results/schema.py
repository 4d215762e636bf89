"""The result record of one cell: a versioned JSON document with a fixed set of top-level keys.

Keys (schema 2):
  schema_version  int
  key             the cell's readable id, e.g. "cpsc2018->ptb-resnet1d18-f0.25-finetune-s0"
  cell            {upstream, downstream, model, fraction, regime, seed}
  cell_id         hash of everything that changes the result (see ``identity``)
  identity        {profile, hyperparameters, classes, dataset digests, split digest, checkpoint id, precision
                   (fp32 or bf16: what the cell computed in, ``ecgbench.engine.precision``), input (rate,
                   seconds, leads the model read), code_digest (of the result-affecting source,
                   ``ecgbench.codeid``), datasets ({name: {source, records, expected}} of the downstream and the
                   upstream: ``results.datasets``)}; the profile and the hyperparameters make the configuration
                   tag of the record's file name (``configuration``)
  profile         the profile's name
  data_source     "synthetic" or "real" (a cell never mixes them)
  status          "ok" or "failed"; ``error`` holds the text of a failure
  history         per epoch: epoch, train_loss, val_loss, val_f1_weighted, val_auroc_macro, seconds
  best_epoch      chosen on the validation split, never the test split
  stop_reason     "max_epochs" or "early_stop(...)"
  test            test metrics of the best epoch (see ``ecgbench.metrics``), None when failed; computed from
                  exactly the stored ``predictions.y_prob``, so sklearn on the stored predictions gives them again
                  (``recheck`` does so whenever a stored record is read, and refuses one that disagrees)
  predictions     {record_ids, y_true, y_prob} of the test split; y_prob are the model's float32 probabilities
                  written as their shortest exact decimals (JSON round-trips them), not rounded
  sizes           {train, val, test, train_full}: records used
  timing          {wall_s, train_s, pretrain_s (seconds the upstream checkpoint took), pretrain_built_here}
  environment     {ecgbench, commit, dirty, python, torch, device, device_name, torch_threads, peak_rss_mb,
                   peak_gpu_mb (CUDA only: this cell's peak of allocated GPU memory)}
  created         ISO-8601 UTC time the record was written
  overlap         (transfer cells) the overlap guard's finding: {upstream, downstream, mode, checked, decision,
                  shared and dropped per split, examples, and not_compared: the datasets a given checkpoint was
                  trained on that could not be compared, when there are any}; see ``ecgbench.data.overlap``
  content_sha256  sha256 of the canonical JSON of every other key (``content_digest``), added by the store when
                  it writes the record; a stored record whose content no longer matches it (a hand-edited
                  metric) is rejected, naming the file. A record in memory may lack it; a stored one may not.

Versions: schema 1 (before content_sha256, probabilities rounded to 5 decimals) is read as an error that says
so ("made by schema 1 ... re-run"): the runner re-runs such a cell, reports skip and name the file.
"""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any

SCHEMA_VERSION = 2
STATUSES = ("ok", "failed")
DIGEST_KEY = "content_sha256"
RECORD_KEYS = frozenset({
    "schema_version", "key", "cell", "cell_id", "identity", "profile", "data_source", "status", "error",
    "history", "best_epoch", "stop_reason", "test", "predictions", "sizes", "timing", "environment", "created",
})
OPTIONAL_KEYS = frozenset({"overlap"})  # transfer cells: what the overlap guard found (ecgbench.data.overlap)
CELL_KEYS = frozenset({"upstream", "downstream", "model", "fraction", "regime", "seed"})
OLDER_SCHEMAS = {1: "records without a content digest, probabilities rounded to 5 decimals"}


class ResultRecordError(ValueError):
    """A stored record that cannot be trusted (wrong schema, unknown or missing keys, content not its digest)."""


def finite_or_none(obj):
    """JSON has no NaN: undefined numbers are stored as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def content_digest(record: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, NaN as null) of every key but the digest itself."""
    body = {k: v for k, v in record.items() if k != DIGEST_KEY}
    text = json.dumps(finite_or_none(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def sealed(record: dict) -> dict:
    """The record as stored: NaN as null, with its content digest."""
    plain = finite_or_none({k: v for k, v in record.items() if k != DIGEST_KEY})
    return {**plain, DIGEST_KEY: content_digest(plain)}


def check_seal(document: dict, where: str, error: type[Exception]) -> None:
    """A stored document (cell or score record) must carry the digest of its content, and match it: a number
    edited by hand is refused with its file named, never reused or reported."""
    if DIGEST_KEY not in document:
        raise error(f"{where}: no {DIGEST_KEY}: a stored record must carry the digest of its content")
    if document[DIGEST_KEY] != content_digest(document):
        raise error(f"{where}: content does not match its {DIGEST_KEY} (edited after it was written?): not trusted")


def _check_version(record: dict, where: str) -> None:
    version = record.get("schema_version")
    if version == SCHEMA_VERSION:
        return
    if version in OLDER_SCHEMAS:
        raise ResultRecordError(f"{where}: made by schema {version} ({OLDER_SCHEMAS[version]}); this ecgbench "
                                f"reads schema {SCHEMA_VERSION}: re-run its cell (the runner does so by itself)")
    raise ResultRecordError(f"{where}: schema_version {version!r}, expected {SCHEMA_VERSION}")


def validate_record(record: Any, where: str = "record", *, stored: bool = False) -> dict:
    """Return ``record`` if it matches the schema, else raise ``ResultRecordError`` naming ``where``.

    A digest, when present, must match the content; ``stored`` records (read from a file) must carry one.
    """
    if not isinstance(record, dict):
        raise ResultRecordError(f"{where}: not a JSON object")
    _check_version(record, where)
    keys = set(record) - {DIGEST_KEY}
    unknown, missing = keys - RECORD_KEYS - OPTIONAL_KEYS, RECORD_KEYS - keys
    if unknown or missing:
        raise ResultRecordError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    if stored or DIGEST_KEY in record:
        check_seal(record, where, ResultRecordError)
    if not isinstance(record["cell"], dict) or set(record["cell"]) != CELL_KEYS:
        raise ResultRecordError(f"{where}: cell must have exactly {sorted(CELL_KEYS)}")
    if record["status"] not in STATUSES:
        raise ResultRecordError(f"{where}: status {record['status']!r} not in {STATUSES}")
    if record["status"] == "ok" and not isinstance(record["test"], dict):
        raise ResultRecordError(f"{where}: an ok record needs test metrics")
    return record
