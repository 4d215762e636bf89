import dataclasses

import pytest

from ecgbench.cli import main
from ecgbench.study import (
    Cell,
    ProfileError,
    enumerate_cells,
    get_profile,
    identity_hash,
    load_profiles,
    pretrainings_of,
    stable_seed,
    subset_size,
)

PROFILE_BASE = """[x]
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


def test_smoke_grid_is_the_papers_full_grid():
    cells = enumerate_cells(get_profile("smoke"))
    # scratch: 5 downstreams x 6 models x 3 fractions; fine-tune and linear: 12 (upstream, downstream) pairs each.
    assert len(cells) == 90 + 216 + 216 == len(set(cells))
    assert not [c for c in cells if c.upstream == c.downstream]
    assert all((c.upstream is None) == (c.regime == "scratch") for c in cells)
    assert len(list(pretrainings_of(cells))) == 3 * 6


def test_cell_keys_and_file_names():
    cell = Cell("ptb", "resnet1d18", 0.25, "finetune", 0, "cpsc2018")
    assert cell.key == "cpsc2018->ptb-resnet1d18-f0.25-finetune-s0"
    assert Cell("ptb", "gru", 1.0, "scratch", 0).key == "ptb-gru-f1.0-scratch-s0"
    assert Cell("ptb", "gru", 0.05, "linear", 2, "ptbxl").file_stem == "ptbxl_to_ptb-gru-f0.05-linear-s2"


def test_enumeration_is_identical_on_every_call():
    profile = get_profile("paper")
    assert enumerate_cells(profile) == enumerate_cells(profile)
    assert len({c.seed for c in enumerate_cells(profile)}) == 3


def test_profiles_are_strict_about_keys_and_values(tmp_path):
    text = (tmp_path / "p.toml")
    base = PROFILE_BASE
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


@pytest.mark.parametrize("old, new, message", [
    ("\ntrain = { epochs = 1,", "\ntrain = { epochs = 0,", "[x] train epochs: must be an integer >= 1, got 0"),
    ("\ntrain = { epochs = 1,", "\ntrain = { epochs = 2.5,", "[x] train epochs: must be an integer >= 1, got 2.5"),
    ("pretrain = { epochs = 1, batch_size = 4", "pretrain = { epochs = 1, batch_size = -1",
     "[x] pretrain batch_size: must be an integer >= 1, got -1"),
    ("lr = 0.1 }\ntrain", "lr = 'fast' }\ntrain", "[x] pretrain lr: must be a finite number > 0, got 'fast'"),
    ("\ntrain = { epochs = 1, batch_size = 4, lr = 0.1 }", "\ntrain = { epochs = 1, batch_size = 4, lr = 0 }",
     "[x] train lr: must be a finite number > 0, got 0"),
    ("seeds = 1", 'seeds = 1\nhead_policy = "whole"',
     "[x]: head_policy: unknown head_policy 'whole' (known: last_layer, head)"),
    ("seeds = 1", "seeds = 1\nhead_policy = 2", "[x] head_policy: must be a string, got 2"),
    ("lr = 0.1 }\ntrain", "lr = inf }\ntrain", "[x] pretrain lr: must be a finite number > 0, got inf"),
    ("fractions = [0.5]", "fractions = [0.5, 0.5]", "[x]: fractions: names a value twice: [0.5, 0.5]"),
    ("ptb = 10 }", "ptb = 10, ptbxll = 5 }", "[x]: synthetic_records: unknown dataset 'ptbxll'"),
    ("[x]", '[""]', "profile name '': a profile name is letters, digits"),
    ("[x]", '["../../escape"]', "profile name '../../escape': a profile name is letters, digits and . _ -"),
    ('upstreams = ["ptbxl"]\ndownstreams = ["ptb"]\nmodels = ["gru"]\nfractions = [0.5]\nregimes = ["scratch"]',
     'upstreams = []\ndownstreams = ["ptb"]\nmodels = ["gru"]\nfractions = [0.5]\nregimes = ["finetune"]',
     "[x]: the grid has no cell: no scratch regime, and no upstream other than a downstream"),
    ("seeds = 1", "seeds = -3", "[x] seeds: must be an integer >= 1, got -3"),
    ("seeds = 1", "seeds = 1.5", "[x] seeds: must be an integer >= 1, got 1.5"),
    ("seeds = 1", "seeds = true", "[x] seeds: must be an integer >= 1, got True"),
    ("seeds = 1", "seeds = 10000", "[x] seeds: 10000 seeds is more than the 1000"),
    ('models = ["gru"]', "models = []", "[x] models: must be a non-empty list of names, got []"),
    ('models = ["gru"]', 'models = "gru"', "[x] models: must be a non-empty list of names, got 'gru'"),
    ('models = ["gru"]', 'models = ["gru", "gru"]', "[x] models: names a value twice"),
    ('downstreams = ["ptb"]', "downstreams = []", "[x] downstreams: must be a non-empty list"),
    ("fractions = [0.5]", "fractions = []", "[x] fractions: must be a non-empty list"),
    ("fractions = [0.5]", 'fractions = ["half"]', "[x] fractions: must be a finite number > 0, got 'half'"),
    ("ptb = 10 }", "ptb = 0 }", "[x] synthetic_records.ptb: must be an integer >= 1, got 0"),
    ('description = "d"', "description = 3", "[x] description: must be a string, got 3"),
    ('downstreams = ["ptb"]', 'downstreams = ["mine"]', "unknown dataset 'mine' (registered:"),
    ("[x]", "foo = 1\n[x]", "top-level key 'foo' = 1 is no profile"),
    ("\ntrain = { epochs = 1, batch_size = 4, lr = 0.1 }", "\ntrain = 3", "[x] train: expected a table, got 3"),
])
def test_profile_values_are_checked_at_load_naming_file_profile_and_key(tmp_path, old, new, message):
    path = tmp_path / "bad.toml"
    assert old in PROFILE_BASE
    path.write_text(PROFILE_BASE.replace(old, new, 1))
    with pytest.raises(ProfileError) as info:
        load_profiles(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_an_absurdly_large_grid_is_refused_before_collection(tmp_path):
    path = tmp_path / "big.toml"
    path.write_text(PROFILE_BASE.replace("fractions = [0.5]", "fractions = [" + ", ".join(
        f"0.{i:03d}" for i in range(1, 100)) + "]").replace("seeds = 1", "seeds = 600"))
    with pytest.raises(ProfileError, match=r"the grid has up to 59400 cells .* more than the 50000"):
        load_profiles(path)
    with pytest.raises(ProfileError, match="10000 seeds is more than the 1000"):
        get_profile("smoke").with_seeds(10000)


def test_bad_profile_values_are_a_usage_error_in_pytest_and_the_cli(pytester, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(PROFILE_BASE.replace("seeds = 1", "seeds = 0"))
    result = pytester.runpytest("--ecg-profiles", str(path), "--ecg-profile", "x", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{path} [[]x[]] seeds: must be an integer >= 1, got 0*"])
    assert main(["grid", "--profiles", str(path), "--profile", "x"]) == 2
    assert f"{path} [x] seeds: must be an integer >= 1" in capsys.readouterr().err
    assert main(["status", "--profiles", str(path), "--profile", "x", "--results", str(tmp_path)]) == 2
