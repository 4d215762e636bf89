"""A real dataset prepared at a model's own input spec (another rate, length or lead order).

Why a second step rather than a second ``prepare``: records, splits and subsets must never depend on the model.
So the dataset is first prepared as its manifest says (which decides what is kept and how it is split), and
the spec's entry reads exactly those records again from their files, at the spec's rate and length, with the
manifest's crop, pad and scaling rules, keeping the first entry's labels, ids and split. A record that read
cleanly the first time but not at the spec is an error naming it, never a silently smaller dataset.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ecgbench.atomic import atomic_write_bytes, replace_folder
from ecgbench.data.dataset import array_digest
from ecgbench.data.loaders import EcgRecordError, loader_class
from ecgbench.data.manifest import DataError, Manifest
from ecgbench.data.prepare import (
    CacheError,
    Prepared,
    default_workers,
    prepare,
    read_prepared,
    read_records,
    worker_count,
)
from ecgbench.data.registry import get_manifest
from ecgbench.inputs import STANDARD_LEADS, InputSpec
from ecgbench.locks import host_lock

SPEC_VERSION = "1"


def prepare_at(name: str, root: Path, spec: InputSpec, *, cache_dir: Path | None = None,
               manifest: Manifest | None = None, workers: int | None = None, progress: bool | None = None,
               **options) -> Prepared:
    """``prepare`` at ``spec``: the same records, labels and split, their signals at the spec's rate and length.

    ``options`` are ``prepare``'s (limit, allow_missing). The spec's entry sits beside the manifest's one,
    named by its cache key plus the spec's tag, so a changed source or manifest rebuilds both.
    """
    manifest = manifest or get_manifest(name)
    base = prepare(name, root, cache_dir=cache_dir, manifest=manifest, workers=workers, progress=progress,
                   **options)
    if spec == manifest.input:
        return base
    out = base.folder.with_name(f"{base.folder.name}-{spec.tag}")
    found = _cached(out, name, spec)
    if found is not None:
        return found
    with host_lock(out):
        found = _cached(out, name, spec)
        if found is not None:
            return found
        _build(base, manifest, Path(root) / name, out, spec, workers or default_workers(), progress)
    built = read_prepared(out, name, spec)
    return Prepared(built.dataset, built.folder, built.info, built=True)


def _cached(folder: Path, name: str, spec: InputSpec) -> Prepared | None:
    if not folder.exists():
        return None
    try:
        return read_prepared(folder, name, spec)
    except CacheError:
        return None  # rebuilt under the lock; a half-written entry never got its final name


def _build(base: Prepared, manifest: Manifest, source: Path, out: Path, spec: InputSpec, workers: int,
           progress: bool | None) -> None:
    loader_type = loader_class(manifest.format.kind)
    with loader_type(source, manifest) as loader:
        index = loader.index()
    by_id = {entry.record_id: entry for entry in index.entries}
    ids = base.dataset.record_ids.tolist()
    absent = [record_id for record_id in ids if record_id not in by_id]
    if absent:
        raise DataError(f"{source}: records {absent[:5]} of the prepared {manifest.name} ({base.folder}) are no "
                        f"longer indexed; cannot prepare them at {spec.describe()}")
    target = replace(manifest, preprocess=replace(manifest.preprocess, rate_hz=spec.rate_hz, window_s=spec.seconds))
    columns = [STANDARD_LEADS.index(lead) for lead in spec.leads]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        signals = np.lib.format.open_memmap(tmp / "signals.npy", mode="w+", dtype=np.float32,
                                            shape=(len(ids), spec.n_samples, len(columns)))
        sha = hashlib.sha256()
        entries = [by_id[record_id] for record_id in ids]
        for i, (entry, result) in enumerate(read_records(loader_type, source, target, entries,
                                                         worker_count(workers, len(ids)), progress)):
            if isinstance(result, EcgRecordError):
                raise DataError(f"{source}: record {entry.record_id} was prepared as the manifest says but fails "
                                f"at {spec.describe()}: {result.reason}")
            signals[i] = result[0][:, columns]
            sha.update(signals[i].tobytes())
        signals.flush()
        del signals
        for name in ("meta.npz", "fingerprints.npz"):  # the same records: their labels and their fingerprints
            shutil.copyfile(base.folder / name, tmp / name)
        d = base.dataset
        # the digest as read_prepared verifies it: the metadata and these signals' sha256 (which differs by spec)
        info = {**base.info, "input": spec.to_dict(), "based_on": base.info["cache_key"],
                "spec_version": SPEC_VERSION, "signals_sha256": sha.hexdigest(),
                "digest": array_digest(d.labels, np.array(d.classes), d.record_ids, d.patient_ids, d.split,
                                       np.array(sha.hexdigest()))}
        atomic_write_bytes(tmp / "info.json", json.dumps(info, indent=1).encode())
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
