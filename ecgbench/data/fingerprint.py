"""Content fingerprints of prepared recordings: the same recording is found again whatever its name, file
format, gain, ADC offset or sampling rate, and whether it was re-quantised, resampled or cropped by a sample or
two, because the fingerprint is taken from the model input (after resampling to 100 Hz, the 10 s window and
the scaling), not from files or names.

A fingerprint is an exact hash of the prepared float32 bytes plus an embedding: the eight independent leads
(I, II, V1-V6; the other four are sums of I and II), each with its mean removed, low-passed and decimated to
25 Hz (250 samples), scaled to unit norm (so gain and offset drop out) and stored as int8 (2 KB a record).
Two recordings are the same when their exact hashes are equal, or when the mean correlation of their common
non-flat leads, at the best of the shifts up to ``MAX_SHIFT`` embedding samples (80 ms), reaches
``SAME_RECORDING`` and every one of those leads reaches ``SAME_LEAD``. Candidates come from a blocked
nearest-neighbour search on a 128-dimensional random projection of the embeddings (cosine above
``CANDIDATE``), so a search costs one matrix product per block, not a comparison of every pair at every shift.
A recording with fewer than ``MIN_LEADS`` non-flat leads has too little signal to tell and is never matched
(all-zero records would otherwise all be one recording).
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

FINGERPRINT_VERSION = "1"
LEADS_USED = (0, 1, 6, 7, 8, 9, 10, 11)  # I, II, V1-V6 in the order of ``dataset.LEADS``
DECIMATE = 4  # 100 Hz -> 25 Hz
EMBED_SAMPLES = 250
SCALE = 127  # int8 units per unit of a unit-norm lead
MAX_SHIFT = 2  # embedding samples (40 ms each) tried either way: crops of up to 8 samples at 100 Hz
SAME_RECORDING = 0.8  # measured: distinct real recordings <= 0.59, copies >= 0.857; the synthetic stand-ins' more
# regular beats reach 0.87 in 4 of 2.4e8 pairs within 21,799 records, never across datasets (README)
SAME_LEAD = 0.65  # and every common lead: distinct <= 0.54, copies >= 0.75
CANDIDATE = 0.5  # projected cosine above which a pair is verified (a copy scores >= 0.85 unprojected)
MIN_LEADS = 2
PROJECTION_DIM = 128
_BLOCK = 2048  # records per block of the candidate search
_CHUNK = 512  # records fingerprinted at once (bounds memory for a memory-mapped dataset)


class FingerprintError(ValueError):
    """A fingerprint file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class FingerprintSet:
    """The fingerprints of some recordings of one dataset: ``record_ids`` [n] str, ``exact`` [n] int64 (the
    first 8 bytes of the sha256 of the prepared signal), ``embedding`` [n, 250, 8] int8."""

    dataset: str
    record_ids: np.ndarray
    exact: np.ndarray
    embedding: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.record_ids)
        if self.exact.shape != (n,) or self.embedding.shape != (n, EMBED_SAMPLES, len(LEADS_USED)):
            raise FingerprintError(f"fingerprints of {self.dataset}: {n} record ids, exact {self.exact.shape}, "
                                   f"embedding {self.embedding.shape} (expected [{n}, {EMBED_SAMPLES}, "
                                   f"{len(LEADS_USED)}])")

    def __len__(self) -> int:
        return len(self.record_ids)

    def subset(self, indices: np.ndarray) -> FingerprintSet:
        indices = np.asarray(indices, dtype=np.int64)
        return FingerprintSet(self.dataset, self.record_ids[indices], self.exact[indices], self.embedding[indices])

    def digest(self) -> str:
        """sha256 of ids, hashes and embeddings: what a checkpoint names as the set it was trained on."""
        h = hashlib.sha256(f"{FINGERPRINT_VERSION}\0{self.dataset}\0".encode())
        h.update("\0".join(map(str, self.record_ids)).encode())
        h.update(np.ascontiguousarray(self.exact).tobytes())
        h.update(np.ascontiguousarray(self.embedding).tobytes())
        return h.hexdigest()[:20]


