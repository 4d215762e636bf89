"""Transferability score records: their shape, and their store beside the cell records.

Layout: one JSON file per score task in ``<results>/transferability/<upstream>_to_<downstream>-<model>-f<fraction>
-s<seed>.json``, written atomically. The sub-folder keeps them apart from the cell records (``results/store``
reads only ``<results>/*.json``, so the leaderboard and every cell reader never see them) and from the upstream
checkpoints (``<results>/checkpoints/``) they are computed from.

The shape the analysis needs (``validate_score_record``; other keys are allowed there, so hand-built records work):
  kind              "transferability"
  upstream, downstream, model, fraction, seed
  status            "ok" or "failed"; a failed record holds the text in ``error`` and is left out
  scores            {name: float}, e.g. {"melep": 0.41, "leep": -0.52, "logme": -0.98} (ok records)
  higher_is_better  {name: bool}: which way each score points (``ecgbench.transfer.scores.SCORES``)
  n_records         downstream training records of the forward pass

A stored record (schema 2, ``validate_stored_score_record``) has exactly these keys, no others:
  schema_version    int
  kind, upstream, downstream, model, fraction, seed, status, n_records   as above
  key               the task's readable id and pytest id, e.g. "ptbxl->cpsc2018-resnet1d18-f0.05-s0"
  score_id          hash of ``identity``: a stored record is reused only when the id matches
  identity          {task, profile, classes, data_source, downstream_digest, subset_digest (the record ids of
                     the training subset, the fine-tune cell's), checkpoint_id, code_digest, schema_version}
  profile           the profile's name
  data_source       "synthetic" or "real"
  error             the failure's text, None when ok
  scores, higher_is_better   as above; None when failed
  timing            {wall_s, forward_s (the forward pass), scores_s (the scores from its outputs),
                     pretrain_s (seconds the checkpoint took to train), pretrain_built_here}
  environment       as a cell record's (``ecgbench.provenance.environment``)
  created           ISO-8601 UTC time the record was written
  content_sha256    the digest of every other key (``schema.content_digest``), added when the record is written;
                    a stored record whose content no longer matches it (a hand-edited score) is refused

Versions: schema 1 (before content_sha256) is refused like any other foreign schema; the runner re-scores it.
"""
from __future__ import annotations

import math
from pathlib import Path

from ecgbench.results.schema import DIGEST_KEY, ResultRecordError, check_seal, sealed
from ecgbench.results.store import RECORD_SUFFIX, LoadedRecords, check_document, read_json, write_json

SCORE_KIND = "transferability"
SCORE_SCHEMA_VERSION = 2
SCORES_FOLDER = "transferability"
SCORE_RECORD_KEYS = frozenset({"kind", "upstream", "downstream", "model", "fraction", "seed", "status",
                               "n_records"})
OK_SCORE_KEYS = frozenset({"scores", "higher_is_better"})
STORED_SCORE_KEYS = SCORE_RECORD_KEYS | OK_SCORE_KEYS | frozenset({
    "schema_version", "key", "score_id", "identity", "profile", "data_source", "error", "timing", "environment",
    "created", DIGEST_KEY})


class ScoreRecordError(ResultRecordError):
    """A transferability score record that does not have the documented shape."""


def validate_score_record(record, where: str = "score record") -> dict:
    """Return ``record`` if it has the shape the analysis needs, else raise ``ScoreRecordError`` naming ``where``."""
    if not isinstance(record, dict):
        raise ScoreRecordError(f"{where}: not a JSON object")
    if record.get("kind") != SCORE_KIND:
        raise ScoreRecordError(f"{where}: kind {record.get('kind')!r}, expected {SCORE_KIND!r}")
    missing = SCORE_RECORD_KEYS - set(record)
    if record.get("status") == "ok":
        missing |= OK_SCORE_KEYS - set(record)
    elif record.get("status") == "failed":
        missing |= {"error"} - set(record)
    else:
        raise ScoreRecordError(f"{where}: status {record.get('status')!r} not in ('ok', 'failed')")
    if missing:
        raise ScoreRecordError(f"{where}: missing keys {sorted(missing)}")
    if record["status"] == "ok":
        scores, directions = record["scores"], record["higher_is_better"]
        if not isinstance(scores, dict) or not isinstance(directions, dict) or set(scores) != set(directions):
            raise ScoreRecordError(f"{where}: scores and higher_is_better must name the same scores")
        bad = [k for k, v in scores.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
        if bad:
            raise ScoreRecordError(f"{where}: non-numeric or non-finite scores {sorted(bad)}")
    return record


def validate_stored_score_record(record, where: str = "score record") -> dict:
    """A stored record: schema 2 with exactly ``STORED_SCORE_KEYS``, its content digest, and the analysis shape."""
    check_document(record, where, ScoreRecordError, "schema_version", SCORE_SCHEMA_VERSION, STORED_SCORE_KEYS)
    check_seal(record, where, ScoreRecordError)
    return validate_score_record(record, where)


def score_record_path(results_dir: Path, file_stem: str) -> Path:
    return Path(results_dir) / SCORES_FOLDER / f"{file_stem}{RECORD_SUFFIX}"


def write_score_record(results_dir: Path, file_stem: str, record: dict) -> dict:
    """Seal with its content digest, validate and atomically write one score record; return it as stored.
    A killed writer leaves the previous file or none."""
    path = score_record_path(results_dir, file_stem)
    stored = validate_stored_score_record(sealed(record), str(path))
    write_json(path, stored, "score record")
    return stored


def read_score_record(path: Path) -> dict:
    """Load and validate one stored score record; ``ScoreRecordError`` names the file when it is not one."""
    return validate_stored_score_record(read_json(path, "score record", ScoreRecordError), str(path))


def load_score_records(results_dir: Path, profile: str | None = None) -> LoadedRecords:
    """All valid score records of a results folder (optionally of one profile), sorted by key; bad files apart."""
    loaded = LoadedRecords()
    for path in sorted((Path(results_dir) / SCORES_FOLDER).glob(f"*{RECORD_SUFFIX}")):
        try:
            record = read_score_record(path)
        except ScoreRecordError as e:
            loaded.problems.append(str(e))
            continue
        if profile is None or record["profile"] == profile:
            loaded.records.append(record)
    loaded.records.sort(key=lambda r: r["key"])
    return loaded
