"""Inputs a user types or hands over that once crashed, read the wrong thing or named nothing: WFDB headers
and signal files at ``data new``, labels CSVs, PTB-XL and CODE-test tables, paths with ``..`` or hidden parts,
``ECGBENCH_CACHE``, a full disk, and a CLI piped into ``head``. Each is a clear error or a stated decision."""
import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import SAMPLES, PtbxlRow, ecg_like, needs_samples, write_cinc, write_code_test, write_ptbxl

from ecgbench.cli import main
from ecgbench.data.loaders import CodeTestLoader, EcgRecordError
from ecgbench.data.loaders.cinc import index_cinc
from ecgbench.data.manifest import DataError, load_manifest
from ecgbench.data.prepare import prepare
from ecgbench.data.registry import checked_manifest, get_manifest
from ecgbench.data.synthetic import load_synthetic
from ecgbench.engine.checkpoint import cached_checkpoint

demo = pytest.importorskip("ecgbench_demo_ext", reason="pip install ./tests/thirdparty (scripts/quickstart.sh does)")

pytestmark = pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning")


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """``ds``: 8 WFDB records (format 212, 250 Hz, 8 s) and labels.csv with record, labels, patient."""
    root = tmp_path_factory.mktemp("user-inputs")
    demo.write_records(root / "ds", ("A", "B"), 8, 0, with_split=False)
    return root / "ds"


@pytest.fixture
def ds(records, tmp_path) -> Path:
    """A fresh copy of ``records`` to damage."""
    shutil.copytree(records, tmp_path / "ds")
    return tmp_path / "ds"


def _data_new(folder: Path) -> int:
    return main(["data", "new", folder.name, "--root", str(folder.parent), "--labels", str(folder / "labels.csv"),
                 "--out", str(folder.parent / "ds.toml"), "--force"])


def _rewrite_first_line(header: Path, fields: slice | list) -> None:
    lines = header.read_text().splitlines()
    first = lines[0].split()
    lines[0] = " ".join(first[fields] if isinstance(fields, slice) else fields)
    header.write_text("\n".join(lines) + "\n")


def _labels(folder: Path, text: str) -> None:
    (folder / "labels.csv").write_text(text)


# -- WFDB headers and signal files (data new and the wfdb loader) ------------------------------------------------

@pytest.mark.parametrize("first_line, message", [
    (slice(0, 3), r"r000.hea: the record line gives no sample count \(its fourth field\)"),
    (["r000", "12", "0", "2000"], r"r000.hea: sampling rate 0(\.0)?: it must be a positive number of Hz"),
])
def test_data_new_refuses_a_header_without_sample_count_or_with_rate_zero(ds, capsys, first_line, message):
    _rewrite_first_line(ds / "records" / "r000.hea", first_line)
    assert _data_new(ds) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("change, message", [
    (-300, r"r001.dat is truncated: it holds 35700 bytes, the header's 2000 samples of 12 signal\(s\) in format 212 "
           r"take 36000"),
    (+300, r"r001.dat is longer than its header says: it holds 36300 bytes, .* take 36000"),
])
def test_a_signal_file_shorter_or_longer_than_its_header_is_refused_by_data_new_and_the_loader(ds, capsys, change,
                                                                                               message):
    from ecgbench.data.loaders.labelled import WfdbLoader

    dat = ds / "records" / "r001.dat"
    data = dat.read_bytes()
    dat.write_bytes(data[:change] if change < 0 else data + b"\0" * change)
    assert _data_new(ds) == 2
    assert re.search(message, capsys.readouterr().err)
    loader = WfdbLoader(ds, load_manifest(demo.DEMO_DOWN))
    with pytest.raises(EcgRecordError, match=message):
        loader.read(next(e for e in loader.index().entries if e.record_id == "records/r001"))


# -- labels CSV ---------------------------------------------------------------------------------------------------

def _rows(folder: Path) -> list[str]:
    return (folder / "labels.csv").read_text().splitlines()


def test_a_quoted_comma_in_labels_is_refused_naming_the_line(ds, capsys):
    rows = _rows(ds)
    rows[1] = re.sub(r"^(records/r000),[^,]*,", r'\1,"A,B",', rows[1])
    _labels(ds, "\n".join(rows) + "\n")
    assert _data_new(ds) == 2
    assert "labels.csv line 2: label 'A,B' holds a ',': separate a record's labels with ';' ('A;B')" in \
        capsys.readouterr().err


