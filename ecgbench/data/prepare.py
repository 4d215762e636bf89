"""Prepare a real dataset once: index, label, read every record in parallel, split, and publish the arrays
atomically in a cache that later calls memory-map.

The cache folder ``prepared/<name>-<key>/`` is keyed by everything that changes its content: the manifest,
the preprocessing rules (part of the manifest), the loader's version, this module's version, ``limit`` and the
identity of the source files (relative path, size and mtime of every file). It is written into a temporary
sibling and renamed into place, so a reader sees all of it or nothing; an entry that does not load in full is
reported and rebuilt, never used.

A partial copy (fewer records than the manifest expects, identifying files that differ) is prepared with a
warning: the records its index lists are read. A record the index lists whose files are absent is an error
unless ``allow_missing``, and then it is dropped and counted; a damaged record likewise unless the manifest
says ``bad_records = "skip"``. A record that reads cleanly but is suspect (a flat lead, clipping, padding,
cropping: ``quality.py``) is kept, dropped or refused as the manifest's ``[quality]`` rules say, and listed in
``info.json`` under ``quality`` either way. Every kept record is fingerprinted (``fingerprints.npz``,
``fingerprint.py``); one recording held by two records is refused or counted (``duplicates.py``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np

from ecgbench.atomic import atomic_write_bytes, naming_write_errors, replace_folder
from ecgbench.data.dataset import N_LEADS, N_SAMPLES, PreparedDataset, array_digest
from ecgbench.data.duplicates import Duplicates, merged_groups, resolve_duplicates, same_file_key
from ecgbench.data.fetch import verify_copy
from ecgbench.data.fingerprint import find_matches, fingerprint_signals, load_fingerprints, save_fingerprints
from ecgbench.data.labels import LabelMap
from ecgbench.data.loaders import EcgRecordError, Loader, MissingFileError, RecordEntry, check_unique, loader_class
from ecgbench.data.manifest import DataError, Manifest
from ecgbench.data.preprocess import SignalError, model_input, standard_leads
from ecgbench.data.quality import QualityReport, quality_flags
from ecgbench.data.registry import get_manifest
from ecgbench.data.splits import assign_splits
from ecgbench.inputs import DEFAULT_INPUT, InputSpec
from ecgbench.locks import build_once

PREPARE_VERSION = "3"  # 2: info.json holds the quality flags; 3: the signals' sha256 (verified on open),
# fingerprints.npz and the duplicate rule
CHUNK_RECORDS = 32  # records per task sent to a worker process
PARALLEL_MIN_RECORDS = 1000  # below this, starting worker processes (~2 s each) costs more than it saves
CACHE_WHAT = "the prepared-data cache"  # how write errors name what they failed to write
_META = ("labels", "classes", "record_ids", "patient_ids", "split")


class IncompleteCopyWarning(UserWarning):
    """The copy on disk is not the complete release the manifest describes; it is prepared anyway."""


@dataclass(frozen=True)
class Prepared:
    dataset: PreparedDataset
    folder: Path
    info: dict
    built: bool  # False: an existing cache entry was used


def default_cache_dir() -> Path:
    """``$ECGBENCH_CACHE``, else ``~/.cache/ecgbench``: generated and prepared data for every command. A
    variable naming a file is an error naming the variable (else every cell fails on a path it never names)."""
    value = os.environ.get("ECGBENCH_CACHE")
    if value and Path(value).exists() and not Path(value).is_dir():
        raise DataError(f"ECGBENCH_CACHE={value}: is a file, not a folder (the variable names the cache of "
                        "generated and prepared data: point it at a folder, or unset it for ~/.cache/ecgbench)")
    return Path(value or Path.home() / ".cache" / "ecgbench")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


# ----------------------------------------------------------------------------------------------------------
# Cache identity and reading
# ----------------------------------------------------------------------------------------------------------
def source_identity(folder: Path) -> str:
    """sha256 over (relative path, size, mtime) of every file below ``folder`` except hidden ones."""
    h = hashlib.sha256()
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            stat = os.stat(os.path.join(directory, name))
            h.update(f"{os.path.relpath(os.path.join(directory, name), folder)}\0{stat.st_size}\0"
                     f"{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(manifest: Manifest, loader: type[Loader], folder: Path, limit: int | None) -> str:
    parts = [manifest.digest(), loader.kind, loader.version, PREPARE_VERSION, str(limit), source_identity(folder)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class CacheError(DataError):
    pass


def read_prepared(folder: Path, name: str, spec: InputSpec | None = None) -> Prepared:
    """A prepared cache entry, fully checked; raises ``CacheError`` saying what is wrong with it.

    ``spec``: the input its signals are at (None: the study's 100 Hz x 10 s, what the manifest prepares)."""
    spec = spec or DEFAULT_INPUT
    try:
        info = json.loads((folder / "info.json").read_text())
        signals = np.load(folder / "signals.npy", mmap_mode="r")
        with np.load(folder / "meta.npz", allow_pickle=False) as meta:
            fields = {key: meta[key] for key in _META}
        if signals.shape != (info["records"], spec.n_samples, len(spec.leads)):
            raise ValueError(f"signals.npy has shape {signals.shape}, info.json says {info['records']} records "
                             f"at {spec.describe()}")
        _verify(signals, fields, info)
        dataset = PreparedDataset(name=name, signals=signals, labels=fields["labels"],
                                  classes=tuple(fields["classes"].tolist()), record_ids=fields["record_ids"],
                                  patient_ids=fields["patient_ids"], split=fields["split"], source="real",
                                  digest=info["digest"], input=spec,
                                  fingerprints=load_fingerprints(folder / "fingerprints.npz"))
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise CacheError(f"{folder}: {type(e).__name__}: {e}") from None
    return Prepared(dataset, folder, info, built=False)


def signals_sha256(signals: np.ndarray) -> str:
    """sha256 of the signals' bytes in row order, read in blocks (a memory map is never loaded whole)."""
    h = hashlib.sha256()
    for start in range(0, len(signals), 1024):
        h.update(memoryview(np.ascontiguousarray(signals[start:start + 1024])).cast("B"))
    return h.hexdigest()


def _verify(signals: np.ndarray, fields: dict[str, np.ndarray], info: dict) -> None:
    """The entry is what was prepared: the signals hash to the sha256 in info.json and, with the metadata,
    to its digest. Every open pays one pass over the signals (PTB-XL's 1.05 GB: about 2 s at the 0.5 GB/s
    measured on a loaded core; see the README); the runner opens a dataset once per process."""
    if signals_sha256(signals) != info["signals_sha256"]:
        raise ValueError("signals.npy does not match the sha256 in info.json: it changed after it was prepared")
    if array_digest(*(fields[key] for key in _META), np.array(info["signals_sha256"])) != info["digest"]:
        raise ValueError("meta.npz does not match the digest in info.json: it changed after it was prepared")


def _cached(folder: Path, name: str, spec: InputSpec, report: bool) -> Prepared | None:
    if not folder.exists():
        return None
    try:
        return read_prepared(folder, name, spec)
    except CacheError as e:
        if report:
            warnings.warn(f"prepared cache is unusable, rebuilding it: {e}", stacklevel=3)
        return None


# ----------------------------------------------------------------------------------------------------------
# Reading records
# ----------------------------------------------------------------------------------------------------------
Read = tuple[np.ndarray, tuple[str, ...]]  # a record's model input and its quality flags


def _read_chunk(loader_type: type[Loader], folder: Path, manifest: Manifest, entries: list[RecordEntry]
                ) -> list[Read | EcgRecordError]:
    """Model inputs and quality flags of ``entries`` (in a worker process); a record that fails yields its
    ``EcgRecordError``."""
    out: list[Read | EcgRecordError] = []
    with loader_type(folder, manifest) as loader:
        for entry in entries:
            try:
                raw = loader.read(entry)
                leads = standard_leads(raw.signal, raw.channels, manifest.signal)
                x = model_input(leads, raw.rate_hz, manifest.signal, manifest.preprocess)
                clipped = bool({c.lower() for c in raw.clipped} & {lead.lower() for lead in manifest.signal.leads})
                out.append((x, quality_flags(leads, raw.rate_hz, clipped, manifest)))
            except SignalError as e:
                out.append(EcgRecordError(entry.record_id, str(e)))
            except EcgRecordError as e:
                out.append(e)
    return out


def worker_count(requested: int, n_records: int) -> int:
    """Processes worth starting: one (the caller itself) for few records."""
    return requested if n_records >= PARALLEL_MIN_RECORDS else 1


def read_records(loader_type: type[Loader], folder: Path, manifest: Manifest, entries: list[RecordEntry],
                 workers: int, progress: bool | None) -> Iterator[tuple[RecordEntry, Read | EcgRecordError]]:
    """Each entry with its model input and flags, or its error, in index order whatever the number of workers."""
    from tqdm import tqdm

    chunks = [entries[i:i + CHUNK_RECORDS] for i in range(0, len(entries), CHUNK_RECORDS)]
    with tqdm(total=len(entries), unit="rec", desc=f"prepare {manifest.name}",
              disable=None if progress is None else not progress) as bar:
        if workers <= 1:
            for chunk in chunks:
                results = _read_chunk(loader_type, folder, manifest, chunk)
                bar.update(len(chunk))
                yield from zip(chunk, results)
            return
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_read_chunk, loader_type, folder, manifest, chunk) for chunk in chunks]
            try:
                for chunk, future in zip(chunks, futures):
                    results = future.result()
                    bar.update(len(chunk))
                    yield from zip(chunk, results)
            finally:  # a record error under bad_records = "error" stops the run: drop the queued work
                for future in futures:
                    future.cancel()


