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
from pathlib import Path

import numpy as np

from ecgbench.data.folder_files import inside_path, visible_files
from ecgbench.data.loaders.array_file import ArrayFileLoader
from ecgbench.data.loaders.base import EcgRecordError, Index, Loader, MissingFileError, RawRecord, RecordEntry
from ecgbench.data.loaders.wfdb_format import _TO_MV as TO_MV
from ecgbench.data.loaders.wfdb_format import check_header_gains, import_wfdb
from ecgbench.data.manifest import DataError

SPLIT_FOLDS = {"train": 1, "val": 2, "test": 3}  # the ``split`` column as folds, for a ``rule = "folds"`` split
REQUIRED_COLUMNS = ("record", "labels")
OPTIONAL_COLUMNS = ("patient", "split")
CLIP_RUN_S = 0.01  # a plateau this long at the ADC's limit is clipping; wfdb.wrsamp scales a record's own
# extremes to the limits, so a single sample there is normal in wfdb-written files
_STORED_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 32 / 3,
                 "311": 32 / 3}  # bits a sample takes in the file (310/311: three samples in 32 bits); 5xx: FLAC
_PACKED = {"212", "310", "311"}  # may end on a padding byte or word
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
    other = _other_encoding(path)
    if other:
        raise DataError(f"{path}: is {other} text (it starts with its byte-order mark), not UTF-8: save it as UTF-8")
    try:
        return _read_label_rows(path)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: is not UTF-8 text ({e}): save it as UTF-8") from None


def _other_encoding(path: Path) -> str:
    """"UTF-16" or "UTF-32" when the file starts with such a byte-order mark, else ""."""
    with path.open("rb") as f:
        start = f.read(4)
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                      (b"\xfe\xff", "UTF-16")):
        if start.startswith(bom):
            return name
    return ""


def _check_columns(path: Path, columns: list[str]) -> None:
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: column(s) {repeated} appear more than once: which one holds the record's values "
                        "would be a guess; keep one")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        hint = " (is it ';'-separated? columns are separated by ',')" if any(";" in c for c in columns) else ""
        raise DataError(f"{path}: columns {columns}: missing {missing}, unknown {unknown} (expected "
                        f"{list(REQUIRED_COLUMNS)} and optionally {list(OPTIONAL_COLUMNS)}){hint}")


def _record_name(text: str, where: str) -> str:
    """A record's name below the dataset folder: ASCII (WFDB tools garble other letters in file names) and
    inside the folder."""
    if not text:
        raise DataError(f"{where}: empty record name")
    if not text.isascii():
        odd = "".join(sorted({c for c in text if not c.isascii()}))
        raise DataError(f"{where}: record {text!r} has non-ASCII characters {odd!r}: WFDB reads such file names "
                        "wrongly; rename the record and its files with ASCII letters, digits, '_', '-'")
    return inside_path(text, f"{where}: record")  # "./records/r000" is "records/r000"


def _labels(text: str, where: str) -> tuple[str, ...]:
    """A record's labels, separated by ';'. A ',' inside a label (a quoted "AF,RBBB") is refused, not split:
    it is either two labels written the wrong way or one name the manifest could not map back."""
    labels = tuple(label.strip() for label in text.split(";") if label.strip())
    joined = [label for label in labels if "," in label]
    if joined:
        raise DataError(f"{where}: label {joined[0]!r} holds a ',': separate a record's labels with ';' "
                        f"({';'.join(joined[0].split(','))!r})")
    return labels