def test_case_variants_of_a_label_are_merged_into_one_class_and_data_new_says_so(ds, capsys):
    rows = _rows(ds)
    rows[1:] = [re.sub(r",A(;|,)", r",a\1", row) if i % 2 else row for i, row in enumerate(rows[1:])]
    _labels(ds, "\n".join(rows) + "\n")
    assert {"a", "A"} <= {label for row in rows[1:] for label in row.split(",")[1].split(";")}
    assert _data_new(ds) == 0
    out = capsys.readouterr().out
    assert re.search(r"note: labels 'A', 'a' differ only in case: merged into class 'A'|"
                     r"note: labels 'a', 'A' differ only in case: merged into class 'a'", out)
    written = checked_manifest(ds.parent / "ds.toml")
    assert len(written.classes) == 2 and {"A", "a"} in [set(v) for v in written.labels.map.values()]
    dataset = prepare("ds", ds.parent, cache_dir=ds.parent / "cache", manifest=written, progress=False).dataset
    merged = list(dataset.classes).index(next(c for c in written.classes if c.lower() == "a"))
    labelled_a = [row for row in rows[1:] if re.search(r",[aA](;|,)", row)]
    assert int(dataset.labels[:, merged].sum()) == len(labelled_a)


def test_a_second_labels_column_is_refused(ds, capsys):
    rows = _rows(ds)
    _labels(ds, "\n".join([rows[0] + ",labels"] + [row + ",B" for row in rows[1:]]) + "\n")
    assert _data_new(ds) == 2
    assert "labels.csv: column(s) ['labels'] appear more than once" in capsys.readouterr().err


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text(), encoding="utf-16"),
     "labels.csv: is UTF-16 text (it starts with its byte-order mark), not UTF-8: save it as UTF-8"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace(",", ";")),
     "(is it ';'-separated? columns are separated by ',')"),
    (lambda f: (f / "labels.csv").write_bytes((f / "labels.csv").read_bytes().replace(b"r000,", b"r\xe9000,", 1)),
     "labels.csv: is not UTF-8 text"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace("records/r000,", "records/ré000,")),
     "labels.csv line 2: record 'records/ré000' has non-ASCII characters 'é'"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace("records/r000,", "../other/r000,")),
     "labels.csv line 2: record names '../other/r000', a path outside the dataset folder"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace("records/r000,", "/tmp/r000,")),
     "labels.csv line 2: record names '/tmp/r000', a path outside the dataset folder"),
    (lambda f: (f / "labels.csv").write_text((f / "labels.csv").read_text().replace("records/r000,", ".old/r000,")),
     "labels.csv line 2: record names '.old/r000', a hidden path"),
])
def test_a_labels_csv_fault_is_an_error_naming_the_file(ds, capsys, damage, message):
    damage(ds)
    assert _data_new(ds) == 2
    assert message in capsys.readouterr().err


def test_a_header_naming_a_signal_file_outside_the_folder_is_refused(tmp_path):
    from ecgbench.data.loaders.wfdb_format import parse_header

    header = write_cinc(tmp_path / "cpsc2018", "A0001", ecg_like(10, 500), 500, ["426783006"])
    header.write_text(header.read_text().replace("A0001.mat 16", "../elsewhere.mat 16"))
    with pytest.raises(EcgRecordError, match=r"A0001.hea: signal line .* names '../elsewhere.mat', a path outside "
                                             "the dataset folder"):
        parse_header(header, "A0001")


def test_a_negative_split_seed_is_refused_naming_the_manifest(ds, tmp_path):
    assert _data_new(ds) == 0
    path = ds.parent / "ds.toml"
    path.write_text(path.read_text().replace("seed = 0", "seed = -1"))
    with pytest.raises(DataError, match=r"ds.toml: .*split.seed -1 must be >= 0"):
        checked_manifest(path)


# -- PTB-XL and CODE-test tables ----------------------------------------------------------------------------------

@pytest.fixture
def ptbxl_root(tmp_path) -> Path:
    rows = [PtbxlRow(i, 100 + i, {"NORM": 100.0} if i % 2 else {"IMI": 50.0}, i % 10 + 1) for i in range(1, 11)]
    write_ptbxl(tmp_path / "data", rows, rates=(100,))
    return tmp_path / "data"


