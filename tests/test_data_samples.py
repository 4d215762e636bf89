"""The loaders on real files: slices of PTB-XL, CPSC2018, Georgia, PTB and CODE-test in ../shared/ecg-samples.

Expected labels were read by hand from the records' headers, ptbxl_database.csv / scp_statements.csv and
gold_standard.csv. Skipped when the samples are absent.
"""
import dataclasses

import numpy as np
import pandas as pd
import pytest
from data_fixtures import SAMPLES, manifest, needs_samples

from ecgbench.data.loaders import CodeTestLoader, MissingFileError, PtbLoader
from ecgbench.data.prepare import prepare
from ecgbench.data.registry import get_manifest
from ecgbench.runner import CellRunner, RunOptions
from ecgbench.study import Cell

pytestmark = [needs_samples, pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")


def _classes(ds, record_id):
    row = ds.labels[ds.record_ids.tolist().index(record_id)]
    return sorted(np.array(ds.classes)[row == 1].tolist())


@pytest.fixture(scope="module")
def ptbxl(cache):
    return prepare("ptbxl", SAMPLES, cache_dir=cache, progress=False)


def test_ptbxl_sample_labels_folds_and_patients(ptbxl):
    ds = ptbxl.dataset
    assert ds.signals.shape == (292, 1000, 12)
    assert _classes(ds, "1") == ["NORM"]  # NORM 100, LVOLT 0 (form), SR 0 (rhythm)
    assert _classes(ds, "8") == ["MI"]  # IMI 35
    assert _classes(ds, "26") == ["STTC"]  # NST_ 100, DIG 100
    assert _classes(ds, "39") == ["MI", "STTC"]  # IMI 15 (counts: min_likelihood 0), LNGQT, NST_, DIG
    assert {"17", "18"} <= {d["record_id"] for d in ptbxl.info["dropped"]}  # AFLT only: rhythm, no class
    table = pd.read_csv(SAMPLES / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    folds = table.loc[ds.record_ids.astype(int), "strat_fold"].to_numpy()
    assert set(folds[ds.split == "train"]) == set(range(1, 9))
    assert set(folds[ds.split == "val"]) == {9} and set(folds[ds.split == "test"]) == {10}
    assert ds.patient_ids[ds.record_ids.tolist().index("1")] == "15709"


def test_ptbxl_500_hz_resampled_matches_physionets_own_100_hz_copy(ptbxl, cache):
    low = prepare("ptbxl", SAMPLES, cache_dir=cache, progress=False, limit=10, manifest=manifest(
        "ptbxl", format={"options": {"rate_hz": 100, "min_likelihood": 0.0}})).dataset
    high = ptbxl.dataset.signals[:10, 50:-50].ravel()
    assert np.corrcoef(high, low.signals[:, 50:-50].ravel())[0, 1] > 0.98


def test_a_smoke_cell_trains_on_the_prepared_ptbxl_sample(ptbxl, cache, tmp_path, smoke_profile):
    profile = dataclasses.replace(smoke_profile, models=("resnet1d18",))
    study = CellRunner(profile, RunOptions(results_dir=tmp_path / "results", cache_dir=cache, data_root=SAMPLES))
    record = study.run(Cell("ptbxl", "resnet1d18", 1.0, "scratch", 0))
    assert record["status"] == "ok", record["error"]
    assert record["data_source"] == "real" and record["identity"]["downstream_digest"] == ptbxl.dataset.digest
    assert record["sizes"] == {"train": 200, "train_full": 200, "val": 50, "test": 42}


def test_cpsc2018_sample(cache):
    prepared = prepare("cpsc2018", SAMPLES, cache_dir=cache, progress=False)
    ds = prepared.dataset
    assert ds.signals.shape == (100, 1000, 12) and prepared.info["dropped"] == []
    assert _classes(ds, "A0001") == ["RBBB"]  # #Dx: 59118001
    assert _classes(ds, "A0002") == ["NORM"]  # 426783006
    assert _classes(ds, "A0005") == ["VEB"]  # 164884008
    assert _classes(ds, "A0043") == ["AF", "RBBB"]  # 164889003,59118001
    assert _classes(ds, "A0018") == ["LBBB"]  # 164909002; 50.4 s long: the first 10 s are kept
    assert ds.signals[ds.record_ids.tolist().index("A0018")].any(axis=1).all()


def test_georgia_sample(cache):
    prepared = prepare("georgia", SAMPLES, cache_dir=cache, progress=False)
    ds = prepared.dataset
    assert _classes(ds, "E07500") == ["SB"]  # # Dx: 67741000119109 (LAE, ignored), 426177001
    assert _classes(ds, "E07501") == ["STach"]  # 253352002 (LAA, ignored), 427084000
    assert _classes(ds, "E07504") == ["LQT"]  # 111975006
    dropped = {d["record_id"]: d["reason"] for d in prepared.info["dropped"]}
    assert dropped == {"E07505": "no class of the manifest", "E07519": "no class of the manifest"}  # LVH only


def test_ptb_sample_in_both_layouts(cache):
    original = prepare("ptb", SAMPLES, cache_dir=cache, progress=False)
    assert original.dataset.record_ids.tolist() == ["patient001/s0010_re"]
    assert original.dataset.patient_ids.tolist() == ["patient001"] and _classes(original.dataset,
                                                                                 "patient001/s0010_re") == ["MI"]
    assert any("CinC copies" in note for note in original.info["notes"])
    cinc = prepare("ptb", SAMPLES, cache_dir=cache, progress=False,
                   manifest=manifest("ptb", format={"options": {"layout": "cinc", "cinc_adc_gain_per_mv": 1000.0}}))
    assert cinc.dataset.record_ids.tolist() == ["S0001"] and _classes(cinc.dataset, "S0001") == ["MI"]
    # S0001 is the CinC repackaging of patient001/s0010_re: with the corrected gain both give the same millivolts
    np.testing.assert_allclose(cinc.dataset.signals[0], original.dataset.signals[0], atol=2e-3)


def test_ptb_sample_reason_for_admission_is_read_from_the_header():
    index = PtbLoader(SAMPLES / "ptb", get_manifest("ptb")).index()
    assert [(e.record_id, e.labels) for e in index.entries] == [("patient001/s0010_re", ("Myocardial infarction",))]


def test_code_test_sample_labels_and_a_clear_error_for_the_absent_tracings(cache):
    entries = CodeTestLoader(SAMPLES / "code_test", get_manifest("code_test")).index().entries
    assert len(entries) == 827
    assert entries[0].labels == () and entries[1].labels == ("LBBB",) and entries[120].labels == ("AF",)
    with pytest.raises(MissingFileError, match="record 0: missing .*ecg_tracings.hdf5"):
        prepare("code_test", SAMPLES, cache_dir=cache, progress=False)


def test_default_quality_rules_keep_every_fine_sample_record_and_count_the_cropped_ones(ptbxl, cache):
    """CPSC2018's 10-60 s records are cropped to 10 s by the study's protocol: counted, never dropped."""
    cpsc = prepare("cpsc2018", SAMPLES, cache_dir=cache, progress=False)
    longer = sorted(p.stem for p in (SAMPLES / "cpsc2018").glob("*.hea")
                    if int(p.read_text().split()[3]) > 5000 + 2)  # samples at 500 Hz, beyond 10 s
    assert cpsc.info["dropped"] == [] and len(cpsc.dataset.record_ids) == 100
    assert len(longer) > 10 and cpsc.info["quality"]["cropped"]["record_ids"] == longer
    for prepared in (cpsc, ptbxl):
        quality = prepared.info["quality"]
        assert {found["rule"] for found in quality.values()} == {"keep"}
        assert [quality[flag]["records"] for flag in ("flat_lead", "clipped", "padded")] == [0, 0, 0]
    assert ptbxl.info["quality"]["cropped"]["records"] == 0  # every PTB-XL record is 10 s
