"""The random-feature control: upstream ``random`` is each model's own frozen initialisation, linear probes only,
and the leaderboard sets every upstream's linear probe beside it with a paired interval."""
import dataclasses

import pytest
import tiny_model  # noqa: F401  registers tinycnn
import torch

from ecgbench.profiles import _validate
from ecgbench.results.random_control import random_control_pairs
from ecgbench.results.report import build_report
from ecgbench.study import Cell, ProfileError, enumerate_cells, enumerate_transferability, pretrainings_of

TINY = tiny_model.NAME


@pytest.fixture
def control_profile(smoke_profile):
    return dataclasses.replace(smoke_profile, upstreams=("ptbxl", "random"), downstreams=("ptb",), models=(TINY,),
                               fractions=(1.0,), seeds=2)


def test_random_has_linear_cells_only_and_nothing_to_pretrain(control_profile):
    cells = enumerate_cells(control_profile)
    random_cells = [c for c in cells if c.upstream == "random"]
    assert {c.regime for c in random_cells} == {"linear"} and len(random_cells) == 2
    assert [c.key for c in random_cells] == ["random->ptb-tinycnn-f1.0-linear-s0", "random->ptb-tinycnn-f1.0-linear-s1"]
    assert {n.upstream for n in pretrainings_of(cells)} == {"ptbxl"}
    assert {t.upstream for t in enumerate_transferability(control_profile)} == {"ptbxl", "random"}


@pytest.mark.parametrize("changes, message", [
    ({"regimes": ("scratch", "finetune")}, "'random' has linear-probe cells only"),
    ({"downstreams": ("ptb", "random")}, "downstreams: 'random' is an upstream"),
])
def test_random_misused_in_a_profile_is_refused(control_profile, changes, message):
    with pytest.raises(ProfileError, match=message):
        _validate(dataclasses.replace(control_profile, **changes), "my.toml")


def test_a_random_probe_trains_only_the_new_layer_on_the_frozen_initialisation(make_runner, control_profile):
    study = make_runner(profile=control_profile)
    cell = Cell("ptb", TINY, 1.0, "linear", 0, "random")
    init = study.upstream_checkpoint("random", TINY, 0)[0]
    rebuilt = study.upstream_checkpoint("random", TINY, 0)[0]["state_dict"]
    assert all(torch.equal(value, rebuilt[name]) for name, value in init["state_dict"].items())
    other_seed = study.upstream_checkpoint("random", TINY, 1)[0]["state_dict"]
    first = next(iter(init["state_dict"]))  # a backbone weight (tinycnn of the tests or of the demo package)
    assert first.startswith("backbone.") and not torch.equal(init["state_dict"][first], other_seed[first])
    model, cost = study.initial_model(cell)
    assert cost == {"pretrain_s": 0.0, "pretrain_built_here": False}
    assert torch.equal(model.state_dict()[first], init["state_dict"][first])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    record = study.run(cell)
    assert record["status"] == "ok", record["error"]
    assert record["identity"]["checkpoint_id"] == study.checkpoint_id("random", TINY, 0)
    assert study.checkpoint_id("random", TINY, 0) != study.checkpoint_id("random", TINY, 1)
    again = make_runner("again", profile=control_profile).run(cell)
    assert again["test"] == record["test"] and again["cell_id"] == record["cell_id"]  # same seed, same numbers


def test_the_leaderboard_sets_each_linear_probe_beside_the_random_control(make_runner, control_profile, tmp_path):
    study = make_runner(profile=control_profile)
    records = [study.run(c) for c in enumerate_cells(control_profile)]
    assert all(r["status"] == "ok" for r in records), [r["error"] for r in records if r["error"]]
    pairs = random_control_pairs(records)
    assert [p.keys for p in pairs] == [(f"ptbxl->ptb-tinycnn-f1.0-linear-s{s}", f"random->ptb-tinycnn-f1.0-linear-s{s}")
                                       for s in (0, 1)]
    text = build_report(records, tmp_path / "out", n_resamples=50)[0].read_text()
    section = text.split("## Pre-trained vs random features (linear probe)")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| ptb "))
    cols = [c.strip() for c in row.strip("|").split("|")]
    assert cols[:5] == ["ptb", "ptbxl", "1", TINY, "2"]
    gain = sum(p.gain() for p in pairs) / 2
    assert cols[5].startswith(f"{gain:+.3f} [")  # the point is the mean paired difference over seeds
    assert "linear ← random" in text and "model input" in text and f"{TINY}: 100 Hz x 10 s, 12 leads" in text


def test_a_run_without_the_control_has_no_such_section(make_runner, control_profile, tmp_path):
    study = make_runner(profile=control_profile)
    records = [study.run(Cell("ptb", TINY, 1.0, "scratch", 0))]
    assert "random features" not in build_report(records, tmp_path / "out", n_resamples=20)[0].read_text()