def _ptbxl_100(root: Path, cache: Path):
    from data_fixtures import manifest

    return prepare("ptbxl", root, cache_dir=cache, progress=False,
                   manifest=manifest("ptbxl", format={"options": {"rate_hz": 100, "min_likelihood": 0.0}}))


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "ptbxl_database.csv").write_text((f / "ptbxl_database.csv").read_text().replace(",", ";")),
     r"ptbxl_database.csv: lacks columns .* \(the file is ';'-separated; PhysioNet's release separates columns "
     r"with ','\)"),
    (lambda f: _edit(f / "ptbxl_database.csv", "\"{'NORM': 100.0}\"", "\"['NORM']\""),
     r"ptbxl_database.csv line 2: unreadable row \(scp_codes \"\['NORM'\]\" is not a dict of SCP code -> "
     r"likelihood number"),
    (lambda f: _edit(f / "ptbxl_database.csv", "\"{'NORM': 100.0}\"", "\"{'NORM': 'high'}\""),
     r"line 2: unreadable row \(scp_codes .* is not a dict of SCP code -> likelihood number"),
    (lambda f: (f / "scp_statements.csv").write_text(re.sub(r"^(IMI,.*?),MI,", r"\1,,",
                                                            (f / "scp_statements.csv").read_text(), flags=re.M)),
     r"scp_statements.csv line \d+: diagnostic statement 'IMI' has a blank diagnostic_class"),
    (lambda f: _edit(f / "ptbxl_database.csv", "records100/00000/00001_lr", "../../outside/00001_lr"),
     r"ptbxl_database.csv line 2: filename_lr names '../../outside/00001_lr', a path outside the dataset folder"),
])
def test_a_ptbxl_table_fault_is_an_error_naming_the_file_and_line(ptbxl_root, tmp_path, damage, message):
    damage(ptbxl_root / "ptbxl")
    with pytest.raises(DataError, match=message):
        _ptbxl_100(ptbxl_root, tmp_path / "cache")


def test_the_ptbxl_fixture_itself_prepares(ptbxl_root, tmp_path):
    assert len(_ptbxl_100(ptbxl_root, tmp_path / "cache").dataset.record_ids) == 10  # the faults above are real


def test_a_code_test_annotations_file_with_an_index_column_is_refused(tmp_path):
    folder = write_code_test(tmp_path, np.eye(6, dtype=int)[[0, 1, 2, 3]])
    csv = folder / "annotations" / "gold_standard.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([","+ lines[0]] + [f"{i},{line}" for i, line in enumerate(lines[1:])]) + "\n")
    with pytest.raises(DataError, match=r"gold_standard.csv: column 1 \(unnamed: \[0, 1, 2\], \.\.\.\) is an index "
                                        "column, not a label"):
        CodeTestLoader(folder, get_manifest("code_test")).index()


# -- paths: a relative --ecg-data, hidden files -------------------------------------------------------------------

@needs_samples
@pytest.mark.parametrize("name", ["cpsc2018", "georgia"])
def test_the_real_samples_prepare_through_a_relative_path_with_dot_dot(name, tmp_path):
    relative = Path(os.path.relpath(SAMPLES, Path.cwd()))
    assert ".." in relative.parts
    by_relative = prepare(name, relative, cache_dir=tmp_path / "rel", limit=3, progress=False).dataset
    by_absolute = prepare(name, SAMPLES, cache_dir=tmp_path / "abs", limit=3, progress=False).dataset
    assert by_relative.record_ids.tolist() == by_absolute.record_ids.tolist() and len(by_relative.record_ids) == 3
    assert by_relative.digest == by_absolute.digest


def test_hidden_files_are_skipped_by_their_path_below_the_dataset_folder_only(tmp_path, monkeypatch):
    root = tmp_path / ".hidden-parent" / "cpsc2018"  # a dot in the folder's own path does not hide anything
    x = ecg_like(10, 500)
    write_cinc(root, "A0001", x, 500, ["426783006"])
    write_cinc(root / "sub", "A0002", x, 500, ["426783006"])
    write_cinc(root, ".A0003", x, 500, ["426783006"])  # an editor's or a sync tool's leftover
    write_cinc(root / ".trash", "A0004", x, 500, ["426783006"])
    index = index_cinc(root, "*.hea")
    assert [e.record_id for e in index.entries] == ["A0001", "A0002"]
    monkeypatch.chdir(tmp_path / ".hidden-parent")
    relative = index_cinc(Path("..") / ".hidden-parent" / "cpsc2018", "*.hea")
    assert [e.record_id for e in relative.entries] == ["A0001", "A0002"]


