"""Inputs that look usable but would give wrong data without a word (issue 16): index tables that list a
record twice, a fractional or unassigned fold, WFDB gains that are not a positive number, and records that are
flat, clipped, padded or cropped. Each is an error naming the file and row/record, or a counted decision."""
import re

import numpy as np
import pytest

from ecgbench.data.manifest import DataError
from ecgbench.data.loaders import RecordError
from ecgbench.data.prepare import prepare

from data_fixtures import PtbxlRow, ecg_like, write_cinc, write_ptbxl

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
    with pytest.raises(RecordError, match=f"record 2: {csv} line 3: unreadable row \\(strat_fold "
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
    with pytest.raises(RecordError, match=f"record A0001: {re.escape(str(header))}: gain "
                                          f"'{re.escape(gain.split('/')[0].split('(')[0])}'.* in signal line "
                                          f"'A0001.mat 16\\+24 {re.escape(gain)} 16 0 .* II'"):
        _prepare(tmp_path / "data", "cpsc2018")
