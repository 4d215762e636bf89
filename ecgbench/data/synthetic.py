"""Synthetic 12-lead ECGs: a stand-in for each dataset of the study that needs no download.

Why: the benchmark must run on a fresh clone, and a transfer experiment needs sources that share physiology
but differ in how they were recorded and labelled. Every record comes from one model of the heart: a patient
has a cardiac dipole whose P, QRS, ST and T waves are smooth bumps of a 3-D vector (x left, y inferior,
z anterior), projected onto the 12 leads with the Dower lead vectors. Limb leads therefore obey Einthoven's
law, and each condition shows in the leads where it shows clinically (RBBB: R' in V1; inferior MI: Q waves in
II, III, aVF). The underlying conditions are shared; each stand-in maps them onto its own class list, has its
own prevalences and its own recording chain (noise, baseline wander, mains residue, gain): the domain shift.

Signals are float32 millivolts [n, 1000, 12], 10 s at 100 Hz, leads in ``LEADS`` order; a model that reads
another input gets the same records resampled (``load_synthetic``).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgbench.atomic import naming_write_errors, replace_folder
from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.data.dataset import N_LEADS, N_SAMPLES, PreparedDataset, array_digest
from ecgbench.data.fingerprint import fingerprint_signals, load_fingerprints, save_fingerprints
from ecgbench.data.respec import signals_at
from ecgbench.data.splits import stratified_split
from ecgbench.data.synthetic_heart import draw_heart
from ecgbench.data.synthetic_render import clean_record, recorded
from ecgbench.data.synthetic_standins import CLASS_CONDITIONS, CONDITIONS, EXCLUSIONS, STANDINS
from ecgbench.inputs import DEFAULT_INPUT, InputSpec
from ecgbench.locks import build_once

GENERATOR_VERSION = "2"  # 2: splits by the same patient-grouped stratified split as real data
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test

# ----------------------------------------------------------------------------------------------------------
# A cohort: patients, labels, splits
# ----------------------------------------------------------------------------------------------------------
def _seed_sequence(name: str, seed: int) -> np.random.SeedSequence:
    """Stable across processes and Python versions (unlike ``hash()``)."""
    digest = hashlib.sha256(f"ecgbench-synthetic:{GENERATOR_VERSION}:{name}:{seed}".encode()).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


def _patients_of_records(rng: np.random.Generator, n_records: int) -> np.ndarray:
    """Patient index of each record; most patients own one record, some own 2 or 3 (consecutive)."""
    counts = rng.choice([1, 2, 3], size=n_records, p=[0.8, 0.14, 0.06])
    return np.repeat(np.arange(n_records), counts)[:n_records]


def _draw_conditions(rng: np.random.Generator, prevalence: dict[str, float], n: int) -> np.ndarray:
    """Boolean [n, len(CONDITIONS)]: independent draws, then clinically exclusive pairs resolved."""
    p = np.array([prevalence.get(c, 0.0) for c in CONDITIONS])
    has = rng.random((n, len(CONDITIONS))) < p
    col = {c: i for i, c in enumerate(CONDITIONS)}
    for dominant, excluded in EXCLUSIONS:
        has[:, col[excluded]] &= ~has[:, col[dominant]]
    return has


def _labels(has: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Multi-hot uint8 labels of a dataset's classes from the underlying conditions."""
    col = {c: i for i, c in enumerate(CONDITIONS)}
    labels = np.zeros((len(has), len(classes)), dtype=np.uint8)
    for j, cls in enumerate(classes):
        if cls != "NORM":
            labels[:, j] = has[:, [col[c] for c in CLASS_CONDITIONS[cls]]].any(axis=1)
    if "NORM" in classes:
        labels[:, classes.index("NORM")] = labels.sum(axis=1) == 0
    return labels


@dataclass(frozen=True)
class _Cohort:
    signals: np.ndarray
    labels: np.ndarray
    patient: np.ndarray  # patient index of each record
    split: np.ndarray


