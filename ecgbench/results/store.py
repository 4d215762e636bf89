"""One JSON file per cell under a results directory, written atomically; readers skip what they cannot trust."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ecgbench.atomic import atomic_write_bytes
from ecgbench.results.schema import ResultRecordError, validate_record

RECORD_SUFFIX = ".json"


def finite_or_none(obj):
    """JSON has no NaN: undefined numbers are stored as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def record_path(results_dir: Path, file_stem: str) -> Path:
    return Path(results_dir) / f"{file_stem}{RECORD_SUFFIX}"


def write_record(results_dir: Path, file_stem: str, record: dict) -> Path:
    """Validate and atomically write one record; a killed writer leaves the previous file or none."""
    validate_record(record, file_stem)
    path = record_path(results_dir, file_stem)
    text = json.dumps(finite_or_none(record), indent=1, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, text.encode())
    return path


def read_record(path: Path) -> dict:
    """Load and validate one record; ``ResultRecordError`` names the file when it is corrupt or foreign."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultRecordError(f"{path}: unreadable result record ({e})") from e
    return validate_record(record, str(path))


@dataclass
class LoadedRecords:
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_records(results_dir: Path, profile: str | None = None) -> LoadedRecords:
    """All valid records of a directory (optionally of one profile), sorted by key; corrupt files listed apart."""
    loaded = LoadedRecords()
    for path in sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}")):
        try:
            record = read_record(path)
        except ResultRecordError as e:
            loaded.problems.append(str(e))
            continue
        if profile is None or record["profile"] == profile:
            loaded.records.append(record)
    loaded.records.sort(key=lambda r: r["key"])
    return loaded
