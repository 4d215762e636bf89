"""Synthetic 12-lead ECGs: a stand-in for each dataset of the study that needs no download.

Why: the benchmark must run on a fresh clone, and a transfer experiment needs sources that share physiology
but differ in how they were recorded and labelled. Every record comes from one model of the heart: a patient
has a cardiac dipole whose P, QRS, ST and T waves are smooth bumps of a 3-D vector (x left, y inferior,
z anterior), projected onto the 12 leads with the Dower lead vectors. Limb leads therefore obey Einthoven's
law, and each condition shows in the leads where it shows clinically (RBBB: R' in V1; inferior MI: Q waves in
II, III, aVF). The underlying conditions are shared; each stand-in maps them onto its own class list, has its
own prevalences and its own recording chain (noise, baseline wander, mains residue, gain): the domain shift.

Signals are float32 millivolts [n, 1000, 12], 10 s at 100 Hz, leads in ``LEADS`` order.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgbench.atomic import replace_folder
from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.data.dataset import N_LEADS, N_SAMPLES, PreparedDataset, array_digest
from ecgbench.data.fingerprint import fingerprint_signals, load_fingerprints, save_fingerprints
from ecgbench.data.splits import stratified_split
from ecgbench.locks import host_lock

GENERATOR_VERSION = "2"  # 2: splits by the same patient-grouped stratified split as real data
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, validation, test

_FS = 100.0  # Hz
_T = np.arange(N_SAMPLES) / _FS

# ----------------------------------------------------------------------------------------------------------
# Conditions and how each dataset labels them
# ----------------------------------------------------------------------------------------------------------
_CONDITIONS = (
    "AF", "SB", "STach", "IAVB", "PAC", "VEB", "RBBB", "LBBB", "LAD", "HYP", "MI", "STE", "STD", "TInv", "TAb", "LQT",
)
# (dominant, excluded): a patient drawn with both keeps only the dominant one.
_EXCLUSIONS = (
    ("AF", "SB"), ("AF", "STach"), ("AF", "IAVB"), ("AF", "PAC"), ("SB", "STach"),
    ("RBBB", "LBBB"), ("STE", "STD"), ("TInv", "TAb"),
)
# A class is positive when the record has any of its conditions; NORM when it has none of its dataset's
# other classes (so a code_test NORM may carry an unlabelled PAC, as in the real CODE-test).
_CLASS_CONDITIONS: dict[str, tuple[str, ...]] = {
    "MI": ("MI",), "HYP": ("HYP",), "AF": ("AF",), "IAVB": ("IAVB",), "1dAVb": ("IAVB",),
    "LBBB": ("LBBB",), "RBBB": ("RBBB",), "PAC": ("PAC",), "VEB": ("VEB",), "STD": ("STD",),
    "STE": ("STE",), "SB": ("SB",), "LAD": ("LAD",), "STach": ("STach",), "ST": ("STach",),
    "TAb": ("TAb",), "TInv": ("TInv",), "LQT": ("LQT",),
    "STTC": ("STE", "STD", "TInv", "TAb", "LQT"),
    "CD": ("RBBB", "LBBB", "IAVB", "LAD"),
}


@dataclass(frozen=True)
class _Recording:
    """How one dataset was recorded: the part of the domain shift that is not the class mix."""

    noise_mv: float  # white noise std per electrode
    wander_mv: float  # baseline wander amplitude (0.05-0.5 Hz)
    emg_share: float  # share of records with muscle-noise bursts
    mains_hz: float  # mains frequency; plain decimation to 100 Hz aliases 60 Hz to 40 Hz
    mains_mv: float  # largest mains residue
    gain: float  # amplifier calibration relative to true millivolts


@dataclass(frozen=True)
class _Profile:
    """One stand-in: per-patient prevalence of each underlying condition, and its recording chain."""

    prevalence: dict[str, float]
    recording: _Recording


_PROFILES: dict[str, _Profile] = {
    # PTB-XL superclasses ignore rhythm, so AF / SB / STach / PAC / VEB occur unlabelled.
    "ptbxl": _Profile(
        {"MI": 0.20, "HYP": 0.10, "STE": 0.04, "STD": 0.08, "TInv": 0.06, "TAb": 0.05, "LQT": 0.03,
         "RBBB": 0.07, "LBBB": 0.03, "IAVB": 0.05, "LAD": 0.07,
         "AF": 0.05, "SB": 0.06, "STach": 0.05, "PAC": 0.03, "VEB": 0.03},
        _Recording(noise_mv=0.012, wander_mv=0.10, emg_share=0.10, mains_hz=50.0, mains_mv=0.0, gain=1.00),
    ),
    "cpsc2018": _Profile(
        {"AF": 0.16, "IAVB": 0.10, "LBBB": 0.04, "RBBB": 0.17, "PAC": 0.08, "VEB": 0.09, "STD": 0.11, "STE": 0.04},
        _Recording(noise_mv=0.020, wander_mv=0.20, emg_share=0.20, mains_hz=50.0, mains_mv=0.01, gain=1.10),
    ),
    # Georgia also holds bundle-branch blocks and ST depression that the study's ten classes leave out.
    "georgia": _Profile(
        {"AF": 0.06, "IAVB": 0.07, "SB": 0.13, "LAD": 0.09, "STach": 0.11, "TAb": 0.15, "TInv": 0.08,
         "LQT": 0.09, "PAC": 0.06, "RBBB": 0.03, "STD": 0.03, "HYP": 0.04},
        _Recording(noise_mv=0.016, wander_mv=0.15, emg_share=0.15, mains_hz=60.0, mains_mv=0.015, gain=0.90),
    ),
    # PTB Diagnostic: MI patients outnumber healthy controls.
    "ptb": _Profile(
        {"MI": 0.60},
        _Recording(noise_mv=0.008, wander_mv=0.06, emg_share=0.05, mains_hz=50.0, mains_mv=0.0, gain=1.20),
    ),
    # CODE-test: NORM means none of the six, so other findings occur under NORM.
    "code_test": _Profile(
        {"IAVB": 0.045, "RBBB": 0.05, "LBBB": 0.04, "SB": 0.035, "AF": 0.035, "STach": 0.05,
         "PAC": 0.03, "VEB": 0.03, "LAD": 0.05, "HYP": 0.03, "MI": 0.03, "TInv": 0.03, "TAb": 0.04, "STD": 0.02},
        _Recording(noise_mv=0.028, wander_mv=0.25, emg_share=0.25, mains_hz=60.0, mains_mv=0.02, gain=0.95),
    ),
}

# ----------------------------------------------------------------------------------------------------------
# Leads
# ----------------------------------------------------------------------------------------------------------


def _lead_matrix() -> np.ndarray:
    """Dipole (x left, y inferior, z anterior) -> 12 leads, from the Dower inverse transform.

    Only I and II come from the table; III, aVR, aVL, aVF are derived so that Einthoven's law holds exactly.
    """
    lead_i = np.array([0.632, -0.235, -0.059])
    lead_ii = np.array([0.235, 1.066, 0.132])
    precordial = np.array([
        [-0.515, 0.157, 0.917], [0.044, 0.164, 1.387], [0.882, 0.098, 1.277],
        [1.213, 0.127, 0.601], [1.125, 0.127, 0.086], [0.831, 0.076, -0.230],
    ])
    limb = [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2]
    return np.column_stack(limb + list(precordial))


def _electrode_matrix() -> np.ndarray:
    """Electrode potentials (RA, LA, LL, C1..C6) -> 12 leads, so that recording noise obeys Einthoven too."""
    ra, la, ll, *chest = np.eye(9)
    limb = [la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2]
    wilson = (ra + la + ll) / 3
    return np.column_stack(limb + [c - wilson for c in chest])


_LEADS = _lead_matrix()
_ELECTRODES = _electrode_matrix()
_GROUPS = {"inferior": (1, 2, 5), "anterior": (6, 7, 8, 9), "lateral": (0, 4, 10, 11)}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _group_vector(leads: np.ndarray, group: str, level_mv: float) -> np.ndarray:
    """A dipole that shifts at least two leads of a lead group by ``level_mv`` (the clinical criterion)."""
    u = _unit(leads[:, _GROUPS[group]].sum(axis=1))
    second = np.sort(u @ leads[:, _GROUPS[group]])[-2]
    return u * level_mv / second


def _axis_vector(axis_deg: float, posterior: float) -> np.ndarray:
    """Unit dipole whose frontal projection shows the given QRS axis in leads I and aVF."""
    a = np.radians(axis_deg)
    frontal = _LEADS[:2, [0, 5]].T  # rows: lead I, lead aVF (x, y coefficients)
    xy = _unit(np.linalg.solve(frontal, [np.cos(a), np.sqrt(3) / 2 * np.sin(a)]))
    return _unit(np.array([xy[0], xy[1], posterior]))


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.normal(size=3))


# ----------------------------------------------------------------------------------------------------------
# The heart of one patient
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Waves:
    """Raised-cosine bumps of the dipole: centres (s after QRS onset), left / right half-widths (s), vectors (mV).

    A bump is exactly zero outside [centre - left, centre + right], so a QRS of duration D spans exactly D.
    """

    centre: np.ndarray
    left: np.ndarray
    right: np.ndarray
    vec: np.ndarray  # [k, 3]


def _waves(*bumps: tuple[float, float, np.ndarray]) -> _Waves:
    """Symmetric bumps from (centre, half-width, vector) triples."""
    centre, half, vec = zip(*bumps)
    return _Waves(np.array(centre), np.array(half), np.array(half), np.array(vec))


def _join(a: _Waves, b: _Waves) -> _Waves:
    return _Waves(*(np.concatenate([x, y]) for x, y in zip(
        (a.centre, a.left, a.right, a.vec), (b.centre, b.left, b.right, b.vec))))


@dataclass(frozen=True)
class _Heart:
    """Everything shared by the records of one patient: morphology and diagnoses."""

    conditions: frozenset[str]
    leads: np.ndarray  # [3, 12] with this patient's electrode placement
    p_wave: _Waves | None  # sinus P, None in AF
    pac_wave: _Waves | None  # P of atrial premature beats
    qrs: _Waves
    qrs_s: float
    t_vec: np.ndarray
    t_half: tuple[float, float]  # left / right half-width of T as a fraction of QT
    qtc_s: float
    st_vec: np.ndarray  # ST-segment shift
    ectopic: _Waves | None  # QRS of ventricular premature beats
    ectopic_t: np.ndarray | None
    f_vec: np.ndarray | None  # fibrillatory waves (AF)


def _sinus_p(rng: np.random.Generator, pr_s: float, direction: np.ndarray) -> _Waves:
    """P wave ending before the QRS: onset exactly ``pr_s`` before QRS onset."""
    half = rng.uniform(0.035, 0.05)
    return _waves((half - pr_s, half, direction * rng.uniform(0.08, 0.2)))


def _narrow_qrs(rng: np.random.Generator, main: np.ndarray, duration: float, terminal: bool) -> _Waves:
    """Septal, free-wall and (optionally) basal forces of normal ventricular activation."""
    amp = np.linalg.norm(main)
    septal = _unit(np.array([-0.4, 0.2, 0.9]) + rng.normal(0, 0.15, 3)) * amp * rng.uniform(0.1, 0.25)
    bumps = [(0.2 * duration, 0.2 * duration, septal), (0.5 * duration, 0.28 * duration, main)]
    if terminal:
        basal = _unit(np.array([-0.3, -0.5, -0.6]) + rng.normal(0, 0.2, 3)) * amp * rng.uniform(0.1, 0.3)
        bumps.append((0.8 * duration, 0.2 * duration, basal))
    return _waves(*bumps)


def _rbbb_qrs(rng: np.random.Generator, main: np.ndarray, duration: float) -> tuple[_Waves, np.ndarray]:
    """Normal left activation, then a slow rightward-anterior wave: rsR' in V1, wide S in I and V6."""
    left_s = rng.uniform(0.08, 0.095)
    left = _narrow_qrs(rng, main, left_s, terminal=False)
    half = (duration - left_s + rng.uniform(0.015, 0.03)) / 2  # R' starts before left activation ends
    right_dir = _unit(np.array([-0.75, 0.05, 0.65]) + rng.normal(0, 0.1, 3))
    right = right_dir * np.linalg.norm(main) * rng.uniform(0.45, 0.75)
    return _join(left, _waves((duration - half, half, right))), right


