"""Public collections that repackage the study's datasets, so that a checkpoint's ``pretrained_on = ["CinC2021"]``
is read as what it means: trained on every recording of CPSC2018, Georgia, PTB and PTB-XL (and of sets ecgbench
does not read). The PhysioNet/Computing in Cardiology Challenge 2020 training set holds CPSC2018 and its extra
set, INCART, PTB, PTB-XL and Georgia; the 2021 Challenge adds Chapman-Shaoxing and Ningbo.
"""
from __future__ import annotations

import re

_STUDY_MEMBERS = ("cpsc2018", "georgia", "ptb", "ptbxl")
_CINC2020 = (*_STUDY_MEMBERS, "CPSC2018-extra", "INCART")
_CINC2021 = (*_CINC2020, "Chapman-Shaoxing", "Ningbo")
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "cinc2020": _CINC2020, "physionet2020": _CINC2020, "physionetcinc2020": _CINC2020,
    "cinc2021": _CINC2021, "physionet2021": _CINC2021, "physionetcinc2021": _CINC2021,
}


def _key(name: str) -> str:
    """``PhysioNet/CinC-2021`` -> ``physionetcinc2021``: case, spaces and separators do not matter."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def members(name: str) -> tuple[str, ...]:
    """The datasets ``name`` stands for: a known collection's members (ecgbench's dataset names for those it
    reads), else ``name`` itself."""
    return COLLECTIONS.get(_key(name), (name,))
