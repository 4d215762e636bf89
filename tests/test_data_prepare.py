"""The prepared cache (keyed, atomic, a no-op the second time, rebuilt when broken), parallel reading,
``open_dataset`` and the ``ecgbench data`` commands."""
import os

import numpy as np
import pytest
from data_fixtures import PtbxlRow, ecg_like, write_cinc, write_ptbxl

import ecgbench.data.prepare as prepare_module
from ecgbench.cli import main
from ecgbench.data import load, open_dataset
from ecgbench.data.prepare import prepare

pytestmark = [pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]


@pytest.fixture
def data_root(tmp_path):
    rows = [PtbxlRow(i, 100 + i // 2, {"NORM": 100.0} if i % 3 else {"IMI": 50.0}, i % 10 + 1) for i in range(1, 21)]
    write_ptbxl(tmp_path / "data", rows)
    return tmp_path / "data"


def test_a_second_prepare_is_a_no_op_reading_the_same_cache(tmp_path, data_root):
    first = prepare("ptbxl", data_root, cache_dir=tmp_path / "cache", progress=False)
    second = prepare("ptbxl", data_root, cache_dir=tmp_path / "cache", progress=False)
    assert first.built and not second.built and first.folder == second.folder
    assert first.folder.parent == tmp_path / "cache" / "prepared" and first.folder.name.startswith("ptbxl-")
    assert second.dataset.digest == first.dataset.digest and second.dataset.signals.shape == (20, 1000, 12)
    leftovers = [p.name for p in first.folder.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temporary folder survives a successful build


def test_the_cache_key_follows_limit_manifest_and_source_files(tmp_path, data_root):
    cache = tmp_path / "cache"
    full = prepare("ptbxl", data_root, cache_dir=cache, progress=False)
    limited = prepare("ptbxl", data_root, cache_dir=cache, limit=5, progress=False)
    assert limited.folder != full.folder and len(limited.dataset.record_ids) == 5
    assert limited.dataset.record_ids.tolist() == full.dataset.record_ids[:5].tolist()
    csv = data_root / "ptbxl" / "ptbxl_database.csv"
    csv.write_text(csv.read_text().replace("{'IMI': 50.0}", "{'LVH': 50.0}"))
    changed = prepare("ptbxl", data_root, cache_dir=cache, progress=False)
    assert changed.built and changed.folder != full.folder and changed.dataset.digest != full.dataset.digest


@pytest.mark.parametrize("damage", ["truncate signals", "delete meta", "garbage info"])
def test_a_broken_cache_entry_is_reported_and_rebuilt(tmp_path, data_root, damage):
    first = prepare("ptbxl", data_root, cache_dir=tmp_path / "cache", progress=False)
    if damage == "truncate signals":
        with open(first.folder / "signals.npy", "r+b") as f:
            f.truncate(1000)
    elif damage == "delete meta":
        os.remove(first.folder / "meta.npz")
    else:
        (first.folder / "info.json").write_text("{")
    with pytest.warns(UserWarning, match=f"unusable, rebuilding it: {first.folder}"):
        again = prepare("ptbxl", data_root, cache_dir=tmp_path / "cache", progress=False)
    assert again.built and again.dataset.digest == first.dataset.digest


def test_worker_processes_give_the_same_arrays_in_the_same_order(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "georgia"
    for i in range(70):
        write_cinc(folder, f"E{i:05d}", ecg_like(10, 500, seed=i), 500, ["426783006" if i % 2 else "426177001"])
    monkeypatch.setattr(prepare_module, "PARALLEL_MIN_RECORDS", 0)
    serial = prepare("georgia", tmp_path / "data", cache_dir=tmp_path / "a", workers=1, progress=False)
    parallel = prepare("georgia", tmp_path / "data", cache_dir=tmp_path / "b", workers=2, progress=False)
    assert parallel.info["workers"] == 2
    assert parallel.dataset.digest == serial.dataset.digest
    np.testing.assert_array_equal(parallel.dataset.signals, serial.dataset.signals)


def test_open_dataset_uses_real_data_where_a_folder_exists_and_synthetic_elsewhere(tmp_path, data_root, data_cache):
    real = open_dataset("ptbxl", synthetic_records=60, cache_dir=tmp_path / "cache", data_root=data_root)
    assert real.source == "real" and real.record_ids.tolist()[:3] == ["1", "2", "3"]
    assert real.digest == load("ptbxl", data_root, cache_dir=tmp_path / "cache").digest
    stand_in = open_dataset("ptb", synthetic_records=60, cache_dir=data_cache, data_root=data_root)
    assert stand_in.source == "synthetic"


def test_cli_prepare_info_and_verify(tmp_path, data_root, capsys):
    args = ["--root", str(data_root), "--cache", str(tmp_path / "cache")]
    assert main(["data", "prepare", "ptbxl", *args]) == 0
    assert "prepared 20 records of ptbxl" in capsys.readouterr().out
    assert main(["data", "prepare", "ptbxl", *args]) == 0
    assert "already prepared: nothing to do" in capsys.readouterr().out
    assert main(["data", "info", "ptbxl", *args]) == 0
    out = capsys.readouterr().out
    assert "| NORM    |" in out and "| records |" in out and "digest " in out
    assert "20 records kept of 20 indexed" in out
    assert "copy: holds 20 records, the manifest expects 21799: a partial copy" in out
    assert main(["data", "verify", "ptbxl", "--root", str(data_root)]) == 1
    out = capsys.readouterr().out
    assert "does NOT match the manifest" in out and "differs: " in out  # our scp_statements.csv is not PTB-XL's
    assert "not checked (no known sha256 in the manifest): " in out
    assert main(["data", "prepare", "ptbxl", "--root", str(tmp_path / "nowhere"), "--cache", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
