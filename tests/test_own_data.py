"""A researcher's own datasets and models (issue 12): entry points of a third-party package, manifests written by
``ecgbench data new``, the wfdb/array formats, and the errors for each bad input of docs/bad-inputs.md.

The package is ``tests/thirdparty`` (``pip install ./tests/thirdparty``, done by scripts/quickstart.sh)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgbench.cli import main
from ecgbench.data.loaders.labelled import ArrayLoader
from ecgbench.data.manifest import DataError, load_manifest
from ecgbench.data.registry import checked_manifest
from ecgbench.entrypoints import EntryPointError
from ecgbench.registry import Registry

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # wfdb's own pandas calls
demo = pytest.importorskip("ecgbench_demo_ext", reason="pip install ./tests/thirdparty (scripts/quickstart.sh does)")

PROFILE = """[own]
description = "a user's model on a user's datasets"
upstreams = ["demo_up"]
downstreams = ["demo_down"]
models = ["tinycnn"]
fractions = [1.0]
regimes = ["scratch", "finetune"]
seeds = 1
synthetic_records = {}
pretrain = { epochs = 1, batch_size = 16, lr = 0.01 }
train = { epochs = 2, batch_size = 16, lr = 0.01 }
"""


@pytest.fixture(scope="module")
def own_data(tmp_path_factory) -> Path:
    """demo_up (3 classes, stratified split) and demo_down (2 classes, the CSV's split): WFDB 212, 250 Hz, 8 s."""
    root = tmp_path_factory.mktemp("own-data")
    demo.write_records(root / "demo_up", ("A", "B", "C"), 60, 1, with_split=False)
    demo.write_records(root / "demo_down", ("A", "C"), 40, 2, with_split=True)
    return root


def _pytest(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_entry_points_register_the_packages_model_and_datasets(capsys):
    from ecgbench.data import DATASETS, get_manifest
    from ecgbench.models import MODELS, model_family

    assert model_family("tinycnn") == "cnn" and "ecgbench-demo-ext" in MODELS.origin("tinycnn")
    assert get_manifest("demo_up").classes == ("A", "B", "C") and "ecgbench-demo-ext" in DATASETS.origin("demo_up")
    assert main(["models"]) == 0 and "tinycnn" in capsys.readouterr().out
    assert main(["datasets"]) == 0 and "demo_down" in capsys.readouterr().out


def test_own_cells_run_end_to_end_and_reach_the_leaderboard(own_data, tmp_path, capsys):
    (tmp_path / "own.toml").write_text(PROFILE)
    assert main(["grid", "--profiles", str(tmp_path / "own.toml"), "--profile", "own", "--list"]) == 0
    assert "test_cell[demo_up->demo_down-tinycnn-f1.0-finetune-s0]" in capsys.readouterr().out
    result = _pytest(["--pyargs", "ecgbench.grid", "--ecg-profiles", "own.toml", "--ecg-profile", "own",
                      "--ecg-data", str(own_data), "--ecg-cache", str(tmp_path / "cache")], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # one pre-training, one scratch cell, one fine-tuned cell, one transferability score of the checkpoint
    assert "4 passed" in result.stdout
    records = sorted(p.name for p in (tmp_path / "reports" / "own" / "results").glob("*.json"))
    assert records == ["demo_down-tinycnn-f1.0-scratch-s0.json", "demo_up_to_demo_down-tinycnn-f1.0-finetune-s0.json"]
    board = (tmp_path / "reports" / "own" / "leaderboard.md").read_text()
    assert "demo_down" in board and "tinycnn" in board and "demo_up" in board


def test_a_dataset_without_files_or_stand_in_is_skipped_naming_the_folder(tmp_path):
    """No --ecg-data: every task on the user's datasets (no stand-in) is skipped, saying where the files go.
    (A --ecg-data folder that does not exist is a usage error: tests/test_trust.py.)"""
    (tmp_path / "own.toml").write_text(PROFILE)
    result = _pytest(["--pyargs", "ecgbench.grid", "--ecg-profiles", "own.toml", "--ecg-profile", "own", "-rs",
                      "--ecg-cache", str(tmp_path / "cache")], cwd=tmp_path)
    assert result.returncode == 0 and "4 skipped" in result.stdout, result.stdout[-3000:]  # as above
    assert "no --ecg-data folder was given: put its files in DATA/demo_down" in result.stdout


def test_data_new_writes_a_manifest_that_loads_and_prepares(own_data, tmp_path, capsys):
    out = tmp_path / "mine.toml"
    shutil.copytree(own_data / "demo_down", tmp_path / "mine")
    assert main(["data", "new", "mine", "--root", str(tmp_path), "--labels", str(tmp_path / "mine" / "labels.csv"),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "40 records" in printed and "--ecg-manifest" in printed
    manifest = load_manifest(out)
    assert manifest.classes == ("A", "C") and manifest.signal.rates_hz == (250.0,) and manifest.split.rule == "folds"
    assert main(["data", "info", "mine", "--root", str(tmp_path), "--cache", str(tmp_path / "cache"),
                 "--ecg-manifest", str(out)]) == 0
    assert "40 records kept of 40 indexed" in capsys.readouterr().out


def test_a_record_path_with_a_leading_dot_slash_names_the_same_record(own_data, tmp_path, capsys):
    shutil.copytree(own_data / "demo_down", tmp_path / "demo_down")
    labels = tmp_path / "demo_down" / "labels.csv"
    labels.write_text(labels.read_text().replace("\nrecords/", "\n./records/"))
    assert _data_new(tmp_path) == 0 and "40 records" in capsys.readouterr().out


def test_the_cli_help_documents_ecg_manifest(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--ecg-manifest PATH" in capsys.readouterr().out


def test_array_format_reads_an_npy_beside_a_labels_csv(tmp_path, capsys):
    folder = tmp_path / "arr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    signals = (0.3 * np.sin(np.linspace(0, 60, 2500))[None, :, None] + 0.05 * rng.standard_normal((30, 2500, 12)))
    np.save(folder / "x.npy", signals.astype(np.float32))
    (folder / "labels.csv").write_text("record,labels\n" + "".join(f"e{i},{'AF' if i % 3 else 'NORM'}\n"
                                                                   for i in range(30)))
    assert main(["data", "new", "arr", "--root", str(tmp_path), "--labels", str(folder / "labels.csv"), "--format",
                 "array", "--signals", str(folder / "x.npy"), "--rate", "250", "--out", str(tmp_path / "a.toml")]) == 0
    manifest = load_manifest(tmp_path / "a.toml")
    loader = ArrayLoader(folder, manifest)
    entries = loader.index().entries
    raw = loader.read(entries[4])
    assert [e.record_id for e in entries[:2]] == ["e0", "e1"] and raw.rate_hz == 250.0
    np.testing.assert_allclose(raw.signal, signals[4].astype(np.float32))


@pytest.mark.parametrize("write, message", [
    (lambda path: path.write_bytes(b"not a .npy file"), r"x\.npy: cannot read the signals: ValueError"),
    (lambda path: np.save(path, np.zeros((30, 2500), np.float32)),
     r"x\.npy: signals of shape \(30, 2500\), expected \(records, samples, 12\)"),
    (lambda path: np.save(path, np.zeros((29, 2500, 12), np.float32)),
     r"labels\.csv has 30 rows but .*x\.npy holds 29 records"),
])
def test_a_bad_signals_array_is_an_error_naming_the_file(tmp_path, write, message):
    folder = tmp_path / "arr"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((30, 2500, 12), np.float32))
    (folder / "labels.csv").write_text("record,labels\n" + "".join(f"e{i},AF\n" for i in range(30)))
    assert main(["data", "new", "arr", "--root", str(tmp_path), "--labels", str(folder / "labels.csv"), "--format",
                 "array", "--signals", str(folder / "x.npy"), "--rate", "250", "--out", str(tmp_path / "a.toml")]) == 0
    write(folder / "x.npy")
    with pytest.raises(DataError, match=message):
        ArrayLoader(folder, load_manifest(tmp_path / "a.toml")).index()


def _data_new(root: Path, name: str = "demo_down") -> int:
    return main(["data", "new", name, "--root", str(root), "--labels", str(root / name / "labels.csv"),
                 "--out", str(root / "out.toml"), "--force"])


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "records" / "r003.hea").unlink(), "line 5 names record 'records/r003' but"),
    (lambda f: (f / "labels.csv").write_text("\n".join((f / "labels.csv").read_text().splitlines()[:-1]) + "\n"),
     "r039.hea has no row in"),
    (lambda f: (f / "records" / "r001.hea").write_text((f / "records" / "r001.hea").read_text().replace(" V6", " X6")),
     "unknown lead names ['X6'], missing leads ['V6']"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace("records/r002,", "records/r002,", 1)
                                              .replace(",train", ",training", 1)),
     "line 2: split 'training' is not one of"),
    (lambda f: (f / "labels.csv").write_text("rec,labels\nrecords/r000,A\n"), "missing ['record'], unknown ['rec']"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text()
                                             .replace("records/r000,", "records/r000,B,")),
     "labels.csv line 2: 5 fields, the header has 4 (a record's labels are separated by ';', not ','"),
    (lambda f: (f / "labels.csv").write_text(re.sub(r"records/r000,[^\n]*", "records/r000",
                                                    (f / "labels.csv").read_text())),
     "labels.csv line 2: 1 fields, the header has 4"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text() + "records/r000,A,p0,train\n"),
     "1 label row(s) repeat a record (one row per record): "),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace(",p3,", ",p0,")),
     "1 patient(s) have records in more than one split, which leaks test records into training: p0 (train, val)"),
])
def test_data_new_names_the_row_or_file_of_each_bad_input(own_data, tmp_path, capsys, damage, message):
    shutil.copytree(own_data / "demo_down", tmp_path / "demo_down")
    damage(tmp_path / "demo_down")
    assert _data_new(tmp_path) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--rate", "0"), ("--rate", "nan"), ("--rate", "-250"),
                                           ("--units-per-mv", "-1"), ("--units-per-mv", "0")])
