"""WFDB headers and format-16 signal files, read with the checks that make a damaged record an error.

We parse headers ourselves: real CinC headers vary in ways wfdb rejects (first lines naming the record with or
without ``.mat``, ``16+24`` and ``16x1+24`` formats, ``1000/mV`` and ``1000.0(0)/mV`` gains), and wfdb's own
parser costs ~30 ms a header. Every source of the study stores 16-bit samples, so one reader covers them; a
data file is checked against the header (size, hence truncation or a wrong sample count) and every signal
against the header's checksum (16-bit sum of its samples), so corrupt data never passes as a signal.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgbench.data.loaders.base import EcgRecordError, MissingFileError, RawRecord

_RECORD_LINE = re.compile(r"^(?P<name>\S+?)(?:\.mat)?\s+(?P<n_sig>\d+)\s+(?P<fs>[\d.]+)\S*\s+(?P<n>\d+)(\s|$)")
_FORMAT = re.compile(r"^(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::\d+)?(?:\+(?P<offset>\d+))?$")
_GAIN = re.compile(r"^(?P<gain>[-+\d.eE]+)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?$")
_TO_MV = {"mv": 1.0, "uv": 1e-3, "v": 1e3}
_SAMPLE_BYTES = 2  # format 16
INVALID_SAMPLE = -32768


@dataclass(frozen=True)
class SignalLine:
    file: str
    byte_offset: int
    gain: float  # ADC units per physical unit
    baseline: int
    adc_range: tuple[int, int]  # lowest and highest value the ADC gives: a sample there is clipped
    to_mv: float  # physical unit -> millivolts
    checksum: int | None
    name: str


@dataclass(frozen=True)
class Header:
    path: Path
    record_name: str
    rate_hz: float
    n_samples: int
    signals: tuple[SignalLine, ...]
    comments: tuple[str, ...]  # comment lines without their leading "#", stripped

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    def comment(self, key: str) -> str | None:
        """The value of the first ``key: value`` comment (``#Dx:`` and ``# Dx:`` alike), or None."""
        for line in self.comments:
            name, sep, value = line.partition(":")
            if sep and name.strip() == key:
                return value.strip()
        return None


def parse_header(path: Path, record_id: str) -> Header:
    """The header at ``path``; a line that does not parse is an error naming the file and the line."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        raise MissingFileError(record_id, f"missing header {path}") from None
    body = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    comments = tuple(line.lstrip()[1:].strip() for line in lines if line.lstrip().startswith("#"))
    first = _RECORD_LINE.match(body[0]) if body else None
    if first is None:
        raise EcgRecordError(record_id, f"{path}: first line is not a WFDB record line: {body[:1]}")
    if len(body) - 1 != int(first["n_sig"]):
        raise EcgRecordError(record_id, f"{path}: declares {first['n_sig']} signals but has {len(body) - 1} signal "
                                     "lines (a multi-segment record?)")
    signals = tuple(_parse_signal_line(line, path, record_id) for line in body[1:])
    return Header(path, first["name"], float(first["fs"]), int(first["n"]), signals, comments)


def _parse_signal_line(line: str, path: Path, record_id: str) -> SignalLine:
    fields = line.split()
    fmt = _FORMAT.match(fields[1]) if len(fields) > 2 else None
    gain = _GAIN.match(fields[2]) if fmt else None
    if gain is None:
        raise EcgRecordError(record_id, f"{path}: cannot parse signal line {line!r}")
    if fmt["fmt"] != "16" or (fmt["spf"] or "1") != "1":
        raise EcgRecordError(record_id, f"{path}: unsupported storage format {fields[1]!r} (ecgbench reads format 16, "
                                     "one sample per frame)")
    units = (gain["units"] or "mV").lower()  # header(5): no units means millivolts
    if units not in _TO_MV:
        raise EcgRecordError(record_id, f"{path}: unknown physical unit {gain['units']!r}")
    adc_zero = int(fields[4]) if len(fields) > 4 else 0
    bits = int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else 0
    half = 2 ** ((bits or 16) - 1)  # header(5): ADC resolution 0 or absent means the format's 16 bits
    adc_range = (max(adc_zero - half, INVALID_SAMPLE + 1), min(adc_zero + half - 1, -INVALID_SAMPLE - 1))
    return SignalLine(
        file=fields[0], byte_offset=int(fmt["offset"] or 0), gain=_gain(gain["gain"], line, path, record_id),
        baseline=int(gain["baseline"]) if gain["baseline"] is not None else adc_zero, adc_range=adc_range,
        to_mv=_TO_MV[units], checksum=int(fields[6]) if len(fields) > 6 else None,
        name=" ".join(fields[8:]) if len(fields) > 8 else "")


def _gain(text: str, line: str, path: Path, record_id: str) -> float:
    """ADC units per physical unit: a positive number. WFDB reads gain 0 as "uncalibrated, assume 200", which
    would scale the record by an unknown factor, and a negative gain would invert it: both are errors."""
    try:
        gain = float(text)
    except ValueError:
        raise EcgRecordError(record_id, f"{path}: gain {text!r} is not a number in signal line {line!r}") from None
    if not (np.isfinite(gain) and gain > 0):
        raise EcgRecordError(record_id, f"{path}: gain {text!r} in signal line {line!r} must be a positive number of "
                                     "ADC units per unit (0 means uncalibrated, a negative gain inverts the signal)")
    return gain


def check_header_gains(path: Path, record_id: str) -> None:
    """The gain of every signal line of a header (any storage format) must be positive: ``wfdb`` itself reads a
    gain of 0 as its default 200 and keeps a negative one, so this is checked on the header's own text."""
    body = [line for line in path.read_text(errors="replace").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    for line in body[1:]:
        fields = line.split()
        gain = _GAIN.match(fields[2]) if len(fields) > 2 else None
        if gain is not None:
            _gain(gain["gain"], line, path, record_id)


def check_checksums(values: np.ndarray, header: Header, record_id: str) -> None:
    """Each signal's 16-bit sum must equal the header's checksum (values: [samples, signals])."""
    sums = values.astype(np.int64).sum(axis=0) % 65536
    for line, total in zip(header.signals, sums):
        if line.checksum is not None and line.checksum % 65536 != total:
            raise EcgRecordError(record_id, f"{header.path.parent / line.file}: signal {line.name!r} does not match "
                                         "the header's checksum: the data are corrupt or belong to another header")


def clipped_channels(values: np.ndarray, header: Header) -> tuple[str, ...]:
    """Names of the signals with a sample at their ADC's limit (values: ADC units [samples, signals])."""
    low = np.array([s.adc_range[0] for s in header.signals])
    high = np.array([s.adc_range[1] for s in header.signals])
    at_limit = np.any((values <= low) | (values >= high), axis=0)
    return tuple(s.name for s, clipped in zip(header.signals, at_limit) if clipped)


def to_millivolts(values: np.ndarray, header: Header, gain_override: float = 0.0) -> np.ndarray:
    """ADC values [samples, signals] -> millivolts; ``gain_override`` (ADC units per mV) replaces a wrong gain.

    -32768, format 16's "no sample" marker, becomes NaN (which the signal checks then reject)."""
    invalid = values == INVALID_SAMPLE if values.dtype == np.int16 else None
    baselines = np.array([s.baseline for s in header.signals], dtype=np.float64)
    if gain_override:
        scale = np.full(len(header.signals), 1.0 / gain_override)
    else:
        scale = np.array([s.to_mv / s.gain for s in header.signals])
    millivolts = (values.astype(np.float64) - baselines) * scale
    if invalid is not None:
        millivolts[invalid] = np.nan
    return millivolts


def read_dat(header: Header, record_id: str) -> np.ndarray:
    """ADC values [samples, signals] from the header's format-16 files, after checking each file's size."""
    columns: list[np.ndarray] = []
    for file in dict.fromkeys(s.file for s in header.signals):  # files in order of first use
        lines = [s for s in header.signals if s.file == file]
        path = header.path.parent / file
        if not path.is_file():
            raise MissingFileError(record_id, f"missing data file {path}")
        size, needed = path.stat().st_size, lines[0].byte_offset + header.n_samples * len(lines) * _SAMPLE_BYTES
        if size < needed:
            raise EcgRecordError(record_id, f"{path} is truncated: {size} bytes, the header's {header.n_samples} "
                                         f"samples need {needed}")
        if size > needed:
            raise EcgRecordError(record_id, f"{path} holds {size} bytes but the header declares {header.n_samples} "
                                         f"samples ({needed} bytes): the sample count disagrees with the data")
        data = np.fromfile(path, dtype="<i2", offset=lines[0].byte_offset)
        columns.append(data.reshape(header.n_samples, len(lines)))
    values = np.concatenate(columns, axis=1)
    check_checksums(values, header, record_id)
    return values


def read_wfdb(base: Path, record_id: str) -> RawRecord:
    """A WFDB record (``base`` = path without ``.hea``) in millivolts."""
    header = parse_header(base.with_name(base.name + ".hea"), record_id)
    values = read_dat(header, record_id)
    return RawRecord(to_millivolts(values, header), header.rate_hz, header.channels, clipped_channels(values, header))