# -- ECGBENCH_CACHE and a full disk -------------------------------------------------------------------------------

def test_ecgbench_cache_naming_a_file_is_an_error_naming_the_variable(ptbxl_root, tmp_path, monkeypatch, capsys,
                                                                      pytester):
    (tmp_path / "cachefile").write_text("")
    monkeypatch.setenv("ECGBENCH_CACHE", str(tmp_path / "cachefile"))
    assert main(["data", "prepare", "ptbxl", "--root", str(ptbxl_root)]) == 2
    err = capsys.readouterr().err
    assert f"error: ECGBENCH_CACHE={tmp_path / 'cachefile'}: is a file, not a folder" in err
    result = pytester.runpytest_subprocess("--co", "-q")
    assert result.ret == 4
    assert f"ECGBENCH_CACHE={tmp_path / 'cachefile'}: is a file, not a folder" in result.stderr.str()


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_writing_a_checkpoint_names_it_and_says_the_disk_is_full(tmp_path, monkeypatch):
    monkeypatch.setattr("ecgbench.engine.checkpoint.atomic_write_bytes", _disk_full)
    path = tmp_path / "checkpoints" / "ptbxl-gru-s0.pt"
    with pytest.raises(OSError) as error:
        cached_checkpoint(path, "id", lambda: {"weights": np.zeros(2)})
    assert str(error.value) == (f"[Errno 28] cannot write checkpoint {path}: No space left on device (ENOSPC, the "
                                "disk is full)")
    assert not path.exists()


def test_a_full_disk_while_writing_the_synthetic_cache_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "save", _disk_full)
    with pytest.raises(OSError, match=r"cannot write the synthetic-data cache .*ptb-n40-seed0-v\d+/signals.npy: No "
                                      r"space left on device \(ENOSPC, the disk is full\)"):
        load_synthetic("ptb", 40, 0, tmp_path)
    assert list((tmp_path / "synthetic").iterdir()) == []  # no half entry, no temp folder


def test_numpys_short_write_on_a_full_disk_says_the_disk_is_full(ptbxl_root, tmp_path, monkeypatch):
    def short_write(*args, **kwargs):  # what numpy raises when the disk fills during savez / tofile
        raise OSError("720000 requested and 262112 written")

    monkeypatch.setattr(np, "savez", short_write)
    monkeypatch.setattr("ecgbench.atomic.shutil.disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(OSError, match=r"cannot write the prepared-data cache .*(meta|fingerprints).npz: "
                                      r"720000 requested and "
                                      r"262112 written \(the disk is full\)"):
        _ptbxl_100(ptbxl_root, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "prepared").iterdir()] == []  # the temp folder is removed


# -- a CLI piped into head ----------------------------------------------------------------------------------------

def _into_closed_pipe(args: list[str]) -> subprocess.CompletedProcess:
    """``ecgbench ARGS | head`` once head has gone: stdout is a pipe whose reader is already closed."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "ecgbench", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write)


def test_piping_grid_into_head_is_no_error():
    process = subprocess.Popen([sys.executable, "-m", "ecgbench", "grid", "--profile", "paper", "--list"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # `| head -1` once it has its line (the list, ~120 kB, is more than a pipe holds)
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 1 and first.startswith(b"profile paper")
    assert err == ""  # no "error: [Errno 32] Broken pipe", no "Exception ignored" at exit


def test_piping_export_into_head_is_no_error(tmp_path):
    from record_factory import make_record

    from ecgbench.results.store import write_record

    for model in ("resnet1d18", "lstm"):
        record = make_record("ptb", model, 1.0, "scratch", 0, quality=1.0, n_test=50)
        write_record(tmp_path / "results", record["key"], record)
    for args in (["export", str(tmp_path / "results"), "--resamples", "20"], ["grid", "--profile", "smoke"]):
        done = _into_closed_pipe(args)
        assert (done.returncode, done.stderr) == (1, ""), args
