"""Each loader on files written in its native format, and every kind of bad input."""
import os
import warnings

import numpy as np
import pytest
from data_fixtures import PtbxlRow, ecg_like, manifest, write_cinc, write_code_test, write_ptb, write_ptbxl

from ecgbench.data.loaders import CincLoader, CodeTestLoader, EcgRecordError, MissingFileError, PtbxlLoader
from ecgbench.data.loaders.base import RecordEntry
from ecgbench.data.manifest import DataError
from ecgbench.data.prepare import IncompleteCopyWarning, prepare
from ecgbench.data.registry import get_manifest

pytestmark = [pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]

PTBXL_ROWS = [
    PtbxlRow(1, 101, {"NORM": 100.0, "SR": 0.0}, 1),
    PtbxlRow(2, 101, {"IMI": 15.0, "LVOLT": 0.0}, 9),
    PtbxlRow(3, 102, {"ASMI": 100.0, "CLBBB": 100.0, "SR": 0.0}, 10),
    PtbxlRow(4, 103, {"SR": 0.0}, 2),  # no diagnostic statement: dropped
]


def _prepare(tmp_path, name, **options):
    return prepare(name, tmp_path / "data", cache_dir=tmp_path / "cache", progress=False, **options)


# ----------------------------------------------------------------------------------------------------------
# PTB-XL
# ----------------------------------------------------------------------------------------------------------
def test_ptbxl_labels_by_superclass_of_diagnostic_statements(tmp_path):
    folder = write_ptbxl(tmp_path, PTBXL_ROWS, rates=())
    index = PtbxlLoader(folder, get_manifest("ptbxl")).index()
    assert [(e.record_id, e.patient_id, e.labels, e.fold) for e in index.entries] == [
        ("1", "101", ("NORM",), 1), ("2", "101", ("MI",), 9), ("3", "102", ("CD", "MI"), 10), ("4", "103", (), 2)]
    strict = PtbxlLoader(folder, manifest("ptbxl", format={"options": {"rate_hz": 500, "min_likelihood": 50.0}}))
    assert strict.index().entries[1].labels == ()  # IMI at likelihood 15 no longer counts


def test_ptbxl_prepares_either_rate_to_the_same_input(tmp_path):
    write_ptbxl(tmp_path / "data", PTBXL_ROWS, rates=(500, 100))
    hi = _prepare(tmp_path, "ptbxl").dataset
    lo = _prepare(tmp_path, "ptbxl", manifest=manifest("ptbxl", format={
        "options": {"rate_hz": 100, "min_likelihood": 0.0}})).dataset
    assert hi.record_ids.tolist() == lo.record_ids.tolist() == ["1", "2", "3"]
    assert hi.labels.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 1, 0, 0, 1]]
    assert hi.split.tolist() == ["train", "val", "test"] and hi.patient_ids.tolist() == ["101", "101", "102"]
    assert hi.source == "real" and isinstance(hi.signals, np.memmap) and not hi.signals.flags.writeable
    np.testing.assert_allclose(hi.signals[:, 20:-20], lo.signals[:, 20:-20], atol=0.05)


# ----------------------------------------------------------------------------------------------------------
# CinC (CPSC2018, Georgia)
# ----------------------------------------------------------------------------------------------------------
def test_cinc_headers_of_both_challenge_years(tmp_path):
    folder = tmp_path / "data" / "cpsc2018"
    write_cinc(folder, "A0001", ecg_like(6, 500, seed=1), 500, ["59118001"], style="2020")
    write_cinc(folder, "A0002", ecg_like(60, 500, seed=2), 500, ["164889003", "713427006", "17338001"],
               style="2021", name_with_mat=True)
    write_cinc(folder / "sub", "A0003", ecg_like(10, 500, seed=3), 500, ["426783006"], style="2021")
    ds = _prepare(tmp_path, "cpsc2018").dataset
    assert ds.record_ids.tolist() == ["A0001", "A0002", "A0003"]
    classes = list(ds.classes)
    assert [sorted(np.array(classes)[row == 1]) for row in ds.labels] == [["RBBB"], ["AF", "RBBB", "VEB"], ["NORM"]]
    assert ds.patient_ids.tolist() == ds.record_ids.tolist()
    np.testing.assert_allclose(ds.signals[2, 100:900], ecg_like(10, 500, seed=3)[::5][100:900], atol=0.15)
    assert not ds.signals[0, 601:].any()  # the 6 s record is zero-padded


