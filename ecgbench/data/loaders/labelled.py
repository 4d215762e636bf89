"""A researcher's own data: a labels CSV beside a folder of WFDB records (``wfdb``) or one array file (``array``).

The labels CSV has a ``record`` column (WFDB: the record's path below the dataset folder, without extension;
array: the record's id, row i labelling array row i), ``labels`` (class names separated by ``;``, empty for
none), and optionally ``patient`` (records of one patient share a split) and ``split`` (train/val/test on every
row, read as folds 1/2/3 for the manifest's ``rule = "folds"``; without it the seeded stratified split applies).
WFDB records are read with the ``wfdb`` package, so every signal format it reads (16, 212, 24, ...) works.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ecgbench.data.loaders.array_file import ArrayFileLoader
from ecgbench.data.loaders.base import EcgRecordError, Index, Loader, MissingFileError, RawRecord, RecordEntry
from ecgbench.data.loaders.wfdb_format import _TO_MV as TO_MV
from ecgbench.data.loaders.wfdb_format import check_header_gains
from ecgbench.data.manifest import DataError

SPLIT_FOLDS = {"train": 1, "val": 2, "test": 3}  # the ``split`` column as folds, for a ``rule = "folds"`` split
REQUIRED_COLUMNS = ("record", "labels")
OPTIONAL_COLUMNS = ("patient", "split")
CLIP_RUN_S = 0.01  # a plateau this long at the ADC's limit is clipping; wfdb.wrsamp scales a record's own
# extremes to the limits, so a single sample there is normal in wfdb-written files
_FORMAT_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 10,
                "311": 10, "508": 8, "516": 16, "524": 24}


@dataclass(frozen=True)
class LabelRow:
    record: str
    labels: tuple[str, ...]
    patient: str
    fold: int | None
    origin: str  # "FILE line N"


def read_label_table(path: Path) -> tuple[list[LabelRow], list[str]]:
    """Rows of a labels CSV and notes for the user; a malformed table is an error naming the file and line."""
    if not path.is_file():
        raise DataError(f"{path}: the labels CSV does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if missing or unknown:
            raise DataError(f"{path}: columns {columns}: missing {missing}, unknown {unknown} (expected "
                            f"{list(REQUIRED_COLUMNS)} and optionally {list(OPTIONAL_COLUMNS)})")
        rows = []
        for line, raw in enumerate(reader, start=2):
            where = f"{path} line {line}"
            if None in raw or None in raw.values():
                fields = len(columns) + len(raw.get(None, [])) - sum(v is None for v in raw.values())
                raise DataError(f"{where}: {fields} fields, the header has {len(columns)} (a record's labels are "
                                "separated by ';', not ','; quote a field that holds a comma)")
            row = {k.strip(): v.strip() for k, v in raw.items()}
            if not row["record"]:
                raise DataError(f"{where}: empty record name")
            row["record"] = PurePosixPath(row["record"]).as_posix()  # "./records/r000" names "records/r000"
            split = row.get("split", "")
            if "split" in columns and split not in SPLIT_FOLDS:
                raise DataError(f"{where}: split {split!r} is not one of {list(SPLIT_FOLDS)} (the split column, "
                                "when present, must be filled on every row)")
            labels = tuple(label.strip() for label in row["labels"].split(";") if label.strip())
            rows.append(LabelRow(row["record"], labels, row.get("patient") or row["record"],
                                 SPLIT_FOLDS[split] if split else None, where))
    if not rows:
        raise DataError(f"{path}: no rows")
    _check_one_row_per_record(rows)
    _check_patients_in_one_split(rows, path)
    notes = [] if "patient" in columns else [f"{path.name} has no patient column: each record is its own patient"]
    return rows, notes


def _check_one_row_per_record(rows: list[LabelRow]) -> None:
    """A second row of a record would store it twice, perhaps in two splits."""
    first: dict[str, LabelRow] = {}
    repeats = [f"{row.origin} repeats record {row.record!r} of {first[row.record].origin}"
               for row in rows if first.setdefault(row.record, row) is not row]
    if repeats:
        raise DataError(f"{len(repeats)} label row(s) repeat a record (one row per record): " + "; ".join(repeats[:5]))


def _check_patients_in_one_split(rows: list[LabelRow], path: Path) -> None:
    """A patient's records share one split (a patient in train and test leaks the test set into training)."""
    splits: dict[str, set[int]] = {}
    for row in rows:
        if row.fold is not None:
            splits.setdefault(row.patient, set()).add(row.fold)
    names = {fold: split for split, fold in SPLIT_FOLDS.items()}
    mixed = [f"{patient} ({', '.join(names[f] for f in sorted(folds))})"
             for patient, folds in splits.items() if len(folds) > 1]
    if mixed:
        raise DataError(f"{path}: {len(mixed)} patient(s) have records in more than one split, which leaks test "
                        f"records into training: {', '.join(mixed[:5])}; give each patient's rows one split")