def test_data_new_refuses_a_rate_or_scale_that_is_not_a_positive_number(tmp_path, capsys, option, value):
    args = ["data", "new", "arr", "--root", str(tmp_path), "--labels", "labels.csv", "--format", "array",
            "--signals", "x.npy", "--rate", "250", option, value]
    with pytest.raises(SystemExit):
        main(args)
    assert f"{option}: must be a finite number > 0, got '{value}'" in capsys.readouterr().err


@pytest.mark.parametrize("rate, warned", [("250", None), ("80", "upsampled to the models' 100 Hz\n"),
                                         ("10", "under about 50 Hz a QRS complex is not resolved")])
def test_data_new_warns_of_a_rate_below_the_models(tmp_path, capsys, rate, warned):
    folder = tmp_path / "arr"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((3, 200, 12), np.float32))
    (folder / "labels.csv").write_text("record,labels\ne0,AF\ne1,N\ne2,AF\n")
    assert main(["data", "new", "arr", "--root", str(tmp_path), "--labels", str(folder / "labels.csv"), "--format",
                 "array", "--signals", str(folder / "x.npy"), "--rate", rate, "--out", str(tmp_path / "a.toml")]) == 0
    err = capsys.readouterr().err
    assert (warned in err) if warned else "warning" not in err