def _read_label_rows(path: Path) -> tuple[list[LabelRow], list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        _check_columns(path, columns)
        rows = []
        for line, raw in enumerate(reader, start=2):
            where = f"{path} line {line}"
            if None in raw or None in raw.values():
                fields = len(columns) + len(raw.get(None, [])) - sum(v is None for v in raw.values())
                raise DataError(f"{where}: {fields} fields, the header has {len(columns)} (a record's labels are "
                                "separated by ';', not ','; quote a field that holds a comma)")
            row = {k.strip(): v.strip() for k, v in raw.items()}
            row["record"] = _record_name(row["record"], where)
            split = row.get("split", "")
            if "split" in columns and split not in SPLIT_FOLDS:
                raise DataError(f"{where}: split {split!r} is not one of {list(SPLIT_FOLDS)} (the split column, "
                                "when present, must be filled on every row)")
            rows.append(LabelRow(row["record"], _labels(row["labels"], where), row.get("patient") or row["record"],
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
    unlabelled = [str(p) for p in visible_files(root, "*.hea")
                  if p.relative_to(root).with_suffix("").as_posix() not in listed]
    if absent or unlabelled:
        raise DataError(f"{len(absent)} label row(s) name a missing record and {len(unlabelled)} record(s) have no "
                        "label row (every record needs exactly one row): "
                        + "; ".join(absent[:5] + [f"{p} has no row in {labels_path}" for p in unlabelled[:5]]))


def check_wfdb_header(header, base: Path, record_id: str) -> None:
    """What ``wfdb`` reads without complaint but ecgbench must not: a header (``wfdb.rdheader``) without a
    sample count or with a rate that is not positive, and a signal file shorter or longer than the header says
    (wfdb fails obscurely on the first and silently reads a prefix of the second; the CinC and PTB-XL readers
    refuse both alike). A signal file outside the folder needs no check: wfdb's header syntax refuses a file
    name with a '/' or a leading '.'."""
    where = f"{base}.hea"
    if not (header.fs and np.isfinite(header.fs) and header.fs > 0):
        raise EcgRecordError(record_id, f"{where}: sampling rate {header.fs!r}: it must be a positive number of Hz "
                                        "(the record line's third field)")
    if header.sig_len is None:
        raise EcgRecordError(record_id, f"{where}: the record line gives no sample count (its fourth field): "
                                        "ecgbench needs it to check that the signal files are complete")
    frames: dict[str, list[int]] = {}
    for i, file in enumerate(header.file_name or []):
        frames.setdefault(file, []).append(i)
    for file, signals in frames.items():
        fmt = str(header.fmt[signals[0]])
        if fmt not in _STORED_BITS:
            continue  # FLAC (5xx) is compressed: its size says nothing
        path = base.parent / file
        if not path.is_file():
            raise MissingFileError(record_id, f"missing signal file {path}")
        samples = header.sig_len * sum((header.samps_per_frame or [1] * len(header.file_name))[i] or 1
                                       for i in signals)
        offset = (header.byte_offset or [None])[signals[0]] or 0
        needed = offset + int(np.ceil(samples * _STORED_BITS[fmt] / 8))
        size = path.stat().st_size
        if size < needed or size > needed + (4 if fmt in _PACKED else 0):
            state = "truncated: it holds" if size < needed else "longer than its header says: it holds"
            raise EcgRecordError(record_id, f"{path} is {state} {size} bytes, the header's {header.sig_len} samples "
                                            f"of {len(signals)} signal(s) in format {fmt} take {needed}")


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
        wfdb = import_wfdb()

        base = self.path(entry.location)
        if not base.with_name(base.name + ".hea").is_file():
            raise MissingFileError(entry.record_id, f"missing header {base}.hea")
        check_header_gains(base.with_name(base.name + ".hea"), entry.record_id)
        try:
            record = wfdb.rdrecord(str(base), physical=False)
        except Exception as e:  # wfdb raises many types for one cause: a record it cannot read
            _explain_failure(base, entry.record_id)
            raise EcgRecordError(entry.record_id, f"{base}.hea: wfdb cannot read the record: {type(e).__name__}: "
                                                  f"{e}") from None
        check_wfdb_header(record, base, entry.record_id)  # the record has the header's fields: no second parse
        return wfdb_millivolts(record, entry.record_id, f"{base}.hea")


def _explain_failure(base: Path, record_id: str) -> None:
    """Raise ``check_wfdb_header``'s error when the header and its files explain why wfdb failed (a truncated
    signal file gives numpy's "could not broadcast")."""
    import wfdb

    try:
        header = wfdb.rdheader(str(base))
    except Exception:  # the header itself is unreadable: wfdb's own message says so
        return
    check_wfdb_header(header, base, record_id)


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