def _lbbb_qrs(rng: np.random.Generator, main: np.ndarray, duration: float) -> tuple[_Waves, np.ndarray]:
    """Septum activated from the left, slow notched leftward-posterior wave: broad notched R in I, aVL, V6."""
    amp = np.linalg.norm(main) * rng.uniform(1.1, 1.5)
    lv = _unit(np.array([0.75, 0.15 * np.sign(main[1]), -0.65]) + rng.normal(0, 0.1, 3))
    late = _unit(lv + rng.normal(0, 0.15, 3))
    septal = _unit(np.array([0.7, 0.1, -0.3])) * amp * 0.2
    bumps = ((0.12 * duration, 0.12 * duration, septal),
             (0.38 * duration, 0.3 * duration, lv * amp * rng.uniform(0.8, 1.1)),
             (0.7 * duration, 0.3 * duration, late * amp * rng.uniform(0.8, 1.1)))
    return _waves(*bumps), lv * amp


def _ectopic_beat(rng: np.random.Generator, amp: float) -> tuple[_Waves, np.ndarray]:
    """Ventricular premature beat: wide bizarre QRS from one focus, T opposite to it."""
    duration = rng.uniform(0.14, 0.19)
    first = _random_unit(rng) * amp * rng.uniform(1.2, 2.0)
    second = _unit(first + rng.normal(0, 0.8, 3)) * amp * rng.uniform(0.5, 1.2)
    waves = _waves((0.35 * duration, 0.35 * duration, first), (0.7 * duration, 0.3 * duration, second))
    return waves, -_unit(first + second) * rng.uniform(0.3, 0.6)


