"""The README walkthrough "does my pre-trained model help on my data?", end to end: a user's architecture with
its own input (200 Hz x 5 s), its pre-trained weights through ``ecgbench checkpoint new``, a profile with that
checkpoint, PTB-XL and ``random`` as upstreams, the pytest grid, the leaderboard and ``ecgbench transferability``."""
import torch
from tiny_model import TINY_MODEL_CONFTEST, build_tiny, import_what_training_imports

from ecgbench import cli
from ecgbench.checkpoints import CHECKPOINTS
from ecgbench.models import MODELS, build_model, register_model

MODEL = "tiny200"
CONFTEST = TINY_MODEL_CONFTEST + f"""

if "{MODEL}" not in MODELS.names():
    register_model("{MODEL}", build_tiny, "cnn", rate_hz=200, seconds=5)
"""
if MODEL not in MODELS.names():
    register_model(MODEL, build_tiny, "cnn", rate_hz=200, seconds=5)
import_what_training_imports()

PROFILE = f"""[mine]
description = "does my pre-trained model help on my data?"
upstreams = ["myssl", "ptbxl", "random"]
downstreams = ["ptb"]
models = ["{MODEL}"]
fractions = [1.0]
regimes = ["scratch", "finetune", "linear"]
seeds = 1
synthetic_records = {{ ptbxl = 60, ptb = 60 }}
pretrain = {{ epochs = 1, batch_size = 16, lr = 0.003 }}
train = {{ epochs = 2, batch_size = 16, lr = 0.003 }}
"""


def test_a_given_checkpoint_meets_ptbxl_and_random_in_the_grid_report_and_ranking(pytester, data_cache, capsys):
    torch.manual_seed(0)
    torch.save(build_model(MODEL, 5).state_dict(), pytester.path / "myssl.pt")
    manifest = pytester.path / "myssl.toml"
    try:
        assert cli.main(["checkpoint", "new", "myssl", "--model", MODEL, "--weights", str(pytester.path / "myssl.pt"),
                         "--pretrained-on", "unknown", "--out", str(manifest)]) == 0
        assert "input 200 Hz x 5 s, 12 leads" in capsys.readouterr().out
        pytester.makeconftest(CONFTEST)
        pytester.makepyfile(test_grid=_grid_module())
        (pytester.path / "my.toml").write_text(PROFILE)
        results = pytester.path / "reports" / "mine" / "results"
        args = ["--ecg-profiles", "my.toml", "--ecg-profile", "mine", "--ecg-checkpoint", str(manifest),
                "--ecg-cache", str(data_cache), "--ecg-results", str(results), "-p", "no:cacheprovider"]
        collected = pytester.runpytest("--collect-only", "-q", *args)
        ids = [line.split("::")[-1] for line in collected.outlines if "::" in line]
        assert ids == ["test_pretrain[pretrain-ptbxl-tiny200-s0]",  # myssl and random are given, never trained
                       "test_cell[ptb-tiny200-f1.0-scratch-s0]",
                       "test_cell[myssl->ptb-tiny200-f1.0-finetune-s0]",
                       "test_cell[ptbxl->ptb-tiny200-f1.0-finetune-s0]",
                       "test_cell[myssl->ptb-tiny200-f1.0-linear-s0]", "test_cell[ptbxl->ptb-tiny200-f1.0-linear-s0]",
                       "test_cell[random->ptb-tiny200-f1.0-linear-s0]",
                       "test_transferability[myssl->ptb-tiny200-f1.0-s0]",
                       "test_transferability[ptbxl->ptb-tiny200-f1.0-s0]",
                       "test_transferability[random->ptb-tiny200-f1.0-s0]"]
        run = pytester.runpytest(*args)
        run.assert_outcomes(passed=10)
        board = (results.parent / "leaderboard.md").read_text()
        assert "fine-tune ← myssl" in board and "linear ← random" in board
        assert "tiny200: 200 Hz x 5 s, 12 leads" in board
        section = board.split("## Pre-trained vs random features (linear probe)")[1].split("\n## ")[0]
        assert {line.split("|")[2].strip() for line in section.splitlines() if line.startswith("| ptb ")} == \
            {"ptbxl", "myssl"}  # each upstream's linear probe beside the random control
        capsys.readouterr()
        assert cli.main(["transferability", "--downstream", "ptb", "--profiles", str(pytester.path / "my.toml"),
                         "--profile", "mine", "--results", str(results), "--cache", str(data_cache),
                         "--ecg-checkpoint", str(manifest)]) == 0
        ranking = capsys.readouterr().out
        assert all(name in ranking for name in ("myssl", "ptbxl", "random")), ranking
    finally:
        CHECKPOINTS._items.pop("myssl", None)
        CHECKPOINTS._origins.pop("myssl", None)


def _grid_module() -> str:
    from importlib import resources

    return resources.files("ecgbench").joinpath("grid/test_grid.py").read_text()
