"""One recording held by two records of one dataset (issue 22): found by content at prepare, whatever the
names, gains and files; in two splits an error naming both rows, in one split counted and handled by the
manifest's ``[quality] duplicate`` rule; two paths reaching one file are one file."""
import json
import os
import re

import numpy as np
import pytest
from data_fixtures import PtbxlRow, ecg_like, manifest, write_ptbxl, write_wfdb
from scipy.signal import resample_poly

from ecgbench.data.manifest import DataError, ManifestError, Quality, strict_build
from ecgbench.data.prepare import prepare

pytestmark = [pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]
LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _ptbxl(tmp_path, copy_fold: int):
    """PTB-XL with 4 records; record 4 (fold ``copy_fold``, its own patient) is record 1 (fold 1) saved again
    at another gain, with an offset, another ADC resolution and 100 Hz instead of 500 Hz."""
    rows = [PtbxlRow(1, 101, {"NORM": 100.0}, 1), PtbxlRow(2, 102, {"IMI": 100.0}, 9),
            PtbxlRow(3, 103, {"NORM": 100.0}, 10), PtbxlRow(4, 104, {"NORM": 100.0}, copy_fold)]
    folder = write_ptbxl(tmp_path / "data", rows)
    copy = 2.5 * resample_poly(ecg_like(10, 500, seed=1), 1, 5, axis=0) + 0.4
    write_wfdb(folder / "records500" / "00000", "00004_hr", copy, 100, LEADS, gain=200.0)
    return tmp_path / "data", folder / "ptbxl_database.csv"


def _prepare(root, **quality):
    return prepare("ptbxl", root, cache_dir=root.parent / "cache", progress=False,
                   manifest=manifest("ptbxl", quality=quality) if quality else None)


def test_a_recording_saved_again_under_another_name_in_the_test_split_is_an_error_naming_both_rows(tmp_path):
    root, csv = _ptbxl(tmp_path, copy_fold=10)
    with pytest.raises(DataError, match=re.escape(f"record 1 ({csv} line 2) in train and record 4 ({csv} line 5) in "
                                                  "test (similarity")):
        _prepare(root)
    assert not (root.parent / "cache" / "prepared").exists() or not any(
        p.name.startswith("ptbxl-") for p in (root.parent / "cache" / "prepared").iterdir())


def test_duplicates_in_one_split_are_kept_and_counted_by_default(tmp_path):
    root, _ = _ptbxl(tmp_path, copy_fold=2)
    prepared = _prepare(root)
    assert prepared.dataset.record_ids.tolist() == ["1", "2", "3", "4"]
    info = json.loads((prepared.folder / "info.json").read_text())["duplicates"]
    assert info["rule"] == "keep" and info["pairs"] == 1 and info["record_pairs"][0][:2] == ["1", "4"]
    assert info["record_pairs"][0][2] >= 0.8


def test_the_drop_rule_leaves_the_later_record_out_and_counts_it(tmp_path):
    root, _ = _ptbxl(tmp_path, copy_fold=2)
    prepared = _prepare(root, duplicate="drop")
    assert prepared.dataset.record_ids.tolist() == ["1", "2", "3"]
    assert len(prepared.dataset.fingerprints) == 3
    assert {"record_id": "4", "reason": "duplicate: the same recording as an earlier record of its split"} in \
        prepared.info["dropped"]
    assert prepared.dataset.signals.shape[0] == 3


def test_the_error_rule_refuses_duplicates_in_one_split(tmp_path):
    root, _ = _ptbxl(tmp_path, copy_fold=2)
    with pytest.raises(DataError, match=re.escape("[quality] duplicate = \"error\"")):
        _prepare(root, duplicate="error")


def test_the_duplicate_rule_defaults_to_keep_and_is_validated():
    rules = {"flat_lead": "keep", "clipped": "keep", "padded": "keep", "cropped": "keep"}
    assert strict_build(Quality, rules, "m [quality]").duplicate == "keep"
    with pytest.raises(ManifestError, match=re.escape("m [quality].duplicate: 'twice' is not one of")):
        strict_build(Quality, {**rules, "duplicate": "twice"}, "m [quality]")


@pytest.mark.parametrize("alias", ["dotdot", "symlink", "absolute"])
def test_two_paths_to_one_file_are_one_record_file(tmp_path, alias):
    root, csv = _ptbxl(tmp_path, copy_fold=2)
    folder = root / "ptbxl"
    if alias == "symlink":
        for ext in ("hea", "dat"):
            os.remove(folder / f"records500/00000/00004_hr.{ext}")
            os.symlink(folder / f"records500/00000/00002_hr.{ext}", folder / f"records500/00000/00004_hr.{ext}")
    else:
        target = ("records500/00000/../00000/00002_hr" if alias == "dotdot"
                  else str(folder / "records500/00000/00002_hr"))
        text = csv.read_text().replace("records500/00000/00004_hr", target)
        csv.write_text(text)
    if alias == "absolute":  # refused before any alias is resolved: a dataset reads files below its folder only
        with pytest.raises(DataError, match=r"filename_hr names '/.*00002_hr', a path outside the dataset folder"):
            _prepare(root)
        return
    with pytest.raises(DataError, match=r"signal location .* is listed 2 times: record 2 .*; record 4 .*; all of "
                                        r"them the file .*00002_hr\.hea"):
        _prepare(root)


def test_grouped_stratified_split_keeps_a_duplicate_pair_in_one_split(tmp_path):
    from ecgbench.data.duplicates import merged_groups
    from ecgbench.data.fingerprint import Match

    groups = merged_groups(np.array(["p1", "p2", "p3", "p2"]), [Match(0, 3, 1.0)])
    assert groups.tolist() == ["p1", "p1", "p3", "p1"]  # p1 and p2 are one group: their records split together
