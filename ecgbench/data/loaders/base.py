"""What every loader hands to ``prepare``: an index of records (ids, patients, source labels) and raw signals.

A loader knows one on-disk format and nothing of caching, splits or class lists, so a new source needs only a
new loader and a manifest.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from ecgbench.data.folder_files import inside_path
from ecgbench.data.manifest import DataError, Manifest, strict_build


class EcgRecordError(DataError):
    """One record cannot be used; the message starts with the record's name."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"record {record_id}: {reason}")
        self.record_id, self.reason = record_id, reason

    def __reduce__(self):  # crosses process boundaries with its fields, not just its message
        return type(self), (self.record_id, self.reason)


class MissingFileError(EcgRecordError):
    """A file the index lists is not on disk (a partial copy); skipped only with ``allow_missing``."""


@dataclass(frozen=True)
class RecordEntry:
    """One record as the source's index or header describes it, before its signal is read."""

    record_id: str  # the source's own name (PTB-XL ecg_id, CinC A0001, PTB patient001/s0010_re)
    patient_id: str
    labels: tuple[str, ...]  # source labels (SNOMED codes, superclasses, reasons for admission, ...)
    location: str  # what ``read`` needs to find the signal (a path below the dataset folder, a row)
    fold: int | None = None  # the source's own fold, where it has one
    origin: str = ""  # where the source describes the record (index file and line, or header), for errors

    def describe(self) -> str:
        """``record ID (origin)``: how errors name the record."""
        return f"record {self.record_id}" + (f" ({self.origin})" if self.origin else "")


@dataclass(frozen=True)
class RawRecord:
    """A signal as stored: float64 millivolts [samples, channels] at its native rate, channels by name."""

    signal: np.ndarray
    rate_hz: float
    channels: tuple[str, ...]
    clipped: tuple[str, ...] = ()  # channels with a sample at the ADC's limit (where the format tells it)


@dataclass
class Index:
    entries: list[RecordEntry]
    problems: list[EcgRecordError] = field(default_factory=list)  # records whose header could not be read
    notes: list[str] = field(default_factory=list)  # facts the user should know (e.g. no patient ids)


def check_unique(entries: list[RecordEntry], same_file: Callable[[RecordEntry], str] | None = None) -> None:
    """One record id, one signal, one split: a record id listed twice would be stored twice (and, with another
    fold, put one record in train and test); two ids reading one location would be two records with one signal.
    Every loader's index passes here (``prepare`` calls it), so no source can break the rule. ``same_file``
    resolves a location to the file it reaches (``duplicates.same_file_key``), so aliases count as one."""
    problems: list[str] = []
    for key, what in ((lambda e: e.record_id, "record id"), (same_file or (lambda e: e.location), "signal location")):
        groups: dict[str, list[RecordEntry]] = {}
        for entry in entries:
            groups.setdefault(key(entry), []).append(entry)
        for value, group in groups.items():
            if len(group) > 1:
                shown = group[0].location if what == "signal location" else value
                problems.append(f"{what} {shown!r} is listed {len(group)} times: "
                                + "; ".join(e.describe() + (f" fold {e.fold}" if e.fold is not None else "")
                                            for e in group)
                                + (f"; all of them the file {value}" if shown != value else ""))
    if problems:
        raise DataError(f"the index lists {len(problems)} duplicate(s) (one record id must be one file and one "
                        "split; remove the extra rows): " + " | ".join(problems[:5])
                        + (f" | ... {len(problems) - 5} more" if len(problems) > 5 else ""))


class Loader(ABC):
    """Reads one native format. Subclasses set ``kind``, ``version`` and ``Options`` (a dataclass)."""

    kind: ClassVar[str]
    version: ClassVar[str]  # bump when the loader's output changes: it is part of the prepared cache's key
    Options: ClassVar[type]

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.options = self.parse_options(manifest.format.options, f"{manifest.name} manifest: [format.options]")

    @classmethod
    def parse_options(cls, options: dict[str, Any], where: str) -> Any:
        return strict_build(cls.Options, options, where)

    @abstractmethod
    def index(self) -> Index:
        """Every record the copy holds, in the source's order; raises ``DataError`` when there is no index."""

    @abstractmethod
    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        """The files (relative to ``root``) that ``read`` needs for this record."""

    @abstractmethod
    def read(self, entry: RecordEntry) -> RawRecord:
        """The record's signal; raises ``EcgRecordError`` naming the record when the files are not as expected."""

    def close(self) -> None:
        """Release open files (a loader may keep one open across ``read`` calls)."""

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def path(self, relative: str) -> Path:
        """``root / relative``; a name outside the folder or hidden is refused (its changes would not be seen)."""
        return self.root / inside_path(relative, f"{self.manifest.name} ({self.root})")
