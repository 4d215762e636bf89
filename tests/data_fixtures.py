"""Small datasets written in each source's native format, and the path of the shared real samples.

Writers use the formats' own tools (``wfdb`` for WFDB records, ``scipy.io.savemat`` for CinC ``.mat``, ``h5py``
for CODE-test) so the loaders are tested on files shaped like the real ones, headers included.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ecgbench.data.registry import get_manifest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "ecg-samples"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"real ECG samples not found at {SAMPLES}")

STANDARD = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
PTB_CHANNELS = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6", "vx", "vy", "vz")


def ecg_like(seconds: float, rate_hz: float, n_leads: int = 12, seed: int = 0) -> np.ndarray:
    """Millivolts [samples, leads]: narrow 'QRS' spikes plus a slow 'T' wave, distinct per lead; the heart rate
    (55-95 bpm) and the first beat depend on ``seed``, so two seeds are two recordings, not one (fingerprints)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate_hz))) / rate_hz
    beats = np.arange(rng.uniform(0.1, 0.6), seconds, 60 / rng.uniform(55, 95))
    qrs = np.exp(-0.5 * ((t[:, None] - beats) / 0.012) ** 2).sum(axis=1)
    tw = np.exp(-0.5 * ((t[:, None] - beats - 0.28) / 0.05) ** 2).sum(axis=1)
    gains = rng.uniform(0.5, 1.5, n_leads) * rng.choice([-1, 1], n_leads)
    return qrs[:, None] * gains + 0.3 * tw[:, None] * np.abs(gains) + rng.normal(0, 0.01, (len(t), n_leads))


def manifest(name: str, **changes) -> object:
    """The registered manifest with nested fields replaced, e.g. ``labels={"unknown": "skip"}``."""
    m = get_manifest(name)
    for field, value in changes.items():
        current = getattr(m, field)
        value = dataclasses.replace(current, **value) if isinstance(value, dict) and dataclasses.is_dataclass(
            current) else value
        m = dataclasses.replace(m, **{field: value})
    return m


# ----------------------------------------------------------------------------------------------------------
# WFDB (PTB-XL, PTB)
# ----------------------------------------------------------------------------------------------------------
def write_wfdb(folder: Path, name: str, signal_mv: np.ndarray, rate_hz: float, channels: tuple[str, ...],
               gain: float = 1000.0, comments: list[str] | None = None, files: list[str] | None = None) -> Path:
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    n = signal_mv.shape[1]
    record = wfdb.Record(record_name=name, n_sig=n, fs=rate_hz, sig_len=len(signal_mv),
                         file_name=files or [f"{name}.dat"] * n, fmt=["16"] * n, adc_gain=[gain] * n,
                         baseline=[0] * n, units=["mV"] * n, sig_name=list(channels), p_signal=signal_mv,
                         comments=comments or [])
    record.set_d_features(do_adc=True)
    record.set_defaults()
    record.wrsamp(write_dir=str(folder))
    return folder / f"{name}.hea"


SCP_STATEMENTS = """,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass
NORM,normal ECG,1.0,,,NORM,NORM
IMI,inferior myocardial infarction,1.0,,,MI,IMI
ASMI,anteroseptal myocardial infarction,1.0,,,MI,AMI
NDT,non-diagnostic T abnormalities,1.0,1.0,,STTC,STTC
LVH,left ventricular hypertrophy,1.0,,,HYP,LVH
CLBBB,complete left bundle branch block,1.0,,,CD,CLBBB
SR,sinus rhythm,,,1.0,,
LVOLT,low QRS voltages in the frontal and horizontal leads,,1.0,,,
"""


@dataclasses.dataclass
class PtbxlRow:
    ecg_id: int
    patient_id: int
    scp_codes: dict
    fold: int


