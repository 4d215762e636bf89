"""Content fingerprints on real files (issue 22): real PTB-XL records written again as another dataset (another
format, gain, offset, rate and names, or cropped by a sample or two) are found; distinct real recordings are
not, not even two of one patient; the real duplicates the samples hold are. Skipped without the samples."""
import warnings

import numpy as np
import pytest
from data_fixtures import SAMPLES, needs_samples
from scipy.signal import resample_poly

from ecgbench.cli import main
from ecgbench.data.fingerprint import (
    FingerprintSet,
    find_matches,
    fingerprint_signals,
    load_fingerprints,
    save_fingerprints,
)
from ecgbench.data.prepare import prepare
from ecgbench.data.preprocess import crop, pad, resample, standard_leads
from ecgbench.data.registry import get_manifest
from ecgbench.data.synthetic import generate

pytestmark = [pytest.mark.filterwarnings("ignore::ecgbench.data.prepare.IncompleteCopyWarning"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]
KNOWN_DUPLICATES = {"ptbxl": [("137", "138")], "georgia": [("E07509", "E07510")]}  # byte-identical files


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    cache = tmp_path_factory.mktemp("prepared")
    return {name: prepare(name, SAMPLES, cache_dir=cache, progress=False, allow_missing=True)
            for name in ("ptbxl", "cpsc2018", "georgia", "ptb")}


def _model_input(signal_mv: np.ndarray, rate_hz: float, channels: list[str]) -> np.ndarray:
    """What the loaders hand on: the PTB-XL manifest's leads, resampled to 100 Hz, cut/padded to 10 s."""
    spec = get_manifest("ptbxl").signal
    return pad(crop(resample(standard_leads(signal_mv, tuple(channels), spec), rate_hz, 100.0), 1000, "start"),
               1000, "end").astype(np.float32)


def _rewritten(tmp_path, record: str, name: str, how: str) -> np.ndarray:
    """A real 500 Hz PTB-XL record written again as a WFDB record of another dataset, read back."""
    import wfdb

    original = wfdb.rdrecord(str(SAMPLES / "ptbxl" / "records500" / record))
    x, rate = original.p_signal, 500
    if how == "rate_gain_format":
        x, rate = resample_poly(x, 1, 2, axis=0), 250  # another rate
    elif how.startswith("crop"):
        x = x[int(how[-1]):]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wfdb.wrsamp(name, fs=rate, units=["mV"] * 12, sig_name=original.sig_name, p_signal=1.9 * x + 0.35,
                    fmt=["212"] * 12, adc_gain=[150.0] * 12, baseline=[-40] * 12, write_dir=str(tmp_path))
    back = wfdb.rdrecord(str(tmp_path / name))
    return _model_input(back.p_signal, back.fs, back.sig_name)  # 1.9 x the millivolts, 0.35 mV offset


@needs_samples
@pytest.mark.parametrize("how", ["rate_gain_format", "crop1", "crop2", "records100"])
def test_real_records_written_again_as_another_dataset_are_found(prepared, tmp_path, how):
    ds, prints = prepared["ptbxl"].dataset, prepared["ptbxl"].dataset.fingerprints
    chosen = ds.record_ids[::12][:24]
    copies = []
    for rid in chosen:
        base = f"{int(rid) // 1000 * 1000:05d}/{int(rid):05d}"
        if how == "records100":  # PTB-XL's own 100 Hz version of the record
            import wfdb
            lr = wfdb.rdrecord(str(SAMPLES / "ptbxl" / "records100" / f"{base}_lr"))
            copies.append(_model_input(lr.p_signal, 100, lr.sig_name))
        else:
            copies.append(_rewritten(tmp_path, f"{base}_hr", f"mine{rid}", how))
    other = fingerprint_signals("mydata", np.stack(copies), np.array([f"mine{r}" for r in chosen]))
    found = {(str(ds.record_ids[m.i]), str(other.record_ids[m.j])) for m in find_matches(prints, other)}
    expected = {(str(r), f"mine{r}") for r in chosen}
    expected |= {(a, f"mine{b}") for a, b in [("137", "138"), ("138", "137")] if b in chosen}
    assert found == expected


@needs_samples
def test_distinct_real_recordings_are_not_matched_and_the_real_duplicates_are(prepared):
    for name, item in prepared.items():
        ds = item.dataset
        pairs = [(ds.record_ids[m.i], ds.record_ids[m.j]) for m in find_matches(ds.fingerprints)]
        assert pairs == KNOWN_DUPLICATES.get(name, []), name
    ptbxl = prepared["ptbxl"].dataset
    same_patient = sum(int(n * (n - 1) / 2) for n in np.unique(ptbxl.patient_ids, return_counts=True)[1])
    assert same_patient >= 20  # distinct recordings of one patient, none matched but the byte-identical pair
    names = list(prepared)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert find_matches(prepared[a].dataset.fingerprints, prepared[b].dataset.fingerprints) == [], (a, b)


def test_the_smoke_stand_ins_hold_no_false_duplicate():
    sets = [generate(name, 60, 0).fingerprints for name in ("ptbxl", "cpsc2018", "georgia", "ptb", "code_test")]
    for i, a in enumerate(sets):
        assert find_matches(a) == [], a.dataset
        for b in sets[i + 1:]:
            assert find_matches(a, b) == [], (a.dataset, b.dataset)


def test_a_fingerprint_file_round_trips_and_a_damaged_one_is_refused(tmp_path):
    prints = generate("ptb", 20, 0).fingerprints
    save_fingerprints(prints, tmp_path / "f.npz")
    again = load_fingerprints(tmp_path / "f.npz")
    assert isinstance(again, FingerprintSet) and again.digest() == prints.digest()
    (tmp_path / "g.npz").write_bytes((tmp_path / "f.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match="g.npz: not a fingerprint file"):
        load_fingerprints(tmp_path / "g.npz")


def test_overlap_command_exits_0_for_distinct_datasets(tmp_path, capsys):
    assert main(["overlap", "ptb", "code_test", "--synthetic-records", "60", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "code_test test: 0 of" in out and "shared with ptb" in out


@needs_samples
def test_overlap_command_exits_1_when_the_test_split_of_b_is_shared(tmp_path, capsys):
    assert main(["overlap", "georgia", "georgia", "--root", str(SAMPLES), "--cache", str(tmp_path)]) == 1
    assert "georgia E07509" in capsys.readouterr().out