def _qrs_duration(rng: np.random.Generator, conditions: frozenset[str]) -> float:
    if conditions & {"RBBB", "LBBB"}:
        return 0.14 + 0.04 * rng.beta(1.3, 1.5)
    return rng.uniform(0.078, 0.098) + (0.006 if "HYP" in conditions else 0.0)


def _hypertrophy_scale(rng: np.random.Generator, main: np.ndarray, leads: np.ndarray) -> float:
    """Scale of the free-wall force that makes S in V1 + R in V5 (Sokolow-Lyon) exceed 3.5 mV, within reason."""
    sokolow = max(-main @ leads[:, 6], 0.0) + max(main @ leads[:, 10], 0.0)
    return float(np.clip((3.6 + min(rng.exponential(0.5), 1.8)) / max(sokolow, 1e-3), 1.3, 2.8))


@dataclass
class _Parts:
    """The pieces of a heart while its conditions are applied, in the order activation happens."""

    leads: np.ndarray
    main: np.ndarray
    t: np.ndarray
    st: np.ndarray
    infarct: str | None = None
    qrs: _Waves | None = None


def _t_vector(rng: np.random.Generator, main: np.ndarray) -> np.ndarray:
    """Normal T wave dipole: concordant with the QRS, more anterior."""
    return _unit(_unit(main) + np.array([0.0, 0.0, 0.9]) + rng.normal(0, 0.2, 3)) * rng.uniform(0.18, 0.55)


