"""Every axis of the grid is selectable on its own: each selection the README documents collects exactly the
intended tasks of the smoke profile (all 522 cells)."""
import shlex
from pathlib import Path

import pytest

from ecgbench.cluster.selection import collect_selection
from ecgbench.study import Cell, enumerate_cells, enumerate_transferability, get_profile, pretrainings_of

SMOKE = enumerate_cells(get_profile("smoke"))
SMOKE_SCORES = enumerate_transferability(get_profile("smoke"))
README = Path(__file__).parents[1] / "README.md"


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


def _readme_selections() -> list[tuple[str, ...]]:
    """The -k/-m selections of every ``pytest benchmarks`` command in the README, as written there."""
    found = []
    for line in README.read_text().splitlines():
        if not line.startswith("pytest benchmarks "):
            continue
        words = shlex.split(line.split("#", 1)[0])
        selection = tuple(w for i, w in enumerate(words) if w in ("-k", "-m") or words[i - 1] in ("-k", "-m"))
        if selection:
            found.append(selection)
    return found


# What each README selection must collect of the smoke grid: cells, score tasks, pre-training cases.
README_SELECTIONS = {
    ("-k", "resnet"): (lambda c: c.model.startswith("resnet"), lambda t: t.model.startswith("resnet"),
                       lambda p: p.model.startswith("resnet")),
    ("-m", "from_ptbxl and to_cpsc2018"): (lambda c: (c.upstream, c.downstream) == ("ptbxl", "cpsc2018"),
                                           lambda t: (t.upstream, t.downstream) == ("ptbxl", "cpsc2018"), None),
    ("-m", "to_ptb and finetune"): (lambda c: (c.downstream, c.regime) == ("ptb", "finetune"), None, None),
    ("-m", "model_lstm and scratch and seed_0"): (lambda c: (c.model, c.regime, c.seed) == ("lstm", "scratch", 0),
                                                  None, None),
    ("-k", "f0.05"): (lambda c: c.fraction == 0.05, lambda t: t.fraction == 0.05, None),
    ("-k", "resnet1d18"): (lambda c: c.model == "resnet1d18", lambda t: t.model == "resnet1d18",
                           lambda p: p.model == "resnet1d18"),
    ("-m", "transferability and to_ptb and model_lstm"): (None, lambda t: (t.downstream, t.model) == ("ptb", "lstm"),
                                                          None),
}


def test_the_readme_documents_only_selections_checked_here():
    documented = _readme_selections()
    assert len(documented) >= 5 and set(documented) <= set(README_SELECTIONS), set(documented) - set(README_SELECTIONS)
    assert "transferability and to_ptb and model_lstm" in README.read_text()


@pytest.mark.parametrize("selection", list(README_SELECTIONS), ids=lambda s: " ".join(s))
def test_each_readme_selection_collects_exactly_its_cells_scores_and_checkpoints(selection):
    cell_rule, score_rule, pretrain_rule = README_SELECTIONS[selection]
    collected = collect_selection(["--ecg-profile", "smoke", *selection])
    pretrainings = list(pretrainings_of(SMOKE))
    assert set(collected.cells) == {c for c in SMOKE if cell_rule and cell_rule(c)}
    assert set(collected.scores) == {t for t in SMOKE_SCORES if score_rule and score_rule(t)}
    assert set(collected.pretrainings) == {p for p in pretrainings if pretrain_rule and pretrain_rule(p)}
    assert collected.cells or collected.scores
