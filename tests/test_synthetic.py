"""The synthetic stand-ins: shape, determinism, patient splits, physiology measured on the signals, the cache.

Physiology is checked with measurements a cardiologist would make (rate, QRS width, PR, ST level, axis,
voltage), on records whose only label is the class under test. Widths and levels are measured on clean
records (the same hearts and rhythms with the recording noise left out); rate and rhythm on the noisy output.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.signal import butter, find_peaks, sosfiltfilt

from ecgbench.data import synthetic
from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.data.dataset import LEADS, PreparedDataset

FS = 100
I, II, III, AVR, AVL, AVF, V1, V5 = (LEADS.index(lead) for lead in ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V5"))
_BAND = butter(2, [8.0, 20.0], btype="band", fs=FS, output="sos")


# ----------------------------------------------------------------------------------------------------------
# Measurements
# ----------------------------------------------------------------------------------------------------------
def _velocity(x: np.ndarray) -> np.ndarray:
    """Spatial velocity (mV per sample) over the 12 leads."""
    return np.sqrt((np.diff(x, axis=0) ** 2).sum(axis=1))


def _beats(x: np.ndarray) -> np.ndarray:
    """One fiducial per QRS: peak of the smoothed 8-20 Hz spatial energy (works for any QRS axis)."""
    energy = np.convolve(_velocity(sosfiltfilt(_BAND, x, axis=0)) ** 2, np.hanning(11), mode="same")
    peaks, _ = find_peaks(energy, distance=25, height=0.3 * np.percentile(energy, 99))
    return peaks


def _heart_rate(x: np.ndarray) -> float:
    return 60.0 * FS / np.median(np.diff(_beats(x)))


def _rr_cv(x: np.ndarray) -> float:
    rr = np.diff(_beats(x))
    return rr.std() / rr.mean()


def _qrs_spans(x: np.ndarray, frac: float = 0.08, gap: int = 2) -> list[tuple[int, int]]:
    """(onset, end) sample of each complete QRS: where the spatial velocity exceeds 8 % of its QRS maximum."""
    v = _velocity(x)
    spans = []
    for p in _beats(x):
        if p < 45 or p > len(v) - 40:
            continue
        above = v > frac * v[p - 8:p + 9].max()
        lo = hi = p - 8 + int(np.argmax(v[p - 8:p + 9]))
        while lo > gap and above[lo - 1 - gap:lo].any():
            lo -= 1
        while hi < len(v) - 1 - gap and above[hi + 1:hi + 2 + gap].any():
            hi += 1
        spans.append((lo, hi + 1))
    return spans


def _qrs_ms(x: np.ndarray) -> float:
    return 1000.0 / FS * np.median([end - onset for onset, end in _qrs_spans(x)])


def _pr_ms(x: np.ndarray, level: float = 0.02) -> float:
    """P onset to QRS onset: back from the QRS over the PR segment, then to the start of the P wave."""
    magnitude = np.sqrt((x**2).sum(axis=1))
    intervals = []
    for onset, _ in _qrs_spans(x):
        k = onset - 2  # the measured onset may lag the true one by a sample
        while k > onset - 45 and magnitude[k] <= level:
            k -= 1
        while k > onset - 45 and magnitude[k - 1] > level:
            k -= 1
        intervals.append(onset - k)
    return 1000.0 / FS * np.median(intervals)


def _st_mv(x: np.ndarray) -> np.ndarray:
    """Per lead: level 40 ms after the J point minus the level just before QRS onset."""
    return np.median([x[end + 4] - x[onset - 1] for onset, end in _qrs_spans(x)], axis=0)


def _qtc_ms(x: np.ndarray) -> float:
    """Bazett-corrected QT: QRS onset to where the T wave falls below 10 % of its peak (reads ~15 ms early).

    T is searched between the J point and 200 ms before the next QRS, where the next P wave may start; a T
    still above 10 % there ends at the search limit.
    """
    magnitude = np.sqrt((x**2).sum(axis=1))
    spans = _qrs_spans(x)
    qt = []
    for (onset, end), (next_onset, _) in zip(spans, spans[1:]):
        after_j = magnitude[end + 2:next_onset - 20]
        peak = int(np.argmax(after_j))
        below = np.flatnonzero(after_j[peak:] < 0.1 * after_j[peak])
        qt.append(end + 2 + peak + (below[0] if len(below) else len(after_j) - peak) - onset)
    rr_s = np.median(np.diff([onset for onset, _ in spans])) / FS
    return 1000.0 / FS * np.median(qt) / np.sqrt(rr_s)


def _net_qrs(x: np.ndarray) -> np.ndarray:
    """Per lead: QRS area (mV s), the sign used to read the electrical axis."""
    return np.median([x[onset:end + 1].sum(axis=0) / FS for onset, end in _qrs_spans(x)], axis=0)


def _sokolow_mv(x: np.ndarray) -> float:
    """S in V1 + R in V5."""
    return np.median([x[onset:end + 1, V5].max() - x[onset:end + 1, V1].min() for onset, end in _qrs_spans(x)])


def _noise_mv(signals: np.ndarray) -> float:
    """Median absolute second difference: dominated by the recording noise, not by the slow ECG waves."""
    return float(np.median(np.abs(np.diff(np.asarray(signals), n=2, axis=1))))


def _only(labels: np.ndarray, classes: tuple[str, ...], cls: str) -> np.ndarray:
    """Records whose one and only label is ``cls``."""
    j = classes.index(cls)
    return np.flatnonzero((labels[:, j] == 1) & (labels.sum(axis=1) == 1))


def _plain_georgia(cohort, cls: str) -> list[np.ndarray]:
    """Georgia records labelled only ``cls`` whose QRS is narrow and ST flat: Georgia also holds bundle-branch
    blocks and ST depression outside its ten classes, and those move the axis and the end of T."""
    signals = [cohort.signals[i] for i in _only(cohort.labels, DATASET_CLASSES["georgia"], cls)]
    return [x for x in signals if _qrs_ms(x) < 120 and np.sort(np.abs(_st_mv(x)))[-2] < 0.08]


# ----------------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standins(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, PreparedDataset]:
    """The five stand-ins at 1000 records, generated once per session: xdist workers share the cache."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if hasattr(request.config, "workerinput") else base
    return {name: synthetic.load_synthetic(name, 1000, 0, shared) for name in DATASET_CLASSES}


