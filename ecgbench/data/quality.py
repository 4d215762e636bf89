"""Records that read cleanly and pass the signal checks but may not be what they seem, found so that each is
counted and handled by the manifest's ``[quality]`` rules, never passed on unreported.

- ``flat_lead``: a standard lead constant over the whole record (a disconnected electrode).
- ``clipped``: a sample of a standard lead at the ADC's limit (the amplifier saturated; the loader reports it).
- ``padded``: at least ``PAD_MIN_S`` of samples where no lead changes at the start and end together (a short
  recording padded with zeros to a fixed length), or at least ``PAD_MIN_S`` less signal than the model's
  window, which ``preprocess`` pads with zeros (a 0.2 s record is 98 % padding).
- ``cropped``: more signal than the model's window (padding aside): ``preprocess.crop`` keeps one window and
  cuts the rest (the study's protocol for long records, e.g. CPSC2018's 6-60 s).
"""
from __future__ import annotations

import numpy as np

from ecgbench.data.loaders.base import EcgRecordError
from ecgbench.data.manifest import Manifest

PAD_MIN_S = 0.5  # shorter constant ends are not counted (CODE-test pads 10 s recordings by 0.12 s at each end)
FLAGS = ("flat_lead", "clipped", "padded", "cropped")
FLAG_TEXT = {
    "flat_lead": "a lead is constant over the whole record (a disconnected electrode?)",
    "clipped": "a lead reaches the ADC's limit (the amplifier saturated)",
    "padded": f"at least {PAD_MIN_S:g} s at the start/end where no lead changes (a shorter recording padded?), "
              f"or {PAD_MIN_S:g} s or more shorter than the model's window (padded with zeros to it)",
    "cropped": "longer than the model's window: the rest is cut",
}


def constant_ends(leads: np.ndarray) -> tuple[int, int]:
    """Samples at the start and at the end during which no lead changes, not counting the sample next to the
    first/last change (it may be the first/last of the recording)."""
    changes = np.flatnonzero(np.any(np.diff(leads, axis=0) != 0, axis=1))
    if len(changes) == 0:
        return len(leads), 0
    return int(changes[0]), int(len(leads) - 2 - changes[-1])


def quality_flags(leads: np.ndarray, rate_hz: float, clipped: bool, manifest: Manifest) -> tuple[str, ...]:
    """The ``FLAGS`` that apply to one record: ``leads`` are its standard leads [samples, 12] at ``rate_hz``."""
    flags = []
    if np.any(np.ptp(leads, axis=0) == 0):
        flags.append("flat_lead")
    if clipped:
        flags.append("clipped")
    start, end = constant_ends(leads)
    signal, window = len(leads) - start - end, round(manifest.preprocess.window_s * rate_hz)
    if start + end >= PAD_MIN_S * rate_hz or window - signal >= PAD_MIN_S * rate_hz:
        flags.append("padded")
    if signal > window + 2:  # a sample's doubt per end
        flags.append("cropped")
    return tuple(flags)


class QualityReport:
    """The flagged records of one dataset, per flag, and the manifest's rule for each."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.records: dict[str, list[str]] = {flag: [] for flag in FLAGS}

    def admit(self, record_id: str, flags: tuple[str, ...]) -> str | None:
        """None to keep the record, else why it is dropped; raises ``EcgRecordError`` where a rule says "error"."""
        for flag in flags:
            self.records[flag].append(record_id)
        rules = {flag: getattr(self.manifest.quality, flag) for flag in flags}
        for flag, rule in rules.items():
            if rule == "error":
                raise EcgRecordError(record_id, f"{flag}: {FLAG_TEXT[flag]}; the {self.manifest.name} manifest has "
                                             f"[quality] {flag} = \"error\" (\"keep\" or \"drop\" counts such "
                                             "records instead)")
        dropped = [flag for flag, rule in rules.items() if rule == "drop"]
        return f"quality: {', '.join(dropped)}" if dropped else None

    def info(self) -> dict[str, dict]:
        """``info.json``'s ``quality``: per flag its rule, how many records it flagged and which."""
        return {flag: {"rule": getattr(self.manifest.quality, flag), "records": len(ids), "record_ids": ids}
                for flag, ids in self.records.items()}