def _invert_t(rng: np.random.Generator, parts: _Parts, group: str) -> None:
    """Remove the T component facing a lead group and replace it with a negative one."""
    u = _unit(_group_vector(parts.leads, group, 1.0))
    parts.t = parts.t - (parts.t @ u) * u - _group_vector(parts.leads, group, rng.uniform(0.1, 0.35))


def _st_level(rng: np.random.Generator) -> float:
    """ST deviation (mV): at least 0.1, mostly mild."""
    return 0.1 + min(rng.exponential(0.07), 0.3)


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    names = list(options)
    return names[rng.choice(len(names), p=np.array(list(options.values())) / sum(options.values()))]


def _infarct(rng: np.random.Generator, parts: _Parts, duration: float) -> _Waves:
    """MI: the territory's forces are lost, so the early QRS points away from it (pathological Q waves)."""
    parts.infarct = _pick(rng, {"inferior": 0.4, "anterior": 0.4, "lateral": 0.2})
    u = _unit(_group_vector(parts.leads, parts.infarct, 1.0))
    parts.main = parts.main - 0.6 * max(parts.main @ u, 0.0) * u
    half = rng.uniform(0.022, 0.03)
    return _waves((half, half, -_group_vector(parts.leads, parts.infarct, rng.uniform(0.15, 0.5))))


