"""The synthetic stand-ins of the study's datasets: the conditions a patient may have, how each dataset labels
them, how common each is there, and each dataset's recording chain (the domain shift between stand-ins)."""
from __future__ import annotations

from dataclasses import dataclass

# ----------------------------------------------------------------------------------------------------------
# Conditions and how each dataset labels them
# ----------------------------------------------------------------------------------------------------------
CONDITIONS = (
    "AF", "SB", "STach", "IAVB", "PAC", "VEB", "RBBB", "LBBB", "LAD", "HYP", "MI", "STE", "STD", "TInv", "TAb", "LQT",
)
# (dominant, excluded): a patient drawn with both keeps only the dominant one.
EXCLUSIONS = (
    ("AF", "SB"), ("AF", "STach"), ("AF", "IAVB"), ("AF", "PAC"), ("SB", "STach"),
    ("RBBB", "LBBB"), ("STE", "STD"), ("TInv", "TAb"),
)
# A class is positive when the record has any of its conditions; NORM when it has none of its dataset's
# other classes (so a code_test NORM may carry an unlabelled PAC, as in the real CODE-test).
CLASS_CONDITIONS: dict[str, tuple[str, ...]] = {
    "MI": ("MI",), "HYP": ("HYP",), "AF": ("AF",), "IAVB": ("IAVB",), "1dAVb": ("IAVB",),
    "LBBB": ("LBBB",), "RBBB": ("RBBB",), "PAC": ("PAC",), "VEB": ("VEB",), "STD": ("STD",),
    "STE": ("STE",), "SB": ("SB",), "LAD": ("LAD",), "STach": ("STach",), "ST": ("STach",),
    "TAb": ("TAb",), "TInv": ("TInv",), "LQT": ("LQT",),
    "STTC": ("STE", "STD", "TInv", "TAb", "LQT"),
    "CD": ("RBBB", "LBBB", "IAVB", "LAD"),
}


@dataclass(frozen=True)
class Recording:
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
    recording: Recording


STANDINS: dict[str, _Profile] = {
    # PTB-XL superclasses ignore rhythm, so AF / SB / STach / PAC / VEB occur unlabelled.
    "ptbxl": _Profile(
        {"MI": 0.20, "HYP": 0.10, "STE": 0.04, "STD": 0.08, "TInv": 0.06, "TAb": 0.05, "LQT": 0.03,
         "RBBB": 0.07, "LBBB": 0.03, "IAVB": 0.05, "LAD": 0.07,
         "AF": 0.05, "SB": 0.06, "STach": 0.05, "PAC": 0.03, "VEB": 0.03},
        Recording(noise_mv=0.012, wander_mv=0.10, emg_share=0.10, mains_hz=50.0, mains_mv=0.0, gain=1.00),
    ),
    "cpsc2018": _Profile(
        {"AF": 0.16, "IAVB": 0.10, "LBBB": 0.04, "RBBB": 0.17, "PAC": 0.08, "VEB": 0.09, "STD": 0.11, "STE": 0.04},
        Recording(noise_mv=0.020, wander_mv=0.20, emg_share=0.20, mains_hz=50.0, mains_mv=0.01, gain=1.10),
    ),
    # Georgia also holds bundle-branch blocks and ST depression that the study's ten classes leave out.
    "georgia": _Profile(
        {"AF": 0.06, "IAVB": 0.07, "SB": 0.13, "LAD": 0.09, "STach": 0.11, "TAb": 0.15, "TInv": 0.08,
         "LQT": 0.09, "PAC": 0.06, "RBBB": 0.03, "STD": 0.03, "HYP": 0.04},
        Recording(noise_mv=0.016, wander_mv=0.15, emg_share=0.15, mains_hz=60.0, mains_mv=0.015, gain=0.90),
    ),
    # PTB Diagnostic: MI patients outnumber healthy controls.
    "ptb": _Profile(
        {"MI": 0.60},
        Recording(noise_mv=0.008, wander_mv=0.06, emg_share=0.05, mains_hz=50.0, mains_mv=0.0, gain=1.20),
    ),
    # CODE-test: NORM means none of the six, so other findings occur under NORM.
    "code_test": _Profile(
        {"IAVB": 0.045, "RBBB": 0.05, "LBBB": 0.04, "SB": 0.035, "AF": 0.035, "STach": 0.05,
         "PAC": 0.03, "VEB": 0.03, "LAD": 0.05, "HYP": 0.03, "MI": 0.03, "TInv": 0.03, "TAb": 0.04, "STD": 0.02},
        Recording(noise_mv=0.028, wander_mv=0.25, emg_share=0.25, mains_hz=60.0, mains_mv=0.02, gain=0.95),
    ),
}
