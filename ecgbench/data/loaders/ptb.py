"""The PTB Diagnostic ECG Database, in its original WFDB layout or in its PhysioNet/CinC 2020 repackaging.

Original: ``patientNNN/sNNNNxre.{hea,dat,xyz}`` (listed in ``RECORDS``), 15 channels at 1000 Hz (12 standard
leads + Frank vx, vy, vz); the source label is the header's "Reason for admission", the patient is the folder.
CinC: ``S0001.{hea,mat}``, 12 leads, SNOMED-CT Dx codes, no patient identity. The CinC headers state a gain
of 2000000/mV, but their values are microvolts: ``S0001.mat`` holds the original ``patient001/s0010_re``
ADC values (2000/mV) halved, so the true gain is 1000/mV. ``cinc_adc_gain_per_mv`` corrects it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ecgbench.data.loaders.base import EcgRecordError, Index, Loader, RawRecord, RecordEntry
from ecgbench.data.loaders.cinc import index_cinc, read_cinc
from ecgbench.data.loaders.wfdb_format import parse_header, read_wfdb
from ecgbench.data.manifest import DataError

REASON = "Reason for admission"
NO_REASON = "n/a"  # the source's own word for a missing clinical summary
CINC_PATTERN = "S*.hea"


@dataclass(frozen=True)
class PtbOptions:
    layout: Literal["auto", "wfdb", "cinc"]  # auto: the original layout if present, else the CinC one
    cinc_adc_gain_per_mv: float


class PtbLoader(Loader):
    kind = "ptb"
    version = "1"
    Options = PtbOptions

    def layout(self) -> str:
        if self.options.layout != "auto":
            return self.options.layout
        if (self.root / "RECORDS").is_file() or any(self.root.glob("patient*/*.hea")):
            return "wfdb"
        if any(self.root.glob(CINC_PATTERN)):
            return "cinc"
        raise DataError(f"{self.root}: neither the original PTB layout (patientNNN/sNNNNxre.hea) nor the CinC "
                        f"one ({CINC_PATTERN}) is here")

    def _wfdb_records(self) -> list[str]:
        listing = self.root / "RECORDS"
        if listing.is_file():
            return [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        return sorted(str(p.relative_to(self.root).with_suffix("")) for p in self.root.glob("patient*/*.hea"))

    def index(self) -> Index:
        if self.layout() == "cinc":
            return index_cinc(self.root, CINC_PATTERN)
        index = Index(entries=[])
        if any(self.root.glob(CINC_PATTERN)):
            index.notes.append(f"the CinC copies ({CINC_PATTERN}) here are ignored: the original layout is read")
        for record_id in self._wfdb_records():
            try:
                header = parse_header(self.root / f"{record_id}.hea", record_id)
            except EcgRecordError as e:
                index.problems.append(e)
                continue
            patient = Path(record_id).parent.name or record_id
            reason = header.comment(REASON) or NO_REASON
            index.entries.append(RecordEntry(record_id, patient, (reason,), record_id,
                                             origin=str(self.root / f"{record_id}.hea")))
        return index

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        if entry.location.endswith(".hea"):
            return (entry.location, str(Path(entry.location).with_suffix(".mat")))
        return (f"{entry.location}.hea", f"{entry.location}.dat")  # read_wfdb checks any further file (.xyz)

    def read(self, entry: RecordEntry) -> RawRecord:
        if entry.location.endswith(".hea"):  # CinC layout
            return read_cinc(self.path(entry.location), entry.record_id, self.options.cinc_adc_gain_per_mv)
        return read_wfdb(self.path(entry.location), entry.record_id)