def test_a_manifest_whose_units_per_mv_would_invert_the_signals_is_refused(tmp_path):
    folder = tmp_path / "arr"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((3, 2500, 12), np.float32))
    (folder / "labels.csv").write_text("record,labels\ne0,AF\ne1,N\ne2,AF\n")
    assert main(["data", "new", "arr", "--root", str(tmp_path), "--labels", str(folder / "labels.csv"), "--format",
                 "array", "--signals", str(folder / "x.npy"), "--rate", "250", "--out", str(tmp_path / "a.toml")]) == 0
    text = (tmp_path / "a.toml").read_text()
    assert "units_per_mv = 1.0" in text
    (tmp_path / "a.toml").write_text(text.replace("units_per_mv = 1.0", "units_per_mv = -1.0"))
    with pytest.raises(DataError, match=r"a.toml: \[format.options\] units_per_mv: must be a finite number > 0"):
        checked_manifest(tmp_path / "a.toml")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staged manifest left behind


def test_the_wfdb_loader_refuses_a_zero_gain_naming_the_record(own_data, tmp_path):
    from ecgbench.data.loaders.base import EcgRecordError
    from ecgbench.data.loaders.labelled import WfdbLoader

    shutil.copytree(own_data / "demo_down", tmp_path / "demo_down")
    header = tmp_path / "demo_down" / "records" / "r000.hea"
    lines = header.read_text().splitlines()
    parts = lines[1].split()
    parts[2] = "0(16)/mV"
    header.write_text("\n".join([lines[0], " ".join(parts), *lines[2:]]) + "\n")
    loader = WfdbLoader(tmp_path / "demo_down", load_manifest(demo.DEMO_DOWN))
    with pytest.raises(EcgRecordError,
                       match="record records/r000: .*r000.hea: gain '0' in signal line .* must be a positive"):
        loader.read(loader.index().entries[0])


