"""One synthetic record from a patient's heart: the rhythm, the waves placed on it, and the recording noise of
the dataset's chain."""
from __future__ import annotations

import numpy as np

from ecgbench.data.dataset import N_SAMPLES
from ecgbench.data.synthetic_heart import ELECTRODES, Heart, Waves
from ecgbench.data.synthetic_standins import Recording

_FS = 100.0  # Hz
_T = np.arange(N_SAMPLES) / _FS

# ----------------------------------------------------------------------------------------------------------
# One record: rhythm, rendering, recording noise
# ----------------------------------------------------------------------------------------------------------
_SINUS, _ATRIAL, _VENTRICULAR = 0, 1, 2


def _heart_rate(rng: np.random.Generator, conditions: frozenset[str]) -> float:
    """Mean rate (bpm) of one record; SB and STach mostly mild, near the 60 / 100 bpm thresholds."""
    if "AF" in conditions:
        return rng.uniform(65, 135)
    if "SB" in conditions:
        return 58.0 - 16.0 * rng.beta(1.3, 2.0)
    if "STach" in conditions:
        return 102.0 + 48.0 * rng.beta(1.3, 2.5)
    return float(np.clip(rng.normal(74, 9), 62, 98))


def _rhythm(rng: np.random.Generator, heart: Heart) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QRS onset times (s), beat kinds and preceding RR of every beat touching the 10 s window."""
    rr0 = 60.0 / _heart_rate(rng, heart.conditions)
    n = int(np.ceil(13.0 / (0.6 * rr0))) + 2
    if "AF" in heart.conditions:
        cv = rng.uniform(0.15, 0.3)
        rr = np.maximum(rr0 * rng.lognormal(-cv**2 / 2, cv, n), 0.28)
    else:
        beat_time = np.arange(n) * rr0
        resp = rng.uniform(0.0, 0.05) * np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * beat_time + rng.uniform(0, 6.3))
        rr = rr0 * (1.0 + resp + rng.normal(0, 0.012, n))
    kinds = np.zeros(n, dtype=np.int8)
    start = -1.5 + rng.uniform(0, rr0)
    in_window = np.flatnonzero((start + np.cumsum(rr) > 0.6) & (start + np.cumsum(rr) < 9.0))
    for kind, name in ((_ATRIAL, "PAC"), (_VENTRICULAR, "VEB")):
        if name in heart.conditions:
            _insert_premature(rng, rr, kinds, in_window, kind)
    onsets = start + np.cumsum(rr)
    keep = onsets < N_SAMPLES / _FS + 0.1
    return onsets[keep], kinds[keep], rr[keep]


def _insert_premature(rng: np.random.Generator, rr: np.ndarray, kinds: np.ndarray, candidates: np.ndarray,
                      kind: int) -> None:
    """Make 1-3 beats premature: atrial ones reset the rhythm, ventricular ones leave a compensatory pause."""
    free = candidates[(kinds[candidates] == 0) & (kinds[np.minimum(candidates + 1, len(kinds) - 1)] == 0)]
    for k in rng.choice(free, size=min(len(free), 3, 1 + rng.poisson(0.6)), replace=False):
        coupling = rng.uniform(0.6, 0.8) if kind == _ATRIAL else rng.uniform(0.55, 0.75)
        if kind == _VENTRICULAR:
            rr[k + 1] += rr[k] * (1.0 - coupling)
        rr[k] *= coupling
        kinds[k] = kind


def _bumps(centre: np.ndarray, left: np.ndarray, right: np.ndarray, vec: np.ndarray, first: int = 0,
           length: int = N_SAMPLES) -> np.ndarray:
    """Sum of asymmetric raised-cosine bumps [length, 3] on samples ``first``, ``first + 1``, ...

    Each bump is evaluated only on the samples it covers.
    """
    reach = int(np.ceil(max(left.max(), right.max()) * _FS)) + 1
    idx = np.rint(centre * _FS).astype(int)[:, None] + np.arange(-reach, reach + 1)
    u = (idx / _FS - centre[:, None]) / np.where(idx / _FS < centre[:, None], left[:, None], right[:, None])
    w = 0.5 * (1.0 + np.cos(np.pi * np.clip(u, -1.0, 1.0)))
    keep = (idx >= first) & (idx < first + length) & (np.abs(u) < 1.0)
    flat = ((idx[keep] - first)[:, None] * 3 + np.arange(3)).ravel()
    weights = (w[:, :, None] * vec[:, None, :])[keep].ravel()
    return np.bincount(flat, weights=weights, minlength=3 * length).reshape(length, 3)


def _place(waves: Waves, onsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """A beat template repeated at each QRS onset."""
    k = len(onsets)
    return ((onsets[:, None] + waves.centre).ravel(), np.tile(waves.left, k), np.tile(waves.right, k),
            np.tile(waves.vec, (k, 1)))


def _t_waves(vec: np.ndarray, onsets: np.ndarray, qt: np.ndarray, half: tuple[float, float]
             ) -> tuple[np.ndarray, ...]:
    """T waves that end exactly QT after QRS onset."""
    left, right = half[0] * qt, half[1] * qt
    return onsets + qt - right, left, right, np.tile(vec, (len(onsets), 1))


def _render(heart: Heart, onsets: np.ndarray, kinds: np.ndarray, rr: np.ndarray) -> np.ndarray:
    """The dipole [1000, 3] of one record."""
    conducted = kinds != _VENTRICULAR
    qt = heart.qtc_s * np.sqrt(rr) + max(heart.qrs_s - 0.09, 0.0)
    parts = [_place(heart.qrs, onsets[conducted]),
             _t_waves(heart.t_vec, onsets[conducted], qt[conducted], heart.t_half)]
    if heart.p_wave is not None:
        parts.append(_place(heart.p_wave, onsets[kinds == _SINUS]))
    if heart.pac_wave is not None:
        parts.append(_place(heart.pac_wave, onsets[kinds == _ATRIAL]))
    if heart.ectopic is not None:
        ectopic = onsets[~conducted]
        parts += [_place(heart.ectopic, ectopic),
                  _t_waves(heart.ectopic_t, ectopic, qt[~conducted] + 0.06, heart.t_half)]
    dipole = _bumps(*(np.concatenate(column) for column in zip(*parts)))
    t_peak = qt[conducted] * (1.0 - heart.t_half[1])
    return dipole + _st_segments(onsets[conducted] + heart.qrs_s, onsets[conducted] + t_peak, heart.st_vec)


def _st_segments(start: np.ndarray, end: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Plateaus of height ``vec`` from each J point to its T peak: the running sum of a rising and a falling edge.

    An edge is a raised cosine 2 samples wide on each side, whose samples sum to exactly 2 at any phase.
    """
    edge = np.full(2 * len(start), 2.0 / _FS)
    steps = np.concatenate([np.tile(vec / 2, (len(start), 1)), np.tile(-vec / 2, (len(end), 1))])
    lead_in = int(2 * _FS)  # the first beats start before the window: sum their edges too
    edges = _bumps(np.concatenate([start + 1.0 / _FS, end]), edge, edge, steps, -lead_in, lead_in + N_SAMPLES)
    return np.cumsum(edges, axis=0)[lead_in:]


