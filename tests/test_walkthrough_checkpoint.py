"""The README walkthrough "does my pre-trained model help on my data?", end to end through an installed package:
``tests/thirdparty`` registers an architecture of its own input (``tinycnn250``, 250 Hz x 8 s) and ships its
pre-trained weights as the checkpoint ``demo_ssl`` (entry point group ``ecgbench.checkpoints``); the user's data
are demo_down's WFDB records. A profile with that checkpoint, PTB-XL (a copy on disk in its own format) and
``random`` as upstreams runs the pytest grid; the leaderboard and ``ecgbench transferability`` rank all three.

scripts/quickstart.sh installs the package into a throw-away folder on the tests' PYTHONPATH, as for
tests/test_own_data.py."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from data_fixtures import PtbxlRow, write_ptbxl

from ecgbench import cli

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # wfdb's own pandas calls
demo = pytest.importorskip("ecgbench_demo_ext", reason="pip install --target DIR ./tests/thirdparty; DIR on PYTHONPATH")

PROFILE = """[mine]
description = "does my pre-trained model help on my data?"
upstreams = ["demo_ssl", "ptbxl", "random"]
downstreams = ["demo_down"]
models = ["tinycnn250"]
fractions = [1.0]
regimes = ["scratch", "finetune", "linear"]
seeds = 1
synthetic_records = { ptbxl = 60 }  # a stand-in only where no PTB-XL files are given
pretrain = { epochs = 1, batch_size = 16, lr = 0.003 }
train = { epochs = 2, batch_size = 16, lr = 0.003 }
"""
PTBXL_CODES = ({"NORM": 100.0}, {"IMI": 100.0}, {"NDT": 100.0}, {"LVH": 100.0}, {"CLBBB": 100.0})


@pytest.fixture(scope="module")
def my_data(tmp_path_factory) -> Path:
    """The user's --ecg-data folder: demo_up (what demo_ssl was pre-trained on, as its pretrain module wrote it),
    demo_down (the user's data) and a 50-record PTB-XL copy in PTB-XL's own layout, at 500 and 100 Hz."""
    root = tmp_path_factory.mktemp("my-data")
    demo.write_records(root / "demo_up", ("A", "B", "C"), 60, 1, with_split=False)
    demo.write_records(root / "demo_down", ("A", "C"), 40, 2, with_split=True)
    write_ptbxl(root, [PtbxlRow(i, 1000 + i, PTBXL_CODES[i % 5], i % 10 + 1) for i in range(1, 51)], rates=(500, 100))
    return root


def test_the_package_ships_its_checkpoint_as_checkpoint_new_writes_it(tmp_path, capsys):
    shipped = Path(demo.DEMO_SSL)
    assert cli.main(["checkpoints"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| demo_ssl "))
    assert [c.strip() for c in row.strip("|").split("|")][:4] == ["demo_ssl", "tinycnn250", "250 Hz x 8 s, 12 leads",
                                                                   "demo_up"]
    assert "ecgbench-demo-ext" in row  # registered by the package's entry point, no --ecg-checkpoint
    table = tomllib.loads(shipped.read_text())
    out = tmp_path / "demo_ssl.toml"
    assert cli.main(["checkpoint", "new", "demo_ssl", "--model", "tinycnn250",
                     "--weights", str(shipped.parent / table["weights"]), "--pretrained-on", "demo_up",
                     "--licence", table["licence"], "--citation", table["citation"],
                     "--description", table["description"], "--out", str(out)]) == 0
    assert "input 250 Hz x 8 s, 12 leads; pre-trained on demo_up" in capsys.readouterr().out
    written = tomllib.loads(out.read_text())
    assert Path(written.pop("weights")) == shipped.parent / table.pop("weights")
    assert written == table


def test_weights_pretrained_as_the_package_says_are_accepted_by_checkpoint_new(tmp_path, capsys):
    from ecgbench_demo_ext.pretrain import pretrain

    weights = pretrain(tmp_path / "again.pt")
    assert cli.main(["checkpoint", "new", "again", "--model", "tinycnn250", "--weights", str(weights),
                     "--pretrained-on", "demo_up", "--out", str(tmp_path / "again.toml")]) == 0
    assert tomllib.loads((tmp_path / "again.toml").read_text())["outputs"] == 3


def test_my_checkpoint_meets_ptbxl_and_random_in_the_grid_leaderboard_and_ranking(my_data, tmp_path, capsys):
    (tmp_path / "my.toml").write_text(PROFILE)
    results = tmp_path / "reports" / "mine" / "results"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "ecgbench.grid",
                          "--ecg-profiles", "my.toml", "--ecg-profile", "mine", "--ecg-data", str(my_data),
                          "--ecg-cache", str(tmp_path / "cache"), "-rA"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = sorted(line.split("::")[-1] for line in run.stdout.splitlines() if line.startswith("PASSED"))
    assert passed == sorted(["test_cell[demo_ssl->demo_down-tinycnn250-f1.0-finetune-s0]",
                             "test_cell[demo_ssl->demo_down-tinycnn250-f1.0-linear-s0]",
                             "test_cell[demo_down-tinycnn250-f1.0-scratch-s0]",
                             "test_cell[ptbxl->demo_down-tinycnn250-f1.0-finetune-s0]",
                             "test_cell[ptbxl->demo_down-tinycnn250-f1.0-linear-s0]",
                             "test_cell[random->demo_down-tinycnn250-f1.0-linear-s0]",
                             "test_pretrain[pretrain-ptbxl-tinycnn250-s0]",  # demo_ssl, random: given, never trained
                             "test_transferability[demo_ssl->demo_down-tinycnn250-f1.0-s0]",
                             "test_transferability[ptbxl->demo_down-tinycnn250-f1.0-s0]",
                             "test_transferability[random->demo_down-tinycnn250-f1.0-s0]"])
    board = (results.parent / "leaderboard.md").read_text()
    assert "fine-tune ← demo_ssl" in board and "linear ← random" in board
    assert "tinycnn250: 250 Hz x 8 s, 12 leads" in board
    probes = board.split("## Pre-trained vs random features (linear probe)")[1].split("\n## ")[0]
    assert {line.split("|")[2].strip() for line in probes.splitlines() if line.startswith("| demo_down ")} == \
        {"ptbxl", "demo_ssl"}  # each upstream's linear probe beside the random control
    overlap = board.split("## Overlap")[1].split("\n## ")[0]
    assert "demo_ssl" in overlap and "none found" in overlap  # checked against demo_up, its pretrained_on
    capsys.readouterr()
    assert cli.main(["transferability", "--downstream", "demo_down", "--profiles", str(tmp_path / "my.toml"),
                     "--profile", "mine", "--results", str(results), "--cache", str(tmp_path / "cache"),
                     "--data", str(my_data)]) == 0
    ranking = capsys.readouterr().out
    assert all(name in ranking for name in ("demo_ssl", "ptbxl", "random")), ranking
