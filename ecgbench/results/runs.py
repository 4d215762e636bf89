"""Saved runs: the records of a run frozen into one versioned JSON file, as pytest-benchmark saves a session.

Layout (like pytest-benchmark's ``.benchmarks/<machine>/<NNNN>_<name>.json``)::

    <root>/<machine-id>/<NNNN>_<name>.json      root default: .ecgbench/runs (relative to the working folder)

``NNNN`` counts up per machine folder. A file holds (run schema 1):
  run_schema_version  int
  name, number, machine, created (ISO-8601 UTC), source (the results folder or "records")
  saved_by            {ecgbench, code_digest, commit, dirty} of the process that saved the file
  records             every record (schema in ``ecgbench.results.schema``): cells, metrics, test predictions,
                      provenance and, in ``identity.code_digest``, the code that made each one
A run is named on the command line by its file path, a results folder, its number or its name (the newest
run of that name).
"""
from __future__ import annotations

import datetime as dt
import platform
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tabulate import tabulate

from ecgbench import __version__
from ecgbench.codeid import code_identity
from ecgbench.locks import host_lock
from ecgbench.provenance import utc_now
from ecgbench.results.schema import ResultRecordError, validate_record
from ecgbench.results.store import check_document, load_records, read_json, write_json

RUN_SCHEMA_VERSION = 1
RUN_KEYS = frozenset({"run_schema_version", "name", "number", "machine", "created", "source", "saved_by",
                      "records"})
DEFAULT_RUNS_DIR = Path(".ecgbench") / "runs"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FILE_RE = re.compile(r"(?P<number>\d{4,})_(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\.json")


class RunError(ValueError):
    """A saved run that cannot be written, found or trusted; the message names the file or the name."""


@dataclass(frozen=True)
class SavedRun:
    """The records of one run; ``path``/``number``/``machine`` are None for a results folder read in place."""

    name: str
    records: list[dict]
    source: str
    number: int | None = None
    machine: str | None = None
    created: str | None = None
    saved_by: dict | None = None
    path: Path | None = None

    @property
    def label(self) -> str:
        """How reports name the run: ``0003_baseline`` or the results folder."""
        return f"{self.number:04d}_{self.name}" if self.number is not None else self.source


@dataclass(frozen=True)
class RunInfo:
    """One saved run file, described from its name and size alone (the file itself may be large)."""

    path: Path
    machine: str
    number: int
    name: str
    size_bytes: int
    modified: str


def machine_id() -> str:
    """The machine folder of this host, as pytest-benchmark names it: ``Linux-x86_64-CPython-3.11``."""
    version = ".".join(platform.python_version_tuple()[:2])
    return f"{platform.system()}-{platform.machine()}-{platform.python_implementation()}-{version}"


def check_name(name: str) -> str:
    """A name safe in a file name and never mistaken for a run number; ``RunError`` otherwise."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.isdigit():
        raise RunError(f"run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                       "or digit, and not only digits (those name run numbers)")
    return name


def autosave_name() -> str:
    """The name ``--ecg-autosave`` gives a run, as pytest-benchmark does: commit, UTC time, ``_dirty`` if so."""
    identity = code_identity()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{identity.commit}_{stamp}" + ("_dirty" if identity.dirty else "")


def _unique(records: list[dict], where: str) -> list[dict]:
    """The records sorted by key; a key twice is an error (which of the two would a comparison use?)."""
    duplicates = sorted(key for key, n in Counter(r["key"] for r in records).items() if n > 1)
    if duplicates:
        raise RunError(f"{where}: cells recorded more than once: {', '.join(duplicates)}")
    return sorted(records, key=lambda r: r["key"])


def folder_run(results_dir: Path) -> SavedRun:
    """A results folder as an unsaved run; a corrupt or foreign record file is an error naming it."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise RunError(f"{results_dir}: no such results folder")
    loaded = load_records(results_dir)
    if loaded.problems:
        raise RunError(f"{results_dir}: untrusted record files:\n  " + "\n  ".join(loaded.problems))
    if not loaded.records:
        raise RunError(f"{results_dir}: no result records (*.json) in this folder")
    return SavedRun(name=results_dir.name, records=_unique(loaded.records, str(results_dir)),
                    source=str(results_dir))


def as_run(source: SavedRun | Path | str | Iterable[dict]) -> SavedRun:
    """A saved run as it is, a results folder or saved-run file by path, or records in memory."""
    if isinstance(source, SavedRun):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise RunError(f"{path}: no such results folder or saved run file")
        return folder_run(path) if path.is_dir() else load_run_file(path)
    records = [validate_record(r, f"records[{i}]") for i, r in enumerate(source)]
    return SavedRun(name="records", records=_unique(records, "records"), source="records")


