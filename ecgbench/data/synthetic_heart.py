"""The heart of one synthetic patient: a cardiac dipole whose P, QRS, ST and T waves are smooth bumps of a 3-D
vector, projected onto the 12 leads with the Dower lead vectors (so each condition shows where it shows
clinically)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
ELECTRODES = _electrode_matrix()
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
class Waves:
    """Raised-cosine bumps of the dipole: centres (s after QRS onset), left / right half-widths (s), vectors (mV).

    A bump is exactly zero outside [centre - left, centre + right], so a QRS of duration D spans exactly D.
    """

    centre: np.ndarray
    left: np.ndarray
    right: np.ndarray
    vec: np.ndarray  # [k, 3]


def _waves(*bumps: tuple[float, float, np.ndarray]) -> Waves:
    """Symmetric bumps from (centre, half-width, vector) triples."""
    centre, half, vec = zip(*bumps)
    return Waves(np.array(centre), np.array(half), np.array(half), np.array(vec))


def _join(a: Waves, b: Waves) -> Waves:
    return Waves(*(np.concatenate([x, y]) for x, y in zip(
        (a.centre, a.left, a.right, a.vec), (b.centre, b.left, b.right, b.vec))))


@dataclass(frozen=True)
class Heart:
    """Everything shared by the records of one patient: morphology and diagnoses."""

    conditions: frozenset[str]
    leads: np.ndarray  # [3, 12] with this patient's electrode placement
    p_wave: Waves | None  # sinus P, None in AF
    pac_wave: Waves | None  # P of atrial premature beats
    qrs: Waves
    qrs_s: float
    t_vec: np.ndarray
    t_half: tuple[float, float]  # left / right half-width of T as a fraction of QT
    qtc_s: float
    st_vec: np.ndarray  # ST-segment shift
    ectopic: Waves | None  # QRS of ventricular premature beats
    ectopic_t: np.ndarray | None
    f_vec: np.ndarray | None  # fibrillatory waves (AF)


def _sinus_p(rng: np.random.Generator, pr_s: float, direction: np.ndarray) -> Waves:
    """P wave ending before the QRS: onset exactly ``pr_s`` before QRS onset."""
    half = rng.uniform(0.035, 0.05)
    return _waves((half - pr_s, half, direction * rng.uniform(0.08, 0.2)))


def _narrow_qrs(rng: np.random.Generator, main: np.ndarray, duration: float, terminal: bool) -> Waves:
    """Septal, free-wall and (optionally) basal forces of normal ventricular activation."""
    amp = np.linalg.norm(main)
    septal = _unit(np.array([-0.4, 0.2, 0.9]) + rng.normal(0, 0.15, 3)) * amp * rng.uniform(0.1, 0.25)
    bumps = [(0.2 * duration, 0.2 * duration, septal), (0.5 * duration, 0.28 * duration, main)]
    if terminal:
        basal = _unit(np.array([-0.3, -0.5, -0.6]) + rng.normal(0, 0.2, 3)) * amp * rng.uniform(0.1, 0.3)
        bumps.append((0.8 * duration, 0.2 * duration, basal))
    return _waves(*bumps)


def _rbbb_qrs(rng: np.random.Generator, main: np.ndarray, duration: float) -> tuple[Waves, np.ndarray]:
    """Normal left activation, then a slow rightward-anterior wave: rsR' in V1, wide S in I and V6."""
    left_s = rng.uniform(0.08, 0.095)
    left = _narrow_qrs(rng, main, left_s, terminal=False)
    half = (duration - left_s + rng.uniform(0.015, 0.03)) / 2  # R' starts before left activation ends
    right_dir = _unit(np.array([-0.75, 0.05, 0.65]) + rng.normal(0, 0.1, 3))
    right = right_dir * np.linalg.norm(main) * rng.uniform(0.45, 0.75)
    return _join(left, _waves((duration - half, half, right))), right


def _lbbb_qrs(rng: np.random.Generator, main: np.ndarray, duration: float) -> tuple[Waves, np.ndarray]:
    """Septum activated from the left, slow notched leftward-posterior wave: broad notched R in I, aVL, V6."""
    amp = np.linalg.norm(main) * rng.uniform(1.1, 1.5)
    lv = _unit(np.array([0.75, 0.15 * np.sign(main[1]), -0.65]) + rng.normal(0, 0.1, 3))
    late = _unit(lv + rng.normal(0, 0.15, 3))
    septal = _unit(np.array([0.7, 0.1, -0.3])) * amp * 0.2
    bumps = ((0.12 * duration, 0.12 * duration, septal),
             (0.38 * duration, 0.3 * duration, lv * amp * rng.uniform(0.8, 1.1)),
             (0.7 * duration, 0.3 * duration, late * amp * rng.uniform(0.8, 1.1)))
    return _waves(*bumps), lv * amp


def _ectopic_beat(rng: np.random.Generator, amp: float) -> tuple[Waves, np.ndarray]:
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
    qrs: Waves | None = None


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


def _infarct(rng: np.random.Generator, parts: _Parts, duration: float) -> Waves:
    """MI: the territory's forces are lost, so the early QRS points away from it (pathological Q waves)."""
    parts.infarct = _pick(rng, {"inferior": 0.4, "anterior": 0.4, "lateral": 0.2})
    u = _unit(_group_vector(parts.leads, parts.infarct, 1.0))
    parts.main = parts.main - 0.6 * max(parts.main @ u, 0.0) * u
    half = rng.uniform(0.022, 0.03)
    return _waves((half, half, -_group_vector(parts.leads, parts.infarct, rng.uniform(0.15, 0.5))))


def _conduct(rng: np.random.Generator, conditions: frozenset[str], parts: _Parts, duration: float) -> Waves:
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


def draw_heart(rng: np.random.Generator, conditions: frozenset[str]) -> Heart:
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
    return Heart(
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


def _ectopic_p(rng: np.random.Generator, pr: float, p_dir: np.ndarray) -> Waves:
    """P of an atrial premature beat: from another focus (often inverted in the inferior leads)."""
    direction = -p_dir if rng.random() < 0.5 else _random_unit(rng)
    return _sinus_p(rng, pr * rng.uniform(0.85, 1.05), direction)

