import dataclasses

import pytest

from ecgbench.study import (Cell, enumerate_cells, get_profile, identity_hash, iter_upstream_needs, load_profiles,
                            stable_seed, subset_size)


def test_smoke_grid_is_the_papers_full_grid():
    cells = enumerate_cells(get_profile("smoke"))
    # scratch: 5 downstreams x 6 models x 3 fractions; fine-tune and linear: 12 (upstream, downstream) pairs each.
    assert len(cells) == 90 + 216 + 216 == len(set(cells))
    assert not [c for c in cells if c.upstream == c.downstream]
    assert all((c.upstream is None) == (c.regime == "scratch") for c in cells)
    assert len(list(iter_upstream_needs(cells))) == 3 * 6


def test_cell_keys_and_file_names():
    assert Cell("ptb", "resnet1d18", 0.25, "finetune", 0, "cpsc2018").key == "cpsc2018->ptb-resnet1d18-f0.25-finetune-s0"
    assert Cell("ptb", "gru", 1.0, "scratch", 0).key == "ptb-gru-f1.0-scratch-s0"
    assert Cell("ptb", "gru", 0.05, "linear", 2, "ptbxl").file_stem == "ptbxl_to_ptb-gru-f0.05-linear-s2"


def test_enumeration_is_identical_on_every_call():
    profile = get_profile("paper")
    assert enumerate_cells(profile) == enumerate_cells(profile)
    assert len({c.seed for c in enumerate_cells(profile)}) == 3


def test_profiles_are_strict_about_keys_and_values(tmp_path):
    text = (tmp_path / "p.toml")
    base = """[x]
description = "d"
upstreams = ["ptbxl"]
downstreams = ["ptb"]
models = ["gru"]
fractions = [0.5]
regimes = ["scratch"]
seeds = 1
synthetic_records = { ptbxl = 10, ptb = 10 }
pretrain = { epochs = 1, batch_size = 4, lr = 0.1 }
train = { epochs = 1, batch_size = 4, lr = 0.1 }
"""
    text.write_text(base)
    assert load_profiles(text)["x"].train.patience == 0
    text.write_text(base + "colour = 'red'\n")
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        load_profiles(text)
    text.write_text(base.replace("fractions = [0.5]", "fractions = [1.5]"))
    with pytest.raises(ValueError, match="fraction 1.5 not in"):
        load_profiles(text)
    text.write_text(base.replace("ptbxl = 10, ", ""))
    with pytest.raises(ValueError, match=r"synthetic_records lacks \['ptbxl'\]"):
        load_profiles(text)


def test_seeds_and_hashes_are_stable_and_discriminating():
    assert stable_seed("a", 1) == stable_seed("a", 1) != stable_seed("a", 2)
    assert identity_hash({"a": 1, "b": 2}) == identity_hash({"b": 2, "a": 1}) != identity_hash({"a": 1, "b": 3})
    assert subset_size(100, 0.05) == 5 and subset_size(10, 0.05) == 1 and subset_size(7, 1.0) == 7


def test_with_seeds_changes_only_the_seed_count():
    p = get_profile("smoke")
    assert dataclasses.replace(p.with_seeds(3), seeds=1) == p