@dataclass(frozen=True)
class Match:
    """Record ``i`` of one set and ``j`` of the other hold the same recording (``score`` 1.0: exact bytes)."""

    i: int
    j: int
    score: float


def _embed(signals: np.ndarray) -> np.ndarray:
    """int8 embeddings [n, 250, 8] of prepared signals [n, 1000, 12]."""
    x = np.asarray(signals, dtype=np.float64)[:, :, LEADS_USED]
    x = x - x.mean(axis=1, keepdims=True)
    x = resample_poly(x, 1, DECIMATE, axis=1)[:, :EMBED_SAMPLES]
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    flat = norm < 1e-6 * max(1.0, float(np.abs(signals).max(initial=0.0)))
    x = np.where(flat, 0.0, x / np.where(flat, 1.0, norm))
    return np.round(x * SCALE).astype(np.int8)


def fingerprint_signals(dataset: str, signals: np.ndarray, record_ids: np.ndarray) -> FingerprintSet:
    """Fingerprints of prepared signals [n, 1000, 12] (a memory map is read in chunks)."""
    if len(signals) != len(record_ids):
        raise ValueError(f"{dataset}: {len(signals)} signals but {len(record_ids)} record ids")
    exact = np.empty(len(signals), dtype=np.int64)
    embedding = np.empty((len(signals), EMBED_SAMPLES, len(LEADS_USED)), dtype=np.int8)
    for start in range(0, len(signals), _CHUNK):
        chunk = np.ascontiguousarray(signals[start:start + _CHUNK], dtype=np.float32)
        embedding[start:start + len(chunk)] = _embed(chunk)
        exact[start:start + len(chunk)] = [int.from_bytes(hashlib.sha256(x.tobytes()).digest()[:8], "little",
                                                          signed=True) for x in chunk]
    return FingerprintSet(dataset, np.asarray(record_ids).astype(str), exact, embedding)


# ----------------------------------------------------------------------------------------------------------
# Search
# ----------------------------------------------------------------------------------------------------------
def _valid_leads(embedding: np.ndarray) -> np.ndarray:
    return np.any(embedding != 0, axis=1)  # [n, 8]