def _simulate(name: str, n_records: int, seed: int, noise: bool = True) -> _Cohort:
    """The records of one stand-in; ``noise=False`` gives the clean signals (same hearts, same rhythms)."""
    if name not in STANDINS:
        raise ValueError(f"unknown synthetic dataset {name!r}; known: {sorted(STANDINS)}")
    if n_records < 1:
        raise ValueError(f"n_records must be positive, got {n_records}")
    profile = STANDINS[name]
    # independent streams, so that leaving the noise out changes nothing else
    cohort_rng, rhythm_rng, noise_rng, split_rng = map(np.random.default_rng, _seed_sequence(name, seed).spawn(4))
    patient = _patients_of_records(cohort_rng, n_records)
    has = _draw_conditions(cohort_rng, profile.prevalence, patient[-1] + 1)
    hearts = [draw_heart(cohort_rng, frozenset(c for c, present in zip(CONDITIONS, row) if present)) for row in has]
    signals = np.empty((n_records, N_SAMPLES, N_LEADS), dtype=np.float32)
    for i, p in enumerate(patient):
        signals[i] = clean_record(rhythm_rng, hearts[p])
        if noise:
            signals[i] = recorded(noise_rng, signals[i], profile.recording)
    labels = _labels(has, DATASET_CLASSES[name])[patient]
    split = stratified_split(labels, patient, SPLIT_FRACTIONS, seed=int(split_rng.integers(2**31)))
    return _Cohort(signals, labels, patient, split)


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------
def generate(name: str, n_records: int, seed: int) -> PreparedDataset:
    """The synthetic stand-in of dataset ``name``: same (name, n_records, seed), same bytes and digest."""
    cohort = _simulate(name, n_records, seed)
    digits = max(6, len(str(n_records - 1)))
    record_ids = np.array([f"{name}-{i:0{digits}d}" for i in range(n_records)])
    return PreparedDataset(
        name=name,
        signals=cohort.signals,
        labels=cohort.labels,
        classes=DATASET_CLASSES[name],
        record_ids=record_ids,
        patient_ids=np.array([f"{name}-p{p:0{digits}d}" for p in cohort.patient]),
        split=cohort.split,
        source="synthetic",
        digest=array_digest(cohort.signals, cohort.labels, cohort.split, np.array(GENERATOR_VERSION)),
        fingerprints=fingerprint_signals(name, cohort.signals, record_ids),
    )


def load_synthetic(name: str, n_records: int, seed: int, cache_dir: Path, spec: InputSpec = DEFAULT_INPUT
                   ) -> PreparedDataset:
    """``generate`` once per (name, n_records, seed, version), cached as files that later calls memory-map.

    Safe under pytest-xdist: one process generates under a file lock, the others wait and load. The cache
    entry is a folder renamed into place atomically, so a reader sees all of it or none; an entry that
    fails to load (e.g. truncated) is generated again rather than trusted. Another input ``spec`` is the same
    records resampled from the generated 100 Hz x 10 s (the stand-ins' source), cached beside them: the same
    record ids, labels and split, so every model's subsets are the same records.
    """
    folder = Path(cache_dir) / "synthetic" / f"{name}-n{n_records}-seed{seed}-v{GENERATOR_VERSION}"
    if spec != DEFAULT_INPUT:
        folder = folder.with_name(f"{folder.name}-{spec.tag}")

    def generate_and_read() -> PreparedDataset | None:
        _write_cache(folder, generate(name, n_records, seed) if spec == DEFAULT_INPUT else
                     _at_spec(load_synthetic(name, n_records, seed, cache_dir), spec))
        return _read_cache(folder, name, spec)

    folder.parent.mkdir(parents=True, exist_ok=True)  # the host lock is named after the folder's resolved path
    dataset, _ = build_once(folder, lambda: _read_cache(folder, name, spec), generate_and_read)
    if dataset is None:
        raise RuntimeError(f"synthetic cache {folder} cannot be read back after writing it")
    return dataset


def _at_spec(base: PreparedDataset, spec: InputSpec) -> PreparedDataset:
    signals = signals_at(base.signals, base.input, spec)
    return replace(base, signals=signals, input=spec, digest=array_digest(
        signals, base.labels, base.split, np.array(GENERATOR_VERSION), np.array(spec.tag)))


_META_FIELDS = ("labels", "classes", "record_ids", "patient_ids", "split", "digest")


def _read_cache(folder: Path, name: str, spec: InputSpec) -> PreparedDataset | None:
    """The cached dataset, or None when the entry is missing or does not load in full."""
    try:
        signals = np.load(folder / "signals.npy", mmap_mode="r")
        with np.load(folder / "meta.npz", allow_pickle=False) as meta:
            fields = {key: meta[key] for key in _META_FIELDS}
        if tuple(fields["classes"].tolist()) != DATASET_CLASSES[name]:
            return None  # written before the class list changed
        return PreparedDataset(
            name=name,
            signals=signals,
            labels=fields["labels"],
            classes=DATASET_CLASSES[name],
            record_ids=fields["record_ids"],
            patient_ids=fields["patient_ids"],
            split=fields["split"],
            source="synthetic",
            digest=str(fields["digest"]),
            input=spec,
            fingerprints=load_fingerprints(folder / "fingerprints.npz"),  # absent in older entries: regenerated
        )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(folder: Path, dataset: PreparedDataset) -> None:
    """Write into a temporary sibling folder, then rename it into place (replacing a broken entry)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with naming_write_errors(folder / "signals.npy", "the synthetic-data cache"):
            np.save(tmp / "signals.npy", dataset.signals)
        with naming_write_errors(folder / "meta.npz", "the synthetic-data cache"):
            np.savez(tmp / "meta.npz", labels=dataset.labels, classes=np.array(dataset.classes),
                     record_ids=dataset.record_ids, patient_ids=dataset.patient_ids, split=dataset.split,
                     digest=np.array(dataset.digest))
        with naming_write_errors(folder / "fingerprints.npz", "the synthetic-data cache"):
            save_fingerprints(dataset.fingerprints, tmp / "fingerprints.npz")
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
