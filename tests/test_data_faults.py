"""Inputs that look usable but would give wrong data without a word (issue 16): index tables that list a
record twice, a fractional or unassigned fold, WFDB gains that are not a positive number, and records that are
flat, clipped, padded or cropped. Each is an error naming the file and row/record, or a counted decision."""
import re

import numpy as np
import pytest
from data_fixtures import PtbxlRow, ecg_like, manifest, write_cinc, write_code_test, write_ptbxl

from ecgbench.data.loaders import EcgRecordError
from ecgbench.data.manifest import DataError
from ecgbench.data.prepare import prepare

pytestmark = [pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]

ROWS = [PtbxlRow(1, 101, {"NORM": 100.0}, 1), PtbxlRow(2, 102, {"IMI": 100.0}, 9),
        PtbxlRow(3, 103, {"NORM": 100.0}, 10)]


def _prepare(root, name):
    return prepare(name, root, cache_dir=root.parent / "cache", progress=False)


def _ptbxl_with(tmp_path, edit):
    """A 3-record PTB-XL copy whose ``ptbxl_database.csv`` lines (header = line 1) ``edit`` changes."""
    folder = write_ptbxl(tmp_path / "data", ROWS)
    csv = folder / "ptbxl_database.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(edit(lines)) + "\n")
    return tmp_path / "data", re.escape(str(csv))


def test_ptbxl_a_duplicated_ecg_id_with_another_fold_is_an_error_naming_both_rows(tmp_path):
    # the copy of record 3 (test fold 10) is given train fold 1: the same record would be trained and tested on
    root, csv = _ptbxl_with(tmp_path, lambda lines: lines + [lines[3].replace(",10,", ",1,")])
    with pytest.raises(DataError, match=f"record id '3' is listed 2 times: record 3 \\({csv} line 4\\) fold 10; "
                                        f"record 3 \\({csv} line 5\\) fold 1"):
        _prepare(root, "ptbxl")


def test_ptbxl_two_rows_naming_one_signal_file_are_an_error_naming_both(tmp_path):
    root, csv = _ptbxl_with(tmp_path, lambda lines: lines + [lines[2].replace("2,102.0,", "4,104.0,", 1)])
    with pytest.raises(DataError, match=f"signal location 'records500/00000/00002_hr' is listed 2 times: "
                                        f"record 2 \\({csv} line 3\\) fold 9; record 4 \\({csv} line 5\\) fold 9"):
        _prepare(root, "ptbxl")


@pytest.mark.parametrize("value", ["9.7", ""])
def test_ptbxl_a_fractional_or_blank_strat_fold_is_an_error_naming_the_row(tmp_path, value):
    root, csv = _ptbxl_with(tmp_path, lambda lines: [*lines[:2], lines[2].replace(",9,", f",{value},"), lines[3]])
    with pytest.raises(EcgRecordError, match=f"record 2: {csv} line 3: unreadable row \\(strat_fold "
                                          f"{'9.7' if value else 'nan'} is not a whole number\\)"):
        _prepare(root, "ptbxl")


def test_ptbxl_a_strat_fold_of_11_names_the_record_and_the_file(tmp_path):
    root, csv = _ptbxl_with(tmp_path, lambda lines: [*lines[:3], lines[3].replace(",10,", ",11,")])
    with pytest.raises(DataError, match=f"folds \\[11\\] are in no split of the manifest's rule \\(train "
                                        f"\\[1, 2, 3, 4, 5, 6, 7, 8\\], val \\[9\\], test \\[10\\]\\): "
                                        f"record 3 \\({csv} line 4\\) has fold 11"):
        _prepare(root, "ptbxl")


def test_cinc_one_record_in_two_folders_is_the_same_shared_duplicate_error(tmp_path):
    """The rule lives in ``check_unique``, which ``prepare`` applies to every loader's index."""
    folder = tmp_path / "data" / "cpsc2018"
    for sub in ("g1", "g2"):
        write_cinc(folder / sub, "A0001", ecg_like(10, 500), 500, ["426783006"])
    write_cinc(folder, "A0002", ecg_like(10, 500), 500, ["426783006"])
    with pytest.raises(DataError, match=f"record id 'A0001' is listed 2 times: record A0001 "
                                        f"\\({re.escape(str(folder / 'g1' / 'A0001.hea'))}\\); "
                                        f"record A0001 \\({re.escape(str(folder / 'g2' / 'A0001.hea'))}\\)"):
        _prepare(tmp_path / "data", "cpsc2018")


@pytest.mark.parametrize("gain", ["0/mV", "-1000/mV", "1.0.0/mV", "0.0(0)/mV"])
def test_a_header_gain_that_is_not_a_positive_number_is_an_error_naming_record_and_line(tmp_path, gain):
    """Gain 0 would be read as WFDB's default 200 (amplitudes x5 at a true 1000/mV), a negative gain inverts."""
    folder = tmp_path / "data" / "cpsc2018"
    header = write_cinc(folder, "A0001", ecg_like(10, 500), 500, ["426783006"])
    lines = header.read_text().splitlines()
    lines[2] = lines[2].replace(" 1000/mV ", f" {gain} ")  # lead II
    header.write_text("\n".join(lines) + "\n")
    with pytest.raises(EcgRecordError, match=f"record A0001: {re.escape(str(header))}: gain "
                                          f"'{re.escape(gain.split('/')[0].split('(')[0])}'.* in signal line "
                                          f"'A0001.mat 16\\+24 {re.escape(gain)} 16 0 .* II'"):
        _prepare(tmp_path / "data", "cpsc2018")