def _sketch(fs: FingerprintSet) -> np.ndarray:
    """Unit-norm random projections [n, 128] of the embeddings; matchable records only (others: zeros)."""
    projection = np.random.default_rng(20260101).standard_normal((EMBED_SAMPLES * len(LEADS_USED),
                                                                 PROJECTION_DIM)).astype(np.float32)
    out = np.zeros((len(fs), PROJECTION_DIM), dtype=np.float32)
    for start in range(0, len(fs), _BLOCK):
        flat = fs.embedding[start:start + _BLOCK].reshape(-1, EMBED_SAMPLES * len(LEADS_USED)).astype(np.float32)
        out[start:start + len(flat)] = flat @ projection
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    matchable = _valid_leads(fs.embedding).sum(1) >= MIN_LEADS
    return np.where(matchable[:, None] & (norm > 0), out / np.where(norm > 0, norm, 1), 0)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For paired embeddings [p, 250, 8]: at the shift with the best mean correlation of the common non-flat
    leads, that mean, or the weakest lead's correlation when it is below ``SAME_LEAD`` (one recording
    correlates in every lead; two similar beats of one patient in some leads only)."""
    fa, fb = a.astype(np.float32) / SCALE, b.astype(np.float32) / SCALE
    common = _valid_leads(a) & _valid_leads(b)
    n_common = common.sum(1)
    best, weakest = np.full(len(a), -1.0, dtype=np.float32), np.full(len(a), -1.0, dtype=np.float32)
    for shift in range(-MAX_SHIFT, MAX_SHIFT + 1):
        x = fa[:, shift:] if shift >= 0 else fa[:, :shift]
        y = fb[:, :EMBED_SAMPLES - shift] if shift >= 0 else fb[:, -shift:]
        per_lead = (x * y).sum(1) / np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1), 1e-9)
        mean = np.where(common, per_lead, 0).sum(1) / np.maximum(n_common, 1)
        better = mean > best
        best, weakest = np.where(better, mean, best), np.where(better, np.where(common, per_lead, 1).min(1), weakest)
    score = np.where(weakest >= SAME_LEAD, best, np.minimum(best, weakest))
    return np.where(n_common >= MIN_LEADS, score, 0.0)


def _candidates(a: FingerprintSet, b: FingerprintSet, same: bool) -> tuple[np.ndarray, np.ndarray]:
    sa = _sketch(a)
    sb = sa if same else _sketch(b)
    rows, cols = [], []
    for start in range(0, len(a), _BLOCK):
        sims = sa[start:start + _BLOCK] @ sb.T
        i, j = np.nonzero(sims > CANDIDATE)
        i = i + start
        keep = i < j if same else np.ones(len(i), dtype=bool)
        rows.append(i[keep])
        cols.append(j[keep])
    return np.concatenate(rows or [np.zeros(0, int)]), np.concatenate(cols or [np.zeros(0, int)])


def _exact_pairs(a: FingerprintSet, b: FingerprintSet, same: bool) -> set[tuple[int, int]]:
    matchable_a = _valid_leads(a.embedding).sum(1) >= MIN_LEADS
    matchable_b = _valid_leads(b.embedding).sum(1) >= MIN_LEADS
    where: dict[int, list[int]] = {}
    for j, h in enumerate(b.exact.tolist()):
        if matchable_b[j]:
            where.setdefault(h, []).append(j)
    return {(i, j) for i, h in enumerate(a.exact.tolist()) if matchable_a[i] for j in where.get(h, ())
            if not same or i < j}


def find_matches(a: FingerprintSet, b: FingerprintSet | None = None) -> list[Match]:
    """Pairs (i of ``a``, j of ``b``) holding the same recording, sorted; ``b`` None: pairs i < j within ``a``."""
    same = b is None
    b = a if same else b
    exact = _exact_pairs(a, b, same)
    rows, cols = _candidates(a, b, same)
    matches = {pair: 1.0 for pair in exact}
    for start in range(0, len(rows), 4096):
        i, j = rows[start:start + 4096], cols[start:start + 4096]
        scores = similarity(a.embedding[i], b.embedding[j])
        for ii, jj, score in zip(i.tolist(), j.tolist(), scores.tolist()):
            if score >= SAME_RECORDING and (ii, jj) not in matches:
                matches[(ii, jj)] = round(float(score), 4)
    return [Match(i, j, s) for (i, j), s in sorted(matches.items())]


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------
def save_fingerprints(fs: FingerprintSet, path: Path) -> None:
    """Write ``fs`` to ``path`` (``.npz``); ``load_fingerprints`` reads it back and checks its digest."""
    with open(path, "wb") as f:
        np.savez(f, version=np.array(FINGERPRINT_VERSION), dataset=np.array(fs.dataset),
                 record_ids=fs.record_ids.astype(str), exact=fs.exact, embedding=fs.embedding,
                 digest=np.array(fs.digest()))


def load_fingerprints(path: Path) -> FingerprintSet:
    """The set ``save_fingerprints`` wrote; ``FingerprintError`` naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            version = str(f["version"])
            if version != FINGERPRINT_VERSION:
                raise FingerprintError(f"{path}: fingerprints of version {version}, this ecgbench reads version "
                                       f"{FINGERPRINT_VERSION}: fingerprint the data again")
            fs = FingerprintSet(str(f["dataset"]), f["record_ids"], f["exact"], f["embedding"])
            digest = str(f["digest"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, FingerprintError):
            raise
        raise FingerprintError(f"{path}: not a fingerprint file ({type(e).__name__}: {e})") from None
    if fs.digest() != digest:
        raise FingerprintError(f"{path}: content does not match its digest (damaged or edited): not trusted")
    return fs


def union(name: str, sets: list[FingerprintSet]) -> FingerprintSet:
    """One set of several datasets' fingerprints (what a checkpoint pre-trained on all of them has seen); each
    record id is prefixed with its dataset, so a shared record names where it came from."""
    return FingerprintSet(name, np.concatenate([np.char.add(f"{s.dataset}:", s.record_ids.astype(str)) for s in sets]),
                          np.concatenate([s.exact for s in sets]), np.concatenate([s.embedding for s in sets]))
