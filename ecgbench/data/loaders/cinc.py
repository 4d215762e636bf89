"""PhysioNet/CinC Challenge 2020/2021 records: a WFDB header beside a MATLAB ``.mat`` (variable ``val``,
[signals, samples]); the ``#Dx:`` comment holds SNOMED-CT codes.

Used for CPSC2018 and Georgia, and by the PTB loader for PTB's CinC repackaging. The CinC releases identify
no patients, so each record is its own patient.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ecgbench.data.loaders.base import EcgRecordError, Index, Loader, MissingFileError, RawRecord, RecordEntry
from ecgbench.data.loaders.wfdb_format import Header, check_checksums, clipped_channels, parse_header, to_millivolts
from ecgbench.data.manifest import DataError


def dx_codes(header: Header) -> tuple[str, ...]:
    return tuple(code.strip() for code in (header.comment("Dx") or "").split(",") if code.strip())


def read_cinc(header_path: Path, record_id: str, gain_override: float = 0.0) -> RawRecord:
    """The record in millivolts; the ``.mat`` array must have the header's shape and checksums."""
    from scipy.io import loadmat

    header = parse_header(header_path, record_id)
    files = {s.file for s in header.signals}
    if len(files) != 1:
        raise EcgRecordError(record_id, f"{header_path}: signals spread over several files {sorted(files)}")
    mat_path = header_path.parent / files.pop()
    if not mat_path.is_file():
        raise MissingFileError(record_id, f"missing data file {mat_path}")
    try:
        values = loadmat(str(mat_path), variable_names=["val"]).get("val")
    except Exception as e:  # scipy raises ValueError, TypeError or OSError for one cause: a damaged file
        raise EcgRecordError(record_id, f"cannot read {mat_path}: {e}") from None
    if values is None:
        raise EcgRecordError(record_id, f"{mat_path} has no variable 'val'")
    expected = (len(header.signals), header.n_samples)
    if values.shape != expected:
        raise EcgRecordError(record_id, f"{mat_path} holds an array of shape {values.shape} but the header declares "
                                     f"{expected[0]} signals x {expected[1]} samples")
    clipped: tuple[str, ...] = ()
    if values.dtype.kind in "iu":
        check_checksums(values.T, header, record_id)
        clipped = clipped_channels(values.T, header)
    return RawRecord(to_millivolts(values.T, header, gain_override), header.rate_hz, header.channels, clipped)


def index_cinc(root: Path, pattern: str) -> Index:
    """Every ``pattern`` header below ``root``, sorted by record name; Dx codes are the source labels."""
    headers = sorted((p for p in root.rglob(pattern) if not any(part.startswith(".") for part in p.parts)),
                     key=lambda p: (p.stem, str(p)))
    if not headers:
        raise DataError(f"{root}: no {pattern} headers found")
    index = Index(entries=[], notes=["the source identifies no patients: each record is split on its own"])
    for path in headers:
        record_id = path.stem
        try:
            header = parse_header(path, record_id)
        except EcgRecordError as e:
            index.problems.append(e)
            continue
        if header.record_name != record_id:
            index.problems.append(EcgRecordError(record_id, f"{path}: header names record {header.record_name!r}"))
            continue
        index.entries.append(RecordEntry(record_id, record_id, dx_codes(header), str(path.relative_to(root)),
                                         origin=str(path)))
    return index


@dataclass(frozen=True)
class CincOptions:
    adc_gain_per_mv: float  # 0: use each header's gain; else override it (for a release with wrong headers)


class CincLoader(Loader):
    """CPSC2018 and Georgia as released by the PhysioNet/CinC Challenge 2020/2021."""

    kind = "cinc"
    version = "1"
    Options = CincOptions

    def index(self) -> Index:
        return index_cinc(self.root, "*.hea")

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        return (entry.location, str(Path(entry.location).with_suffix(".mat")))

    def read(self, entry: RecordEntry) -> RawRecord:
        return read_cinc(self.path(entry.location), entry.record_id, self.options.adc_gain_per_mv)
