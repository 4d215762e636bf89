"""Every axis of the grid is selectable on its own: each selection the README documents collects exactly the
intended tasks of the smoke profile (all 522 cells)."""
import pytest

from ecgbench.cluster.selection import collect_selection
from ecgbench.study import Cell, enumerate_cells, get_profile

SMOKE = enumerate_cells(get_profile("smoke"))


def _selected(*args: str) -> set[Cell]:
    return set(collect_selection(["--ecg-profile", "smoke", *args]).cells)


@pytest.mark.parametrize("args, wanted", [
    (("-m", "from_ptbxl and to_cpsc2018"), lambda c: c.upstream == "ptbxl" and c.downstream == "cpsc2018"),
    (("-k", "from_ptbxl and to_cpsc2018 and finetune"),
     lambda c: (c.upstream, c.downstream, c.regime) == ("ptbxl", "cpsc2018", "finetune")),
    (("-m", "to_ptb"), lambda c: c.downstream == "ptb"),
    (("-m", "model_resnet1d18 and scratch"), lambda c: c.model == "resnet1d18" and c.regime == "scratch"),
    (("-m", "from_georgia and linear and model_gru"),
     lambda c: (c.upstream, c.regime, c.model) == ("georgia", "linear", "gru")),
    (("-k", "resnet and f0.05"), lambda c: c.model.startswith("resnet") and c.fraction == 0.05),
], ids=["m-direction", "k-direction-regime", "m-ptb-not-ptbxl", "m-model-regime", "m-upstream-regime-model",
        "k-family-fraction"])
def test_a_documented_selection_collects_exactly_its_cells(args, wanted):
    expected = {c for c in SMOKE if wanted(c)}
    assert expected and _selected(*args) == expected


def test_a_transfer_direction_selects_one_direction_not_both():
    cells = _selected("-m", "from_cpsc2018 and to_ptbxl and finetune")
    assert cells and {(c.upstream, c.downstream) for c in cells} == {("cpsc2018", "ptbxl")}


def test_axis_markers_are_declared_so_strict_markers_accepts_them():
    assert len(_selected("--strict-markers", "-m", "seed_0 and to_georgia")) == sum(
        c.downstream == "georgia" for c in SMOKE)