def write_ptbxl(root: Path, rows: list[PtbxlRow], rates: tuple[int, ...] = (500,)) -> Path:
    """``root/ptbxl`` with its two csvs and one 10 s record per row at each rate."""
    folder = root / "ptbxl"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scp_statements.csv").write_text(SCP_STATEMENTS)
    lines = ["ecg_id,patient_id,scp_codes,strat_fold,filename_lr,filename_hr"]
    for row in rows:
        base = f"{row.ecg_id // 1000 * 1000:05d}/{row.ecg_id:05d}"
        lines.append(f'{row.ecg_id},{row.patient_id}.0,"{row.scp_codes}",{row.fold},records100/{base}_lr,'
                     f"records500/{base}_hr")
        for rate in rates:
            suffix = "hr" if rate == 500 else "lr"
            write_wfdb(folder / f"records{rate}" / base[:5], f"{row.ecg_id:05d}_{suffix}",
                       ecg_like(10, rate, seed=row.ecg_id), rate,
                       ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"))
    (folder / "ptbxl_database.csv").write_text("\n".join(lines) + "\n")
    return folder


def write_ptb(root: Path, records: dict[str, str], seconds: float = 32.0) -> Path:
    """``root/ptb`` in the original layout: {"patient001/s0010_re": reason}; 12 leads in .dat, Frank in .xyz."""
    folder = root / "ptb"
    for i, (record_id, reason) in enumerate(records.items()):
        patient, name = record_id.split("/")
        write_wfdb(folder / patient, name, ecg_like(seconds, 1000, 15, seed=i), 1000, PTB_CHANNELS, gain=2000,
                   comments=["age: 81", "sex: female", "", f"Reason for admission: {reason}"],
                   files=[f"{name}.dat"] * 12 + [f"{name}.xyz"] * 3)
    (folder / "RECORDS").write_text("".join(f"{r}\n" for r in records))
    return folder


# ----------------------------------------------------------------------------------------------------------
# CinC .hea + .mat
# ----------------------------------------------------------------------------------------------------------
def write_cinc(folder: Path, name: str, signal_mv: np.ndarray, rate_hz: float, dx: list[str],
               style: str = "2020", name_with_mat: bool = False, gain: float = 1000.0,
               channels: tuple[str, ...] = STANDARD, header_samples: int | None = None) -> Path:
    """A CinC record: ``style`` "2020" writes ``16+24 1000/mV`` and ``#Dx:``, "2021" ``16x1+24 1000.0(0)/mV``
    and ``# Dx:`` (as the newer wfdb does)."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    values = np.round(signal_mv * gain).astype(np.int16).T  # [signals, samples]
    savemat(folder / f"{name}.mat", {"val": values}, format="4")
    checksums = ((values.astype(np.int64).sum(axis=1) + 32768) % 65536) - 32768
    fmt, gain_text, hash_ = ("16+24", f"{gain:g}/mV", "#") if style == "2020" else (
        "16x1+24", f"{gain:.1f}(0)/mV", "# ")
    lines = [f"{name}{'.mat' if name_with_mat else ''} {len(channels)} {rate_hz:g} "
             f"{header_samples or values.shape[1]} 05-Feb-2020 11:39:16"]
    lines += [f"{name}.mat {fmt} {gain_text} 16 0 {v[0]} {c} 0 {lead}"
              for v, c, lead in zip(values, checksums, channels)]
    lines += [f"{hash_}Age: 74", f"{hash_}Sex: Male", f"{hash_}Dx: {','.join(dx)}", f"{hash_}Rx: Unknown"]
    path = folder / f"{name}.hea"
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------------------------
# CODE-test HDF5 + csv
# ----------------------------------------------------------------------------------------------------------
CODE_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")


def write_code_test(root: Path, labels: np.ndarray, seconds: list[float] | None = None) -> Path:
    """``root/code_test``: tracings (n, 4096, 12) float32 at 400 Hz, each zero-padded around its recording."""
    import h5py

    folder = root / "code_test"
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    tracings = np.zeros((len(labels), 4096, 12), dtype=np.float32)
    for i, s in enumerate(seconds or [10.0] * len(labels)):
        x = ecg_like(s, 400, seed=i)
        start = (4096 - len(x)) // 2
        tracings[i, start:start + len(x)] = x
    with h5py.File(folder / "ecg_tracings.hdf5", "w") as f:
        f.create_dataset("tracings", data=tracings)
    lines = [",".join(CODE_COLUMNS)] + [",".join(str(int(v)) for v in row) for row in labels]
    (folder / "annotations" / "gold_standard.csv").write_text("\n".join(lines) + "\n")
    return folder