@pytest.fixture(scope="module")
def clean_cpsc():
    return synthetic._simulate("cpsc2018", 1200, 1, noise=False)


@pytest.fixture(scope="module")
def clean_georgia():
    return synthetic._simulate("georgia", 800, 2, noise=False)


# ----------------------------------------------------------------------------------------------------------
# Shape, determinism, splits
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DATASET_CLASSES))
def test_shape_dtype_classes_and_ids(name: str) -> None:
    ds = synthetic.generate(name, 50, 3)
    assert ds.signals.shape == (50, 1000, 12) and ds.signals.dtype == np.float32
    assert np.isfinite(ds.signals).all()
    assert ds.classes == DATASET_CLASSES[name]
    assert ds.labels.dtype == np.uint8 and set(np.unique(ds.labels)) <= {0, 1}
    assert ds.labels.sum(axis=1).min() >= 1  # NORM when nothing else
    assert ds.source == "synthetic" and ds.name == name
    assert ds.record_ids[7] == f"{name}-000007" and len(set(ds.record_ids)) == 50
    assert 0.2 < np.percentile(np.abs(ds.signals).max(axis=(1, 2)), 50) < 5.0  # millivolts


def test_limb_leads_obey_einthoven() -> None:
    x = synthetic.generate("georgia", 20, 0).signals.astype(np.float64)
    np.testing.assert_allclose(x[..., III], x[..., II] - x[..., I], atol=1e-5)
    np.testing.assert_allclose(x[..., AVR] + x[..., AVL] + x[..., AVF], 0.0, atol=1e-5)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b = synthetic.generate("cpsc2018", 80, 7), synthetic.generate("cpsc2018", 80, 7)
    for field in ("signals", "labels", "split", "record_ids", "patient_ids"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.digest == b.digest
    c = synthetic.generate("cpsc2018", 80, 8)
    assert c.digest != a.digest and not np.array_equal(c.signals, a.signals)
    assert synthetic.generate("georgia", 80, 7).digest != a.digest


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown synthetic dataset"):
        synthetic.generate("mitbih", 10, 0)


def test_split_is_by_patient_and_about_70_10_20(standins: dict[str, PreparedDataset]) -> None:
    for ds in standins.values():
        owners = {}
        for patient, split in zip(ds.patient_ids, ds.split):
            assert owners.setdefault(patient, split) == split, f"{ds.name}: patient {patient} in two splits"
        shares = [np.mean(ds.split == s) for s in ("train", "val", "test")]
        np.testing.assert_allclose(shares, [0.7, 0.1, 0.2], atol=0.04)
        records_per_patient = np.unique(ds.patient_ids, return_counts=True)[1]
        assert records_per_patient.max() in (2, 3) and 0.6 < np.mean(records_per_patient == 1) < 0.95


def test_every_class_trains_and_prevalences_are_realistic(standins: dict[str, PreparedDataset]) -> None:
    for ds in standins.values():
        train = ds.labels[ds.indices("train")]
        assert train.sum(axis=0).min() >= 10, f"{ds.name}: a class is (almost) missing from train"
        assert ds.labels.mean(axis=0).max() < 0.85  # no class swamps a set
    for name in ("ptbxl", "cpsc2018", "georgia", "code_test"):
        prevalence = standins[name].labels.mean(axis=0)
        assert prevalence.argmax() == DATASET_CLASSES[name].index("NORM"), name
    code_test = standins["code_test"].labels.mean(axis=0)
    assert code_test.min() < 0.06  # rare classes at a few percent
    assert 0.5 < standins["ptb"].labels[:, 1].mean() < 0.7  # PTB: MI patients outnumber controls


def test_domain_shift_between_standins(standins: dict[str, PreparedDataset]) -> None:
    noise = {name: _noise_mv(ds.signals) for name, ds in standins.items()}
    assert noise["code_test"] > 1.8 * noise["ptb"]
    assert noise["cpsc2018"] > 1.3 * noise["ptbxl"]
    def af_prevalence(name: str) -> float:
        return standins[name].labels[:, DATASET_CLASSES[name].index("AF")].mean()

    assert af_prevalence("cpsc2018") > 2.5 * af_prevalence("code_test")


# ----------------------------------------------------------------------------------------------------------
# Physiology, measured
# ----------------------------------------------------------------------------------------------------------
def test_heart_rate_of_sinus_brady_and_tachycardia(standins: dict[str, PreparedDataset]) -> None:
    ds = standins["georgia"]
    rate = {cls: np.array([_heart_rate(ds.signals[i]) for i in _only(ds.labels, ds.classes, cls)])
            for cls in ("NORM", "SB", "STach")}
    assert min(len(r) for r in rate.values()) >= 20
    assert rate["SB"].max() < 60
    assert rate["STach"].min() > 100
    assert 60 <= rate["NORM"].min() and rate["NORM"].max() <= 100
    assert rate["SB"].max() > 54 and rate["STach"].min() < 110  # mild cases exist, near the thresholds


def test_atrial_fibrillation_is_irregular(standins: dict[str, PreparedDataset]) -> None:
    ds = standins["georgia"]
    cv = {cls: np.array([_rr_cv(ds.signals[i]) for i in _only(ds.labels, ds.classes, cls)]) for cls in ("NORM", "AF")}
    assert len(cv["AF"]) >= 15
    assert np.median(cv["AF"]) > 0.15 and np.percentile(cv["NORM"], 95) < 0.06
    assert cv["AF"].min() > np.percentile(cv["NORM"], 95)


def test_bundle_branch_blocks_widen_the_qrs(clean_cpsc) -> None:
    classes = DATASET_CLASSES["cpsc2018"]
    width = {cls: np.array([_qrs_ms(clean_cpsc.signals[i]) for i in _only(clean_cpsc.labels, classes, cls)])
             for cls in ("NORM", "RBBB", "LBBB")}
    assert len(width["LBBB"]) >= 10 and len(width["RBBB"]) >= 10
    assert width["RBBB"].min() > 120 and width["LBBB"].min() > 120
    assert width["NORM"].max() < 120 and 80 <= np.median(width["NORM"]) <= 100


def _late_deflection(x: np.ndarray, lead: int) -> float:
    """The largest deflection in the second half of the QRS (median over beats), with its sign.

    The QRS is cut at 180 ms: a discordant T can follow a left bundle-branch block without a visible J point.
    """
    def extreme(segment: np.ndarray) -> float:
        return segment[np.argmax(np.abs(segment))]

    late = []
    for onset, end in _qrs_spans(x):
        end = min(end, onset + 18)
        late.append(extreme(x[(onset + end) // 2:end + 1, lead]))
    return np.median(late)


def test_rbbb_and_lbbb_have_their_lead_patterns(clean_cpsc) -> None:
    """Late QRS: RBBB has R' in V1 and a slurred S in I; LBBB a deep S in V1 and a broad R in I."""
    classes = DATASET_CLASSES["cpsc2018"]
    for cls, rbbb in (("RBBB", True), ("LBBB", False)):
        for i in _only(clean_cpsc.labels, classes, cls):
            x = clean_cpsc.signals[i]
            assert (_late_deflection(x, V1) > 0) == rbbb, (cls, i)
            assert (_late_deflection(x, I) < 0) == rbbb, (cls, i)


def test_first_degree_av_block_prolongs_pr(clean_cpsc) -> None:
    classes = DATASET_CLASSES["cpsc2018"]
    pr = {}
    for cls in ("NORM", "IAVB"):
        slow = [i for i in _only(clean_cpsc.labels, classes, cls) if _heart_rate(clean_cpsc.signals[i]) < 80]
        pr[cls] = np.array([_pr_ms(clean_cpsc.signals[i]) for i in slow])
    assert len(pr["IAVB"]) >= 10
    assert pr["IAVB"].min() > 200 and pr["NORM"].max() < 200 and pr["NORM"].min() >= 110


def test_st_elevation_and_depression(clean_cpsc) -> None:
    classes = DATASET_CLASSES["cpsc2018"]
    st = {cls: np.sort([_st_mv(clean_cpsc.signals[i]) for i in _only(clean_cpsc.labels, classes, cls)], axis=1)
          for cls in ("NORM", "STE", "STD")}
    assert len(st["STE"]) >= 5 and len(st["STD"]) >= 10
    assert st["STE"][:, -2].min() >= 0.09  # >= 0.1 mV in at least two leads
    assert st["STD"][:, 1].max() <= -0.09
    assert st["NORM"][:, -2].max() < 0.08 and st["NORM"][:, 1].min() > -0.08  # early repolarisation at most


def test_left_axis_deviation(clean_georgia) -> None:
    lad = np.array([_net_qrs(x) for x in _plain_georgia(clean_georgia, "LAD")])
    norm = np.array([_net_qrs(x) for x in _plain_georgia(clean_georgia, "NORM")])
    assert len(lad) >= 10
    assert (lad[:, I] > 0).all() and (lad[:, AVF] < 0).all() and (lad[:, II] < 0).all()
    assert (norm[:, II] > 0).all()  # axis above -30 degrees


def test_long_qt(clean_georgia) -> None:
    qtc = {cls: np.array([_qtc_ms(x) for x in _plain_georgia(clean_georgia, cls)]) for cls in ("NORM", "LQT")}
    assert len(qtc["LQT"]) >= 10
    assert np.median(qtc["LQT"]) > 470 and 380 < np.median(qtc["NORM"]) < 420
    assert qtc["NORM"].max() < 460 and np.percentile(qtc["LQT"], 10) > np.percentile(qtc["NORM"], 90)


def test_hypertrophy_raises_qrs_voltage() -> None:
    cohort = synthetic._simulate("ptbxl", 600, 4, noise=False)
    classes = DATASET_CLASSES["ptbxl"]
    voltage = {cls: np.array([_sokolow_mv(cohort.signals[i]) for i in _only(cohort.labels, classes, cls)])
               for cls in ("NORM", "HYP")}
    assert len(voltage["HYP"]) >= 10
    # the voltage criterion is met by most, not all, hypertrophied hearts, and by a few normal ones
    assert np.mean(voltage["HYP"] > 3.5) > 0.75 and np.mean(voltage["NORM"] > 3.5) < 0.1
    assert np.median(voltage["HYP"]) > np.percentile(voltage["NORM"], 95)


def test_clean_and_noisy_records_share_the_heart() -> None:
    clean = synthetic._simulate("ptb", 30, 5, noise=False)
    noisy = synthetic.generate("ptb", 30, 5)
    np.testing.assert_array_equal(clean.labels, noisy.labels)
    for i in range(0, 30, 7):
        clean_beats, noisy_beats = _beats(clean.signals[i]), _beats(noisy.signals[i])
        assert len(clean_beats) == len(noisy_beats) and np.abs(clean_beats - noisy_beats).max() <= 1


# ----------------------------------------------------------------------------------------------------------
# The cache
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every real generation that ``load_synthetic`` triggers."""
    calls: list[str] = []
    real = synthetic.generate

    def generate(name: str, n_records: int, seed: int) -> PreparedDataset:
        calls.append(name)
        return real(name, n_records, seed)

    monkeypatch.setattr(synthetic, "generate", generate)
    return calls


def test_cache_generates_once_and_memory_maps(tmp_path, counted: list[str]) -> None:
    first = synthetic.load_synthetic("ptb", 40, 0, tmp_path)
    second = synthetic.load_synthetic("ptb", 40, 0, tmp_path)
    assert counted == ["ptb"]
    assert isinstance(second.signals, np.memmap) and not second.signals.flags.writeable
    for field in ("signals", "labels", "split", "record_ids", "patient_ids", "classes", "digest"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert second.digest == synthetic.generate("ptb", 40, 0).digest
    entries = sorted(p.name for p in (tmp_path / "synthetic").iterdir())
    assert len(entries) == 1 and synthetic.GENERATOR_VERSION in entries[0]  # the entry alone, no debris
    assert "ptb" in entries[0] and "n40" in entries[0] and "seed0" in entries[0]


@pytest.mark.parametrize("name", ["signals.npy", "meta.npz", "fingerprints.npz"])
def test_truncated_cache_is_regenerated(tmp_path, counted: list[str], name: str) -> None:
    expected = np.array(synthetic.load_synthetic("ptb", 40, 1, tmp_path).signals)
    (path,) = (tmp_path / "synthetic").rglob(name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    again = synthetic.load_synthetic("ptb", 40, 1, tmp_path)
    assert counted == ["ptb", "ptb"]
    np.testing.assert_array_equal(again.signals, expected)
    synthetic.load_synthetic("ptb", 40, 1, tmp_path)
    assert len(counted) == 2


def test_concurrent_loads_generate_once(tmp_path, counted: list[str]) -> None:
    results: list[PreparedDataset] = []
    threads = [threading.Thread(target=lambda: results.append(synthetic.load_synthetic("ptb", 30, 2, tmp_path)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counted == ["ptb"] and len(results) == 3
    assert len({r.digest for r in results}) == 1