def list_runs(root: Path = DEFAULT_RUNS_DIR) -> list[RunInfo]:
    """Every saved run under ``root``, by machine then number; files not named ``NNNN_name.json`` are skipped."""
    runs = []
    for machine_dir in sorted(p for p in Path(root).glob("*") if p.is_dir()):
        for path in machine_dir.glob("*.json"):
            if match := FILE_RE.fullmatch(path.name):
                stat = path.stat()
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.timezone.utc).isoformat(timespec="seconds")
                runs.append(RunInfo(path, machine_dir.name, int(match["number"]), match["name"], stat.st_size,
                                    modified))
    return sorted(runs, key=lambda r: (r.machine, r.number))


def runs_table(runs: list[RunInfo]) -> str:
    """The table ``ecgbench runs`` prints."""
    if not runs:
        return "no saved runs"
    rows = [[r.machine, f"{r.number:04d}", r.name, f"{r.size_bytes / 2**20:.1f}", r.modified, str(r.path)]
            for r in runs]
    return tabulate(rows, headers=["machine", "number", "name", "MiB", "saved (UTC)", "path"], tablefmt="simple",
                    disable_numparse=True)


def save_run(source: SavedRun | Path | str | Iterable[dict], name: str, root: Path = DEFAULT_RUNS_DIR,
             machine: str | None = None) -> SavedRun:
    """Freeze the records of ``source`` (see ``as_run``) as the next ``NNNN_name.json`` of the machine folder."""
    check_name(name)
    run = as_run(source)
    if not run.records:
        raise RunError(f"{run.source}: no records to save as run {name!r}")
    machine = machine or machine_id()
    folder = Path(root) / machine
    folder.mkdir(parents=True, exist_ok=True)
    with host_lock(folder):  # two saves on one host must not take the same number
        number = 1 + max((r.number for r in list_runs(root) if r.machine == machine), default=0)
        identity = code_identity()
        saved = SavedRun(name=name, records=run.records, source=run.source, number=number, machine=machine,
                         created=utc_now(), path=folder / f"{number:04d}_{name}.json",
                         saved_by={"ecgbench": __version__, **identity.as_dict()})
        document = {"run_schema_version": RUN_SCHEMA_VERSION, "name": name, "number": number, "machine": machine,
                    "created": saved.created, "source": saved.source, "saved_by": saved.saved_by,
                    "records": saved.records}
        write_json(saved.path, document, "saved run", compact=True)
    return saved


def load_run_file(path: Path) -> SavedRun:
    """Load and validate one saved run; ``RunError`` names the file and what is wrong."""
    path = Path(path)
    document = check_document(read_json(path, "saved run", RunError), str(path), RunError, "run_schema_version",
                              RUN_SCHEMA_VERSION, RUN_KEYS)
    for key, kind in (("name", str), ("number", int), ("machine", str), ("created", str), ("source", str),
                      ("saved_by", dict), ("records", list)):
        if not isinstance(document[key], kind) or isinstance(document[key], bool):
            raise RunError(f"{path}: {key} must be a {kind.__name__}, got {document[key]!r:.60}")
    try:
        records = [validate_record(r, f"{path}: records[{i}]") for i, r in enumerate(document["records"])]
    except ResultRecordError as e:
        raise RunError(str(e)) from e
    return SavedRun(name=document["name"], records=_unique(records, str(path)), source=document["source"],
                    number=document["number"], machine=document["machine"], created=document["created"],
                    saved_by=document["saved_by"], path=path)


def find_run(spec: str, root: Path = DEFAULT_RUNS_DIR) -> Path:
    """The saved run file ``spec`` names: ``NNNN_name``, a number or a name (its newest run), in any machine."""
    runs = list_runs(root)
    if spec.isdigit():
        matches = [r for r in runs if r.number == int(spec)]
    elif FILE_RE.fullmatch(f"{spec}.json"):
        matches = [r for r in runs if r.path.stem == spec]
    else:
        named = [r for r in runs if r.name == spec]
        newest = {r.machine: r for r in named}  # runs are sorted by number within a machine
        matches = list(newest.values())
    if len(matches) == 1:
        return matches[0].path
    if matches:
        raise RunError(f"run {spec!r} is ambiguous under {root}: {', '.join(str(r.path) for r in matches)}; "
                       "give the file path")
    known = ", ".join(f"{r.machine}/{r.path.stem}" for r in runs[-10:]) or "none"
    raise RunError(f"no saved run {spec!r} under {root} (saved runs: {known})")


def resolve_run(spec: str | Path, root: Path = DEFAULT_RUNS_DIR) -> SavedRun:
    """The run a user names: a results folder, a saved-run file, or a saved run's number or name (under ``root``).

    A path that exists wins over a saved run of the same name.
    """
    path = Path(spec)
    if path.exists():
        return as_run(path)
    return load_run_file(find_run(str(spec), root))