def _conduct(rng: np.random.Generator, conditions: frozenset[str], parts: _Parts, duration: float) -> _Waves:
    """The QRS for the conduction pattern, with the secondary ST-T change a bundle-branch block brings."""
    if "RBBB" in conditions:
        qrs, right = _rbbb_qrs(rng, parts.main, duration)
        parts.t = parts.t - 0.5 * np.linalg.norm(parts.t) * _unit(right)
        return qrs
    if "LBBB" in conditions:
        qrs, lv = _lbbb_qrs(rng, parts.main, duration)
        parts.t = -_unit(lv) * rng.uniform(0.3, 0.6)
        parts.st = parts.st - _unit(lv) * rng.uniform(0.03, 0.1)
        return qrs
    return _narrow_qrs(rng, parts.main, duration, terminal=True)


def _repolarise(rng: np.random.Generator, conditions: frozenset[str], parts: _Parts) -> None:
    """Primary ST-T changes: MI (ST elevation or T inversion in its territory), STE, STD, TInv, TAb, strain."""
    if parts.infarct is not None:
        acute = rng.random() < 0.35
        if acute:
            parts.st = parts.st + _group_vector(parts.leads, parts.infarct, _st_level(rng))
        if not acute or rng.random() < 0.3:
            _invert_t(rng, parts, parts.infarct)
    if "STE" in conditions:
        group = _pick(rng, {"anterior": 0.45, "inferior": 0.35, "lateral": 0.2})
        parts.st = parts.st + _group_vector(parts.leads, group, _st_level(rng))
    if "STD" in conditions:
        group = _pick(rng, {"lateral": 0.5, "inferior": 0.25, "anterior": 0.25})
        parts.st = parts.st - _group_vector(parts.leads, group, _st_level(rng))
    if "TInv" in conditions:
        _invert_t(rng, parts, _pick(rng, {"anterior": 0.4, "lateral": 0.4, "inferior": 0.2}))
    if "TAb" in conditions:
        parts.t = _unit(parts.t + rng.normal(0, 0.3, 3)) * np.linalg.norm(parts.t) * rng.uniform(0.0, 0.35)
    if "HYP" in conditions and rng.random() < 0.5:
        _invert_t(rng, parts, "lateral")


def _ventricles(rng: np.random.Generator, conditions: frozenset[str], leads: np.ndarray, main: np.ndarray,
                duration: float) -> _Parts:
    """QRS, T and ST of the conducted beats: infarct, then conduction, then repolarisation changes."""
    parts = _Parts(leads=leads, main=main, t=_t_vector(rng, main), st=np.zeros(3))
    if not conditions & {"STE", "STD", "MI"}:  # a normal variant: slight J elevation in V1-V4
        parts.st = _group_vector(leads, "anterior", rng.uniform(0.0, 0.05))
    q_wave = _infarct(rng, parts, duration) if "MI" in conditions else None
    qrs = _conduct(rng, conditions, parts, duration)
    parts.qrs = qrs if q_wave is None else _join(qrs, q_wave)
    _repolarise(rng, conditions, parts)
    return parts


