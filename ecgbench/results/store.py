"""One JSON file per cell under a results directory, written atomically; readers skip what they cannot trust.

Each stored record carries the digest of its content (``schema.content_digest``), and its test metrics must be
those of its own stored predictions (``recheck``): a record edited by hand, even resealed, is rejected with its
file named. A file is named by its cell and its configuration (``configuration``). One folder holds one record
per cell and configuration: a second file of both (say ``X (copy).json``) would be averaged into the
leaderboard, so ``load_records`` refuses the folder, naming both.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ecgbench.atomic import atomic_write_bytes, describe_write_error
from ecgbench.results.configuration import record_tag
from ecgbench.results.recheck import check_metrics
from ecgbench.results.schema import ResultRecordError, finite_or_none, sealed, validate_record

__all__ = ["RECORD_SUFFIX", "RecordWriteError", "LoadedRecords", "finite_or_none", "record_path", "write_record",
           "read_record", "load_records", "profiles_in", "describe_write_error", "read_json", "write_json",
           "check_document"]

RECORD_SUFFIX = ".json"


class RecordWriteError(OSError):
    """A record that could not be written (full or read-only disk), naming the file and the cause."""

    def __init__(self, message: str, error_number: int | None = None) -> None:
        super().__init__(message)
        self.errno = error_number


def record_path(results_dir: Path, file_stem: str) -> Path:
    return Path(results_dir) / f"{file_stem}{RECORD_SUFFIX}"


def read_json(path: Path, what: str, error: type[Exception]) -> object:
    """The parsed JSON of ``path``; an unreadable or non-JSON file raises ``error`` naming the file and ``what``
    it should have been (result record, score record, saved run)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"{path}: unreadable {what} ({e})") from e


def check_document(document: object, where: str, error: type[Exception], version_key: str, version: int,
                   keys: frozenset[str]) -> dict:
    """``document`` if it is a JSON object of schema ``version`` with exactly ``keys``; else ``error`` naming
    ``where`` and what is wrong (stored documents are strict: an unknown key is as wrong as a missing one)."""
    if not isinstance(document, dict):
        raise error(f"{where}: not a JSON object")
    if document.get(version_key) != version:
        raise error(f"{where}: {version_key} {document.get(version_key)!r}, expected {version}")
    unknown, missing = set(document) - keys, keys - set(document)
    if unknown or missing:
        raise error(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return document


def write_json(path: Path, document: object, what: str, compact: bool = False) -> None:
    """Write ``document`` (NaN as null) atomically; a failed write (ENOSPC, EROFS, ...) raises
    ``RecordWriteError`` naming the file and ``what`` it is."""
    layout = {"separators": (",", ":")} if compact else {"indent": 1}
    text = json.dumps(finite_or_none(document), sort_keys=True, allow_nan=False, **layout)
    try:
        atomic_write_bytes(path, text.encode())
    except OSError as e:
        raise RecordWriteError(f"cannot write {what} {describe_write_error(path, e)}", e.errno) from e


def write_record(results_dir: Path, file_stem: str, record: dict) -> dict:
    """Validate, seal with its content digest and atomically write one record; return the record as stored.

    A killed writer leaves the previous file or none; a failed write (ENOSPC, EROFS, ...) raises
    ``RecordWriteError`` naming the record's path.
    """
    validate_record(record, file_stem)
    stored = sealed(record)
    write_json(record_path(results_dir, file_stem), stored, "result record")
    return stored


def read_record(path: Path) -> dict:
    """Load and validate one record; ``ResultRecordError`` names the file when it is corrupt, foreign or edited."""
    record = validate_record(read_json(path, "result record", ResultRecordError), str(path), stored=True)
    check_metrics(record, str(path))
    return record


@dataclass
class LoadedRecords:
    records: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _load_all(results_dir: Path) -> tuple[list[tuple[Path, dict]], list[str]]:
    found, problems = [], []
    for path in sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}")):
        try:
            found.append((path, read_record(path)))
        except ResultRecordError as e:
            problems.append(str(e))
    return found, problems


def _duplicate_cells(found: list[tuple[Path, dict]]) -> list[str]:
    """One line per cell (of one profile and configuration) stored in more than one file, naming every file."""
    files: dict[tuple[str, str, str], list[Path]] = {}
    for path, record in found:
        files.setdefault((record["profile"], record["key"], record_tag(record)), []).append(path)
    return [f"cell {key} (profile {profile}, configuration {tag}) is stored {len(paths)} times: "
            + ", ".join(map(str, paths)) for (profile, key, tag), paths in sorted(files.items()) if len(paths) > 1]


def load_records(results_dir: Path, profile: str | None = None) -> LoadedRecords:
    """All valid records of a directory (optionally of one profile), sorted by key; corrupt files listed apart.

    Two files of one cell are a ``ResultRecordError`` naming both: neither may be chosen (or averaged) silently.
    """
    found, problems = _load_all(results_dir)
    if profile is not None:
        found = [(path, record) for path, record in found if record["profile"] == profile]
    duplicates = _duplicate_cells(found)
    if duplicates:
        raise ResultRecordError(f"{results_dir}: " + "; ".join(duplicates) + "; keep one file per cell and "
                                "configuration (a file named KEY.json was written before file names carried the "
                                "configuration's tag, KEY.TAG.json: delete it once the cell has the other)")
    found.sort(key=lambda item: item[1]["key"])
    return LoadedRecords([record for _, record in found], problems)


def profiles_in(results_dir: Path) -> dict[str, int]:
    """How many record files of each profile a folder holds, read cheaply (no check: the readers do that)."""
    counts: dict[str, int] = {}
    for path in sorted(Path(results_dir).glob(f"*{RECORD_SUFFIX}")):
        try:
            profile = json.loads(path.read_text()).get("profile")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(profile, str):
            counts[profile] = counts.get(profile, 0) + 1
    return counts



def other_profiles_problem(results_dir: Path, profile: str) -> str | None:
    """Why a run of ``profile`` may not write into ``results_dir`` (it holds another profile's records, whose
    leaderboard and figures beside it the run would replace), or None when it may."""
    others = {name: n for name, n in profiles_in(results_dir).items() if name != profile}
    if not others:
        return None
    held = ", ".join(f"{n} of profile {name}" for name, n in sorted(others.items()))
    return (f"{results_dir} holds records of another profile ({held}); a run of profile {profile} there would "
            f"replace their leaderboard and figures in {Path(results_dir).parent} and mix the two in it: give "
            "this profile its own results folder")
