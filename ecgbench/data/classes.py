"""The class list of each dataset in the study (Nguyen & Do, 2024), in the paper's order."""
from __future__ import annotations

DATASET_CLASSES: dict[str, tuple[str, ...]] = {
    "ptbxl": ("NORM", "MI", "STTC", "HYP", "CD"),
    "cpsc2018": ("NORM", "AF", "IAVB", "LBBB", "RBBB", "PAC", "VEB", "STD", "STE"),
    "georgia": ("NORM", "AF", "IAVB", "SB", "LAD", "STach", "TAb", "TInv", "LQT", "PAC"),
    "ptb": ("NORM", "MI"),
    "code_test": ("NORM", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"),
}
UPSTREAMS = ("ptbxl", "cpsc2018", "georgia")
DOWNSTREAMS = ("ptbxl", "cpsc2018", "georgia", "ptb", "code_test")