def _suspect_records(root):
    """cpsc2018: a fine 10 s record and one of each suspect kind, all of which pass the signal checks."""
    folder = root / "cpsc2018"
    fine = ecg_like(10, 500, seed=1)
    flat = ecg_like(10, 500, seed=2)
    flat[:, 8] = 0.0  # V3 disconnected
    clipped = np.clip(ecg_like(10, 500, seed=3) * 30, -32.767, 32.767)  # 1000/mV: the 16-bit ADC's limits
    padded = np.concatenate([ecg_like(6, 500, seed=4), np.zeros((2000, 12))])  # 6 s zero-padded to 10 s
    cropped = ecg_like(60, 500, seed=5)
    for i, signal in enumerate([fine, flat, clipped, padded, cropped], start=1):
        write_cinc(folder, f"A000{i}", signal, 500, ["426783006"])
    return {"flat_lead": ["A0002"], "clipped": ["A0003"], "padded": ["A0004"], "cropped": ["A0005"]}


def test_suspect_records_are_kept_by_default_and_counted_in_info_and_data_info(tmp_path, capsys):
    from ecgbench.cli import main

    expected = _suspect_records(tmp_path / "data")
    prepared = _prepare(tmp_path / "data", "cpsc2018")
    assert prepared.dataset.record_ids.tolist() == ["A0001", "A0002", "A0003", "A0004", "A0005"]
    assert {flag: found["record_ids"] for flag, found in prepared.info["quality"].items()} == expected
    assert {found["rule"] for found in prepared.info["quality"].values()} == {"keep"}
    assert main(["data", "info", "cpsc2018", "--root", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    for flag, ids in expected.items():
        assert f"quality {flag}: 1 records (rule keep) ({ids[0]})" in out


def test_a_drop_rule_drops_and_counts_suspect_records(tmp_path):
    expected = _suspect_records(tmp_path / "data")
    rules = manifest("cpsc2018", quality={flag: "drop" for flag in expected})
    prepared = prepare("cpsc2018", tmp_path / "data", cache_dir=tmp_path / "cache", progress=False, manifest=rules)
    assert prepared.dataset.record_ids.tolist() == ["A0001"]
    assert {d["record_id"]: d["reason"] for d in prepared.info["dropped"]} == {
        ids[0]: f"quality: {flag}" for flag, ids in expected.items()}
    assert {flag: found["records"] for flag, found in prepared.info["quality"].items()} == dict.fromkeys(expected, 1)


@pytest.mark.parametrize("flag, record", [("flat_lead", "A0002"), ("clipped", "A0003"), ("padded", "A0004"),
                                          ("cropped", "A0005")])
def test_an_error_rule_stops_at_the_suspect_record_naming_it(tmp_path, flag, record):
    _suspect_records(tmp_path / "data")
    rules = manifest("cpsc2018", quality={flag: "error"})
    with pytest.raises(EcgRecordError, match=f"record {record}: {flag}: .*\\[quality\\] {flag} = \"error\""):
        prepare("cpsc2018", tmp_path / "data", cache_dir=tmp_path / "cache", progress=False, manifest=rules)


def test_a_record_shorter_than_the_window_is_counted_as_padded_by_the_preprocessing(tmp_path):
    """A 6 s or 8 s recording is zero-padded to the 10 s window by ``preprocess``: counted, never unreported;
    9.8 s (0.2 s of padding, under PAD_MIN_S) is not."""
    folder = tmp_path / "data" / "cpsc2018"
    for name, seconds in (("A0001", 8.0), ("A0002", 6.0), ("A0003", 10.0), ("A0004", 9.8), ("A0005", 30.0)):
        write_cinc(folder, name, ecg_like(seconds, 500, seed=len(name) + int(seconds)), 500, ["426783006"])
    quality = _prepare(tmp_path / "data", "cpsc2018").info["quality"]
    assert quality["padded"]["record_ids"] == ["A0001", "A0002"] and quality["padded"]["rule"] == "keep"
    assert quality["cropped"]["record_ids"] == ["A0005"]


def test_code_tests_own_padding_of_a_10_s_recording_is_not_counted_but_a_7_s_one_is(tmp_path):
    write_code_test(tmp_path / "data", np.zeros((3, 6)), seconds=[10.0, 7.0, 9.9])
    quality = _prepare(tmp_path / "data", "code_test").info["quality"]
    assert quality["padded"]["record_ids"] == ["1"]  # 7 s in 10.24 s; 10 s and 9.9 s pad < 0.5 s
    assert quality["cropped"]["records"] == quality["flat_lead"]["records"] == quality["clipped"]["records"] == 0