def _fibrillation(rng: np.random.Generator, f_vec: np.ndarray) -> np.ndarray:
    """Fibrillatory waves: 4-8 Hz, irregular in rate and amplitude, strongest in V1 and the inferior leads."""
    freq = rng.uniform(4.5, 7.5) + 0.7 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * _T + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(freq) / _FS + rng.uniform(0, 6.3)
    envelope = 1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * _T + rng.uniform(0, 6.3))
    wave = np.sin(phase) + 0.35 * np.sin(2 * phase + rng.uniform(0, 6.3))
    return (envelope * wave)[:, None] * f_vec


def clean_record(rng: np.random.Generator, heart: Heart) -> np.ndarray:
    """The 12-lead ECG [1000, 12] of one record of this heart, as the heart makes it."""
    onsets, kinds, rr = _rhythm(rng, heart)
    dipole = _render(heart, onsets, kinds, rr)
    if heart.f_vec is not None:
        dipole += _fibrillation(rng, heart.f_vec)
    return dipole @ heart.leads


def recorded(rng: np.random.Generator, ecg: np.ndarray, rec: Recording) -> np.ndarray:
    """What a dataset's recording chain makes of an ECG: electrode noise, then the amplifier's gain."""
    return (ecg + _recording_noise(rng, rec)) * rec.gain * rng.lognormal(0, 0.08)


def _recording_noise(rng: np.random.Generator, rec: Recording) -> np.ndarray:
    """Electrode noise [1000, 12]: white noise, baseline wander, muscle bursts, aliased mains residue."""
    n_el = ELECTRODES.shape[0]
    noise = rng.standard_normal((N_SAMPLES, n_el), dtype=np.float32) * (rec.noise_mv * rng.lognormal(0, 0.35))
    # wander: respiration and electrode motion, a few slow sources seen by every electrode with its own weight
    sources = np.sin(2 * np.pi * rng.uniform(0.05, 0.5, 3) * _T[:, None] + rng.uniform(0, 6.3, 3))
    noise += sources @ (rec.wander_mv * rng.uniform(-1.0, 1.0, (3, n_el)))
    if rng.random() < rec.emg_share:
        centre, length = rng.uniform(0, 10), rng.uniform(1, 4)
        envelope = np.exp(-0.5 * ((_T - centre) / (length / 2)) ** 2)[:, None]
        noise += envelope * np.diff(rng.normal(0, rng.uniform(0.02, 0.08), (N_SAMPLES + 1, n_el)), axis=0)
    alias = abs(rec.mains_hz - _FS * round(rec.mains_hz / _FS))
    mains = rng.uniform(0, rec.mains_mv) * np.sin(2 * np.pi * alias * _T + rng.uniform(0, 6.3))
    noise += mains[:, None] * rng.uniform(0, 1, n_el)
    return noise @ ELECTRODES