class _Drops:
    """Records left out and why; raises instead where the manifest (or ``allow_missing``) does not allow it."""

    def __init__(self, manifest: Manifest, allow_missing: bool) -> None:
        self.manifest, self.allow_missing = manifest, allow_missing
        self.records: list[dict[str, str]] = []

    def add(self, record_id: str, reason: str) -> None:
        self.records.append({"record_id": record_id, "reason": reason})

    def bad(self, error: EcgRecordError) -> None:
        missing = isinstance(error, MissingFileError)  # a partial copy: only allow_missing skips it
        if (self.allow_missing if missing else self.manifest.bad_records == "skip"):
            self.add(error.record_id, ("missing file: " if missing else "bad record: ") + error.reason)
            return
        hint = (" (a partial copy? allow_missing / --allow-missing skips such records and counts them)" if missing
                else f" (the {self.manifest.name} manifest has bad_records = \"error\"; \"skip\" skips such records "
                     "and counts them)")
        raise type(error)(error.record_id, error.reason + hint)

    def by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.records:
            counts[item["reason"]] = counts.get(item["reason"], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _select(manifest: Manifest, entries: list[RecordEntry], drops: _Drops
            ) -> tuple[list[RecordEntry], list[np.ndarray]]:
    """Entries to read and their label rows, after the manifest's unknown / unmapped rules."""
    label_map = LabelMap(manifest.classes, manifest.labels)
    kept, rows = [], []
    for entry in entries:
        labelled = label_map(entry.labels)
        if labelled.unknown:
            reason = f"unknown source label(s) {list(labelled.unknown)}"
            if manifest.labels.unknown == "error":
                raise EcgRecordError(entry.record_id, f"{reason}: add them to labels.map or labels.ignore of the "
                                                   f"{manifest.name} manifest, or set labels.unknown = \"skip\"")
            drops.add(entry.record_id, reason)
        elif not labelled.row.any() and manifest.labels.unmapped == "drop":
            drops.add(entry.record_id, "no class of the manifest")
        else:
            kept.append(entry)
            rows.append(labelled.row)
    return kept, rows


# ----------------------------------------------------------------------------------------------------------
# Building an entry
# ----------------------------------------------------------------------------------------------------------
def _build(manifest: Manifest, loader_type: type[Loader], source: Path, out: Path, key: str, limit: int | None,
           workers: int, allow_missing: bool, progress: bool | None) -> None:
    started = time.perf_counter()
    with loader_type(source, manifest) as loader:
        index = loader.index()
        check_unique(index.entries, same_file_key(loader))
    copy = verify_copy(manifest, source, index=index)
    if not copy.ok:
        warnings.warn(f"{source} is not the complete {manifest.name} release the manifest describes ("
                      + "; ".join(copy.problems()[:3]) + "); preparing the records it holds", IncompleteCopyWarning,
                      stacklevel=3)
    drops = _Drops(manifest, allow_missing)
    for problem in index.problems:
        drops.bad(problem)
    entries, rows = _select(manifest, index.entries, drops)
    entries, rows = entries[:limit], rows[:limit]
    workers = worker_count(workers, len(entries))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        quality = QualityReport(manifest)
        kept, signals_sha = _write_signals(tmp, loader_type, source, manifest, entries, workers, progress, drops,
                                           quality)
        entries, labels = [entries[i] for i in kept], np.stack([rows[i] for i in kept])
        entries, labels, split, duplicates, signals_sha = _screen_duplicates(tmp, manifest, entries, labels,
                                                                             signals_sha, drops)
        meta = _write_meta(tmp, manifest, entries, labels, split)
        seconds = time.perf_counter() - started
        info = {
            "name": manifest.name, "title": manifest.title, "version": manifest.version, "source": str(source),
            "cache_key": key, "digest": array_digest(*meta, np.array(signals_sha)), "signals_sha256": signals_sha,
            "manifest_digest": manifest.digest(), "loader": f"{loader_type.kind} v{loader_type.version}",
            "prepare_version": PREPARE_VERSION, "limit": limit, "records": len(entries),
            "indexed": len(index.entries) + len(index.problems), "without_class": int((labels.sum(1) == 0).sum()),
            "dropped": drops.records, "dropped_by_reason": drops.by_reason(), "quality": quality.info(),
            "duplicates": duplicates.info(),
            "copy_problems": copy.problems(),
            "notes": index.notes, "scaling": manifest.preprocess.scaling, "workers": workers,
            "seconds": round(seconds, 3), "records_per_second": round(len(entries) / seconds, 1),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        with naming_write_errors(tmp / "info.json", CACHE_WHAT):
            atomic_write_bytes(tmp / "info.json", json.dumps(info, indent=1).encode())
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_signals(tmp: Path, loader_type: type[Loader], source: Path, manifest: Manifest,
                   entries: list[RecordEntry], workers: int, progress: bool | None, drops: _Drops,
                   quality: QualityReport) -> tuple[list[int], str]:
    """``tmp/signals.npy`` of the entries that read cleanly and pass the quality rules; their positions and
    the arrays' sha256."""
    partial = tmp / "signals.partial.npy"
    with naming_write_errors(partial, CACHE_WHAT):
        signals = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32,
                                            shape=(len(entries), N_SAMPLES, N_LEADS))
    kept: list[int] = []
    sha = hashlib.sha256()
    for i, (entry, result) in enumerate(read_records(loader_type, source, manifest, entries, workers, progress)):
        if isinstance(result, EcgRecordError):
            drops.bad(result)
            continue
        x, flags = result
        dropped = quality.admit(entry.record_id, flags)
        if dropped:
            drops.add(entry.record_id, dropped)
            continue
        signals[len(kept)] = x
        sha.update(x.tobytes())
        kept.append(i)
    if not kept:
        raise DataError(f"{source}: no record of {manifest.name} is left to prepare (dropped: {drops.by_reason()})")
    with naming_write_errors(tmp / "signals.npy", CACHE_WHAT):
        _publish_signals(signals, len(kept), partial, tmp / "signals.npy")
    return kept, sha.hexdigest()


def _screen_duplicates(tmp: Path, manifest: Manifest, entries: list[RecordEntry], labels: np.ndarray,
                       signals_sha: str, drops: _Drops
                       ) -> tuple[list[RecordEntry], np.ndarray, np.ndarray, Duplicates, str]:
    """Fingerprint the kept records (``tmp/fingerprints.npz``) and split them, duplicates kept together; then
    the manifest's duplicate rule (``duplicates.py``). Returns the entries, labels and split left, the
    duplicates and the signals' sha256."""
    record_ids = np.array([e.record_id for e in entries])
    prints = fingerprint_signals(manifest.name, np.load(tmp / "signals.npy", mmap_mode="r"), record_ids)
    matches = find_matches(prints)
    split = assign_splits(manifest.split, labels, merged_groups(np.array([e.patient_id for e in entries]), matches),
                          merged_groups(record_ids, matches), [e.fold for e in entries],
                          [e.describe() for e in entries])
    duplicates = resolve_duplicates(manifest, matches, split, entries)
    if duplicates.dropped:
        for i in duplicates.dropped:
            drops.add(entries[i].record_id, "duplicate: the same recording as an earlier record of its split")
        keep = np.setdiff1d(np.arange(len(entries)), duplicates.dropped)
        signals_sha = _keep_rows(tmp / "signals.npy", keep)
        entries, labels, split, prints = [entries[i] for i in keep], labels[keep], split[keep], prints.subset(keep)
    with naming_write_errors(tmp / "fingerprints.npz", CACHE_WHAT):
        save_fingerprints(prints, tmp / "fingerprints.npz")
    return entries, labels, split, duplicates, signals_sha


def _keep_rows(path: Path, keep: np.ndarray) -> str:
    """``path`` (signals.npy) reduced to the rows ``keep``; the sha256 of the rows left."""
    signals = np.load(path, mmap_mode="r")
    kept = np.ascontiguousarray(signals[keep])
    del signals
    sha = hashlib.sha256()
    for x in kept:
        sha.update(x.tobytes())
    np.save(path, kept)
    return sha.hexdigest()


def _write_meta(tmp: Path, manifest: Manifest, entries: list[RecordEntry], labels: np.ndarray, split: np.ndarray
                ) -> tuple[np.ndarray, ...]:
    """``tmp/meta.npz``: labels, classes, ids and the split of the kept records (returned in ``_META`` order)."""
    record_ids = np.array([e.record_id for e in entries])
    patient_ids = np.array([e.patient_id for e in entries])
    meta = dict(labels=labels, classes=np.array(manifest.classes), record_ids=record_ids, patient_ids=patient_ids,
                split=split)
    with naming_write_errors(tmp / "meta.npz", CACHE_WHAT):
        np.savez(tmp / "meta.npz", **meta)
    return tuple(meta[key] for key in _META)


def _publish_signals(signals: np.memmap, n: int, partial: Path, final: Path) -> None:
    """The first ``n`` rows of the memory map as ``final``: renamed when all rows are used, else copied."""
    signals.flush()
    if n == len(signals):
        os.replace(partial, final)
        return
    out = np.lib.format.open_memmap(final, mode="w+", dtype=np.float32, shape=(n, N_SAMPLES, N_LEADS))
    for start in range(0, n, 1024):
        out[start:start + 1024] = signals[start:min(start + 1024, n)]
    out.flush()
    partial.unlink()


# ----------------------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------------------
def prepare(name: str, root: Path, *, cache_dir: Path | None = None, limit: int | None = None,
            workers: int | None = None, allow_missing: bool = False, manifest: Manifest | None = None,
            progress: bool | None = None) -> Prepared:
    """The prepared dataset ``name`` from ``root/name``, built once and cached (a second call reads the cache).

    ``limit``: only the first N usable records (a quick look; a different cache entry). ``manifest``: use this
    one instead of the registered one (tests, experiments). ``progress``: None shows a bar on a terminal.
    """
    manifest = manifest or get_manifest(name)
    if manifest.name != name:
        raise DataError(f"manifest of {manifest.name!r} given for dataset {name!r}")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of records, got {limit}")
    source = Path(root) / name
    if not source.is_dir():
        raise DataError(f"{source}: no such folder; put the {name} files there (ecgbench data fetch {name} --root "
                        f"{root} downloads them, or tells where to get them)")
    loader_type = loader_class(manifest.format.kind)
    key = cache_key(manifest, loader_type, source, limit)
    out = Path(cache_dir or default_cache_dir()) / "prepared" / f"{name}-{key}"
    def build_and_read() -> Prepared:
        _build(manifest, loader_type, source, out, key, limit, workers or default_workers(), allow_missing,
               progress)
        built = read_prepared(out, name, manifest.input)
        return Prepared(built.dataset, built.folder, built.info, built=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    # One builder per entry across processes (pytest-xdist workers); only the check under the lock reports.
    return build_once(out, lambda: _cached(out, name, manifest.input, report=False), build_and_read,
                      find_again=lambda: _cached(out, name, manifest.input, report=True))[0]


def load(name: str, root: Path, *, cache_dir: Path | None = None, **options) -> PreparedDataset:
    """``ecgbench.data.load``: the prepared dataset ``name`` from ``root/name`` (prepared first if needed).

    ``options`` are those of ``prepare`` (limit, workers, allow_missing, manifest, progress).
    """
    return prepare(name, root, cache_dir=cache_dir, **options).dataset