def _fake_distribution(where: Path, name: str, entry_points: str, module: str = "") -> None:
    info = where / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module:
        (where / f"{name}_mod.py").write_text(module)


def _discover_models() -> tuple[str, ...]:
    from ecgbench.models import _discover

    return Registry("model", discover=_discover).names()


def test_one_name_in_two_distributions_is_an_error_naming_both(tmp_path, monkeypatch):
    for dist in ("alpha", "beta"):
        _fake_distribution(tmp_path, dist, "[ecgbench.models]\nsame = ecgbench_demo_ext:tinycnn\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EntryPointError, match="'same' is declared by alpha 1.0 .* and by beta 1.0"):
        _discover_models()


@pytest.mark.parametrize("module, message", [
    ("raise ImportError('no torch here')", "entry point broken = 'broken_mod:factory' .* does not load: ImportError"),
    ("def factory(n):\n    pass\n", "must name an ecgbench.models.ModelSpec.* or a factory function with a `family`"),
    ("def factory(n):\n    pass\nfactory.family = 'transformer'\n", "model family 'transformer' is not one of"),
])
def test_a_broken_model_entry_point_is_an_error_naming_it(tmp_path, monkeypatch, module, message):
    _fake_distribution(tmp_path, "broken", "[ecgbench.models]\nbroken = broken_mod:factory\n", module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_mod", raising=False)  # each case imports its own module
    with pytest.raises(EntryPointError, match=message):
        _discover_models()


def test_a_dataset_entry_point_must_give_a_manifest_of_its_own_name(tmp_path, monkeypatch):
    from ecgbench.data.registry import _discover

    _fake_distribution(tmp_path, "wrongname", "[ecgbench.datasets]\nother = wrongname_mod:PATH\n",
                       f"PATH = {str(demo.DEMO_UP)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EntryPointError, match="entry point other = 'wrongname_mod:PATH'.*names dataset 'demo_up'"):
        Registry("dataset", discover=_discover).names()


def test_ecg_manifest_option_registers_a_file_and_a_bad_one_is_a_usage_error(own_data, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(demo.DEMO_DOWN.read_text().replace('kind = "wfdb"', 'kind = "matlab"'))
    result = _pytest(["--pyargs", "ecgbench.grid", "--ecg-manifest", str(bad), "--collect-only"], cwd=tmp_path)
    assert result.returncode == 4 and f"--ecg-manifest {bad}" in result.stderr and "'matlab'" in result.stderr