def test_cinc_reads_millivolts_through_the_header_gain(tmp_path):
    x = ecg_like(10, 500)
    write_cinc(tmp_path, "E00001", x, 500, ["426783006"], style="2021", gain=500.0)
    entry = CincLoader(tmp_path, get_manifest("georgia")).index().entries[0]
    raw = CincLoader(tmp_path, get_manifest("georgia")).read(entry)
    np.testing.assert_allclose(raw.signal, x, atol=1.5 / 500)
    assert raw.rate_hz == 500 and raw.channels[3] == "aVR"


# ----------------------------------------------------------------------------------------------------------
# PTB
# ----------------------------------------------------------------------------------------------------------
def test_ptb_original_layout_uses_the_12_leads_and_the_reason_for_admission(tmp_path):
    write_ptb(tmp_path / "data", {"patient001/s0010_re": "Myocardial infarction", "patient001/s0014lre":
                                  "Myocardial infarction", "patient104/s0306lre": "Healthy control",
                                  "patient159/s0390lre": "Hypertrophy"})
    prepared = _prepare(tmp_path, "ptb")
    ds = prepared.dataset
    assert ds.record_ids.tolist() == ["patient001/s0010_re", "patient001/s0014lre", "patient104/s0306lre"]
    assert ds.patient_ids.tolist() == ["patient001", "patient001", "patient104"]
    assert ds.labels.tolist() == [[0, 1], [0, 1], [1, 0]]
    assert prepared.info["dropped_by_reason"] == {"no class of the manifest": 1}
    x = ecg_like(32, 1000, 15, seed=0)[:, :12]
    np.testing.assert_allclose(ds.signals[0, 100:900], x[::10][100:900], atol=0.15)


def test_ptb_cinc_layout_with_its_corrected_gain(tmp_path):
    folder = tmp_path / "data" / "ptb"
    x = ecg_like(38.4, 1000, seed=5)
    # as released: microvolt values under a header claiming 2000000/mV
    write_cinc(folder, "S0001", x, 1000, ["164865005"], gain=1000.0)
    header = folder / "S0001.hea"
    header.write_text(header.read_text().replace("1000/mV", "2000000/mV"))
    ds = _prepare(tmp_path, "ptb").dataset
    assert ds.record_ids.tolist() == ["S0001"] and ds.labels.tolist() == [[0, 1]]
    np.testing.assert_allclose(ds.signals[0, 100:900], x[::10][100:900], atol=0.15)
    wrong = manifest("ptb", format={"options": {"layout": "cinc", "cinc_adc_gain_per_mv": 0.0}})
    with pytest.raises(EcgRecordError, match="S0001: implausible amplitude"):
        _prepare(tmp_path, "ptb", manifest=wrong)