def _draw_heart(rng: np.random.Generator, conditions: frozenset[str]) -> _Heart:
    """One patient: a random but plausible heart carrying the given conditions."""
    leads = _LEADS * np.concatenate([np.ones(6), rng.lognormal(0.0, 0.12, 6)])
    # drawn axis of the free-wall force; septal and basal forces turn the measured axis ~10 degrees left
    axis = rng.uniform(-72, -28) if "LAD" in conditions else np.clip(rng.normal(50, 25), 10, 95)
    posterior = rng.uniform(-0.9, -0.5) if "HYP" in conditions else rng.uniform(-0.7, -0.2)
    main = _axis_vector(axis, posterior) * rng.lognormal(np.log(1.4), 0.2)
    if "HYP" in conditions:
        main = main * _hypertrophy_scale(rng, main, leads)
    duration = _qrs_duration(rng, conditions)
    parts = _ventricles(rng, conditions, leads, main, duration)
    pr = 0.225 + min(rng.exponential(0.045), 0.12) if "IAVB" in conditions else rng.uniform(0.13, 0.19)
    p_dir = _unit(np.array([0.5, 0.8, 0.15]) + rng.normal(0, 0.1, 3))
    # an ectopic focus does not inherit the hypertrophied free wall's voltage in full
    ectopic, ectopic_t = _ectopic_beat(rng, min(np.linalg.norm(main), 1.8)) if "VEB" in conditions else (None, None)
    af = "AF" in conditions
    return _Heart(
        conditions=conditions,
        leads=leads,
        p_wave=None if af else _sinus_p(rng, pr, p_dir),
        pac_wave=_ectopic_p(rng, pr, p_dir) if "PAC" in conditions else None,
        qrs=parts.qrs,
        qrs_s=duration,
        t_vec=parts.t,
        t_half=(rng.uniform(0.3, 0.375), rng.uniform(0.19, 0.225)),
        qtc_s=rng.uniform(0.465, 0.56) if "LQT" in conditions else rng.uniform(0.37, 0.44),
        st_vec=parts.st,
        ectopic=ectopic,
        ectopic_t=ectopic_t,
        f_vec=_unit(np.array([-0.3, 0.4, 0.85]) + rng.normal(0, 0.2, 3)) * rng.uniform(0.03, 0.12) if af else None,
    )


def _ectopic_p(rng: np.random.Generator, pr: float, p_dir: np.ndarray) -> _Waves:
    """P of an atrial premature beat: from another focus (often inverted in the inferior leads)."""
    direction = -p_dir if rng.random() < 0.5 else _random_unit(rng)
    return _sinus_p(rng, pr * rng.uniform(0.85, 1.05), direction)


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