def check_rows_match_records(root: Path, rows: list[LabelRow], labels_path: Path) -> None:
    """Every label row names a WFDB record below ``root`` and every record has a row: else an error naming them."""
    absent = [f"{r.origin} names record {r.record!r} but {root / (r.record + '.hea')} does not exist"
              for r in rows if not (root / (r.record + ".hea")).is_file()]
    listed = {r.record for r in rows}
    unlabelled = [str(p) for p in sorted(root.rglob("*.hea")) if str(p.relative_to(root).with_suffix("")) not in listed]
    if absent or unlabelled:
        raise DataError(f"{len(absent)} label row(s) name a missing record and {len(unlabelled)} record(s) have no "
                        "label row (every record needs exactly one row): "
                        + "; ".join(absent[:5] + [f"{p} has no row in {labels_path}" for p in unlabelled[:5]]))


@dataclass(frozen=True)
class WfdbOptions:
    labels_file: str  # the labels CSV, relative to the dataset folder


class WfdbLoader(Loader):
    """A folder of WFDB records (any signal format, rate and length) and a labels CSV."""

    kind = "wfdb"
    version = "1"
    Options = WfdbOptions

    def index(self) -> Index:
        rows, notes = read_label_table(self.path(self.options.labels_file))
        check_rows_match_records(self.root, rows, self.path(self.options.labels_file))
        return Index([RecordEntry(r.record, r.patient, r.labels, r.record, r.fold, r.origin) for r in rows],
                     notes=notes)

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        return (entry.location + ".hea",)

    def read(self, entry: RecordEntry) -> RawRecord:
        import wfdb

        base = self.path(entry.location)
        if not base.with_name(base.name + ".hea").is_file():
            raise MissingFileError(entry.record_id, f"missing header {base}.hea")
        check_header_gains(base.with_name(base.name + ".hea"), entry.record_id)
        try:
            record = wfdb.rdrecord(str(base), physical=False)
        except Exception as e:  # wfdb raises many types for one cause: a record it cannot read
            raise EcgRecordError(entry.record_id, f"{base}.hea: wfdb cannot read the record: {type(e).__name__}: "
                                                  f"{e}") from None
        return wfdb_millivolts(record, entry.record_id, f"{base}.hea")


def _longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in ``mask``."""
    if not mask.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return int((edges[1::2] - edges[::2]).max())


def wfdb_millivolts(record, record_id: str, where: str) -> RawRecord:
    """A ``wfdb.Record`` read with ``physical=False`` -> millivolts, refusing gains WFDB would guess or invert;
    a signal is clipped where it stays at its ADC's limit for ``CLIP_RUN_S`` or longer."""
    for name, gain, unit in zip(record.sig_name, record.adc_gain, record.units):
        if not (np.isfinite(gain) and gain > 0):
            raise EcgRecordError(record_id, f"{where}: signal {name!r} has gain {gain}: it must be a positive number "
                                            "of ADC units per unit (0 means uncalibrated, a negative gain inverts)")
        if (unit or "mV").lower() not in TO_MV:
            raise EcgRecordError(record_id, f"{where}: signal {name!r} has unknown physical unit {unit!r}")
    digital = np.asarray(record.d_signal)
    signal = record.dac(return_res=64) * np.array([TO_MV[(u or "mV").lower()] for u in record.units])
    clipped = []
    for i, (name, fmt) in enumerate(zip(record.sig_name, record.fmt)):
        bits = (record.adc_res[i] if record.adc_res and record.adc_res[i] else _FORMAT_BITS.get(str(fmt), 0))
        if bits:
            half = 2 ** (bits - 1)
            zero = record.adc_zero[i] if record.adc_zero else 0
            column = digital[:, i]
            at_limit = np.isfinite(signal[:, i]) & ((column <= zero - half + 1) | (column >= zero + half - 1))
            if _longest_run(at_limit) >= max(3, round(CLIP_RUN_S * record.fs)):
                clipped.append(name)
    return RawRecord(signal, float(record.fs), tuple(record.sig_name), tuple(clipped))


@dataclass(frozen=True)
class ArrayOptions:
    signals_file: str  # .npy, or HDF5 (.h5/.hdf5), relative to the dataset folder: [records, samples, channels]
    hdf5_dataset: str  # the HDF5 dataset's name; "" for .npy
    units_per_mv: float  # stored value / units_per_mv = millivolts
    labels_file: str  # row i labels array row i


class ArrayLoader(ArrayFileLoader):
    """One array of equally long records at the manifest's ``signal.native_rate_hz``, channels in the order
    ``signal.leads`` then ``signal.extra_channels``, and a labels CSV."""

    kind = "array"
    version = "1"
    Options = ArrayOptions

    def array_source(self) -> tuple[str, str, int]:
        spec = self.manifest.signal
        return self.options.signals_file, self.options.hdf5_dataset, len(spec.leads) + len(spec.extra_channels)

    def index(self) -> Index:
        labels_path = self.path(self.options.labels_file)
        rows, notes = read_label_table(labels_path)
        self.check_rows(labels_path, len(rows))
        return Index([RecordEntry(r.record, r.patient, r.labels, str(i), r.fold, r.origin)
                      for i, r in enumerate(rows)], notes=notes)

    def read(self, entry: RecordEntry) -> RawRecord:
        spec = self.manifest.signal
        return RawRecord(self.row(entry.record_id, int(entry.location)), spec.native_rate_hz,
                         spec.leads + spec.extra_channels)