# ----------------------------------------------------------------------------------------------------------
# CODE-test
# ----------------------------------------------------------------------------------------------------------
def test_code_test_hdf5_with_norm_as_none_of_the_six(tmp_path):
    labels = np.zeros((4, 6), dtype=int)
    labels[1, 1] = labels[2, 0] = labels[2, 4] = 1
    write_code_test(tmp_path / "data", labels, seconds=[10.0, 7.0, 9.0, 10.0])
    ds = _prepare(tmp_path, "code_test").dataset
    assert ds.classes == ("NORM", "1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
    assert ds.labels.tolist() == [[1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 1, 0],
                                  [1, 0, 0, 0, 0, 0, 0]]
    assert ds.record_ids.tolist() == ["0", "1", "2", "3"]
    # a 7 s recording centred in 10.24 s of zeros keeps zeros on both sides after the centre crop
    assert not ds.signals[1, :130].any() and not ds.signals[1, -130:].any() and ds.signals[1, 200:800].any()


def test_code_test_rows_must_match_tracings(tmp_path):
    folder = write_code_test(tmp_path, np.zeros((3, 6), dtype=int))
    csv = folder / "annotations" / "gold_standard.csv"
    csv.write_text(csv.read_text() + "0,0,0,0,0,0\n")
    with pytest.raises(DataError, match="gold_standard.csv has 4 rows but .*ecg_tracings.hdf5 holds 3 records"):
        CodeTestLoader(folder, get_manifest("code_test")).index()


def _rewrite_tracings(path, transform) -> None:
    import h5py

    with h5py.File(path, "a") as f:
        data = transform(f["tracings"][...])
        del f["tracings"]
        if data is not None:
            f.create_dataset("tracings", data=data)


@pytest.mark.parametrize("damage, error, message", [
    (lambda path: path.unlink(), MissingFileError, r"record 1: missing signals file .*ecg_tracings\.hdf5"),
    (lambda path: path.write_bytes(b"not an HDF5 file"), DataError,
     r"ecg_tracings\.hdf5: cannot read HDF5 dataset 'tracings': OSError"),
    (lambda path: _rewrite_tracings(path, lambda x: None), DataError,
     r"ecg_tracings\.hdf5: cannot read HDF5 dataset 'tracings': KeyError"),
    (lambda path: _rewrite_tracings(path, lambda x: x[..., :11]), DataError,
     r"ecg_tracings\.hdf5: signals of shape \(3, 4096, 11\), expected \(records, samples, 12\)"),
    (lambda path: _rewrite_tracings(path, lambda x: x[0]), DataError, r"signals of shape \(4096, 12\), expected"),
])
def test_a_damaged_signal_array_is_an_error_naming_the_file(tmp_path, damage, error, message):
    folder = write_code_test(tmp_path, np.zeros((3, 6), dtype=int))
    damage(folder / "ecg_tracings.hdf5")
    loader = CodeTestLoader(folder, get_manifest("code_test"))
    with pytest.raises(error, match=message):
        loader.read(RecordEntry("1", "1", (), "1"))


def test_a_row_past_the_end_of_the_array_names_the_record_and_the_file(tmp_path):
    folder = write_code_test(tmp_path, np.zeros((3, 6), dtype=int))
    loader = CodeTestLoader(folder, get_manifest("code_test"))
    assert loader.read(RecordEntry("2", "2", (), "2")).signal.shape == (4096, 12)
    with pytest.raises(EcgRecordError, match=r"record 7: cannot read row 7 of .*ecg_tracings\.hdf5"):
        loader.read(RecordEntry("7", "7", (), "7"))
    loader.close()
    assert loader.read(RecordEntry("0", "0", (), "0")).signal.shape == (4096, 12)  # opened again after close


# ----------------------------------------------------------------------------------------------------------
# Bad input: a clear error naming the record, or skipped and counted where the manifest allows
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def cpsc(tmp_path):
    folder = tmp_path / "data" / "cpsc2018"
    for i in range(1, 5):
        write_cinc(folder, f"A000{i}", ecg_like(10, 500, seed=i), 500, ["426783006"])
    return folder


def _truncate(path, keep):
    with open(path, "r+b") as f:
        f.truncate(keep)


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


BAD_CINC = {
    "missing .mat": (lambda f: os.remove(f / "A0002.mat"), MissingFileError, "A0002: missing data file"),
    "truncated .mat": (lambda f: _truncate(f / "A0002.mat", 5000), EcgRecordError, "A0002: cannot read"),
    "sample count": (lambda f: _edit(f / "A0002.hea", "12 500 5000", "12 500 4000"), EcgRecordError,
                     "A0002: .* shape \\(12, 5000\\) but the header declares 12 signals x 4000 samples"),
    "unknown code": (lambda f: _edit(f / "A0002.hea", "Dx: 426783006", "Dx: 426783006,999999"), EcgRecordError,
                     r"A0002: unknown source label\(s\) \['999999'\]"),
    "sampling rate": (lambda f: _edit(f / "A0002.hea", "12 500 5000", "12 250 5000"), EcgRecordError,
                      "A0002: unexpected sampling rate 250 Hz"),
    "lead set": (lambda f: _edit(f / "A0002.hea", " V6\n", " X1\n"), EcgRecordError, "A0002: unexpected lead set"),
    "checksum": (lambda f: _corrupt_mat(f / "A0002.mat"), EcgRecordError, "A0002: .* checksum"),
    "header syntax": (lambda f: _edit(f / "A0002.hea", "16+24", "16+x"), EcgRecordError,
                      "A0002: .*cannot parse signal line"),
}


def _corrupt_mat(path):
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", BAD_CINC)
def test_a_bad_cinc_record_is_an_error_naming_it(tmp_path, cpsc, case):
    damage, error, message = BAD_CINC[case]
    damage(cpsc)
    with pytest.raises(error, match=message):
        _prepare(tmp_path, "cpsc2018")


@pytest.mark.parametrize("case", BAD_CINC)
def test_a_bad_cinc_record_is_skipped_and_counted_where_the_manifest_allows(tmp_path, cpsc, case):
    BAD_CINC[case][0](cpsc)
    allow = manifest("cpsc2018", bad_records="skip", labels={"unknown": "skip"})
    prepared = _prepare(tmp_path, "cpsc2018", manifest=allow, allow_missing=case.startswith("missing"))
    assert prepared.dataset.record_ids.tolist() == ["A0001", "A0003", "A0004"]
    assert [d["record_id"] for d in prepared.info["dropped"]] == ["A0002"]


@pytest.fixture
def ptbxl(tmp_path):
    return write_ptbxl(tmp_path / "data", PTBXL_ROWS[:3])


def _nan_sample(folder):
    path = folder / "records500" / "00000" / "00002_hr.dat"
    data = bytearray(path.read_bytes())
    data[200:202] = (-32768).to_bytes(2, "little", signed=True)  # format 16's "no sample" marker
    path.write_bytes(bytes(data))
    header = path.with_suffix(".hea")
    lines = header.read_text().splitlines()
    # keep the checksum honest, so that the NaN check is what fires
    values = np.frombuffer(bytes(data), dtype="<i2").reshape(-1, 12).astype(np.int64)
    sums = ((values.sum(axis=0) + 32768) % 65536) - 32768
    for i in range(1, 13):
        fields = lines[i].split()
        fields[6] = str(sums[i - 1])
        lines[i] = " ".join(fields)
    header.write_text("\n".join(lines) + "\n")


BAD_WFDB = {
    "missing .dat": (lambda f: os.remove(f / "records500/00000/00002_hr.dat"), MissingFileError,
                     "record 2: missing data file"),
    "truncated .dat": (lambda f: _truncate(f / "records500/00000/00002_hr.dat", 70000), EcgRecordError,
                       "record 2: .*00002_hr.dat is truncated: 70000 bytes"),
    "sample count": (lambda f: _edit(f / "records500/00000/00002_hr.hea", "12 500 5000", "12 500 4000"),
                     EcgRecordError, "record 2: .*the sample count disagrees with the data"),
    "NaN": (_nan_sample, EcgRecordError, r"record 2: 1 NaN or infinite samples \(leads \['AVL'\]\)"),
    "unknown code": (lambda f: _edit(f / "ptbxl_database.csv", "{'IMI': 15.0", "{'XYZ': 15.0"), EcgRecordError,
                     r"record 2: unknown source label\(s\) \['XYZ'\]"),
}


@pytest.mark.parametrize("case", BAD_WFDB)
def test_a_bad_wfdb_record_is_an_error_naming_it(tmp_path, ptbxl, case):
    damage, error, message = BAD_WFDB[case]
    damage(ptbxl)
    with pytest.raises(error, match=message):
        _prepare(tmp_path, "ptbxl")


def test_a_partial_copy_skips_missing_records_only_when_asked(tmp_path, ptbxl):
    os.remove(ptbxl / "records500/00000/00002_hr.dat")
    with pytest.raises(MissingFileError, match="--allow-missing"):
        _prepare(tmp_path, "ptbxl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = _prepare(tmp_path, "ptbxl", allow_missing=True)
    assert any(issubclass(w.category, IncompleteCopyWarning) for w in caught)
    assert prepared.dataset.record_ids.tolist() == ["1", "3"]
    assert prepared.info["dropped"][0]["record_id"] == "2"
    assert prepared.info["dropped"][0]["reason"].startswith("missing file: missing data file")


def test_unmapped_records_are_kept_with_an_all_zero_row_when_the_manifest_says_keep(tmp_path):
    write_ptbxl(tmp_path / "data", PTBXL_ROWS)
    keep = _prepare(tmp_path, "ptbxl", manifest=manifest("ptbxl", labels={"unmapped": "keep"}))
    assert keep.dataset.record_ids.tolist() == ["1", "2", "3", "4"] and not keep.dataset.labels[3].any()
    assert keep.info["without_class"] == 1 and keep.info["dropped"] == []
    drop = _prepare(tmp_path, "ptbxl")
    assert drop.info["dropped"] == [{"record_id": "4", "reason": "no class of the manifest"}]