def _rhythm(rng: np.random.Generator, heart: _Heart) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _place(waves: _Waves, onsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """A beat template repeated at each QRS onset."""
    k = len(onsets)
    return ((onsets[:, None] + waves.centre).ravel(), np.tile(waves.left, k), np.tile(waves.right, k),
            np.tile(waves.vec, (k, 1)))


def _t_waves(vec: np.ndarray, onsets: np.ndarray, qt: np.ndarray, half: tuple[float, float]
             ) -> tuple[np.ndarray, ...]:
    """T waves that end exactly QT after QRS onset."""
    left, right = half[0] * qt, half[1] * qt
    return onsets + qt - right, left, right, np.tile(vec, (len(onsets), 1))


def _render(heart: _Heart, onsets: np.ndarray, kinds: np.ndarray, rr: np.ndarray) -> np.ndarray:
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


def _clean_record(rng: np.random.Generator, heart: _Heart) -> np.ndarray:
    """The 12-lead ECG [1000, 12] of one record of this heart, as the heart makes it."""
    onsets, kinds, rr = _rhythm(rng, heart)
    dipole = _render(heart, onsets, kinds, rr)
    if heart.f_vec is not None:
        dipole += _fibrillation(rng, heart.f_vec)
    return dipole @ heart.leads


def _record(rng: np.random.Generator, ecg: np.ndarray, rec: _Recording) -> np.ndarray:
    """What a dataset's recording chain makes of an ECG: electrode noise, then the amplifier's gain."""
    return (ecg + _recording_noise(rng, rec)) * rec.gain * rng.lognormal(0, 0.08)


def _recording_noise(rng: np.random.Generator, rec: _Recording) -> np.ndarray:
    """Electrode noise [1000, 12]: white noise, baseline wander, muscle bursts, aliased mains residue."""
    n_el = _ELECTRODES.shape[0]
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
    return noise @ _ELECTRODES


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
    """Boolean [n, len(_CONDITIONS)]: independent draws, then clinically exclusive pairs resolved."""
    p = np.array([prevalence.get(c, 0.0) for c in _CONDITIONS])
    has = rng.random((n, len(_CONDITIONS))) < p
    col = {c: i for i, c in enumerate(_CONDITIONS)}
    for dominant, excluded in _EXCLUSIONS:
        has[:, col[excluded]] &= ~has[:, col[dominant]]
    return has


def _labels(has: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Multi-hot uint8 labels of a dataset's classes from the underlying conditions."""
    col = {c: i for i, c in enumerate(_CONDITIONS)}
    labels = np.zeros((len(has), len(classes)), dtype=np.uint8)
    for j, cls in enumerate(classes):
        if cls != "NORM":
            labels[:, j] = has[:, [col[c] for c in _CLASS_CONDITIONS[cls]]].any(axis=1)
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
    if name not in _PROFILES:
        raise ValueError(f"unknown synthetic dataset {name!r}; known: {sorted(_PROFILES)}")
    if n_records < 1:
        raise ValueError(f"n_records must be positive, got {n_records}")
    profile = _PROFILES[name]
    # independent streams, so that leaving the noise out changes nothing else
    cohort_rng, rhythm_rng, noise_rng, split_rng = map(np.random.default_rng, _seed_sequence(name, seed).spawn(4))
    patient = _patients_of_records(cohort_rng, n_records)
    has = _draw_conditions(cohort_rng, profile.prevalence, patient[-1] + 1)
    hearts = [_draw_heart(cohort_rng, frozenset(c for c, present in zip(_CONDITIONS, row) if present)) for row in has]
    signals = np.empty((n_records, N_SAMPLES, N_LEADS), dtype=np.float32)
    for i, p in enumerate(patient):
        signals[i] = _clean_record(rhythm_rng, hearts[p])
        if noise:
            signals[i] = _record(noise_rng, signals[i], profile.recording)
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


def load_synthetic(name: str, n_records: int, seed: int, cache_dir: Path) -> PreparedDataset:
    """``generate`` once per (name, n_records, seed, version), cached as files that later calls memory-map.

    Safe under pytest-xdist: one process generates under a file lock, the others wait and load. The cache
    entry is a folder renamed into place atomically, so a reader sees all of it or none; an entry that
    fails to load (e.g. truncated) is generated again rather than trusted.
    """
    folder = Path(cache_dir) / "synthetic" / f"{name}-n{n_records}-seed{seed}-v{GENERATOR_VERSION}"
    dataset = _read_cache(folder, name)
    if dataset is not None:
        return dataset
    folder.parent.mkdir(parents=True, exist_ok=True)
    with host_lock(folder):
        dataset = _read_cache(folder, name)
        if dataset is None:
            _write_cache(folder, generate(name, n_records, seed))
            dataset = _read_cache(folder, name)
    if dataset is None:
        raise RuntimeError(f"synthetic cache {folder} cannot be read back after writing it")
    return dataset


_META_FIELDS = ("labels", "classes", "record_ids", "patient_ids", "split", "digest")


def _read_cache(folder: Path, name: str) -> PreparedDataset | None:
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
            fingerprints=load_fingerprints(folder / "fingerprints.npz"),  # absent in older entries: regenerated
        )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _write_cache(folder: Path, dataset: PreparedDataset) -> None:
    """Write into a temporary sibling folder, then rename it into place (replacing a broken entry)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        np.save(tmp / "signals.npy", dataset.signals)
        np.savez(tmp / "meta.npz", labels=dataset.labels, classes=np.array(dataset.classes),
                 record_ids=dataset.record_ids, patient_ids=dataset.patient_ids, split=dataset.split,
                 digest=np.array(dataset.digest))
        save_fingerprints(dataset.fingerprints, tmp / "fingerprints.npz")
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
