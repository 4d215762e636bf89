"""What a model reads: sampling rate, seconds and lead order (``InputSpec``).

A base module because both models (which declare the input they expect) and data (which prepare records at an
input spec) need it, and neither may import the other. The study's six models read ``DEFAULT_INPUT``.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


class InputSpecError(ValueError):
    """An input spec that no recording can be prepared at."""


@dataclass(frozen=True)
class InputSpec:
    """``rate_hz`` x ``seconds`` samples of ``leads`` (standard lead names, in the order the model reads them)."""

    rate_hz: float = 100.0
    seconds: float = 10.0
    leads: tuple[str, ...] = STANDARD_LEADS

    def __post_init__(self) -> None:
        for key in ("rate_hz", "seconds"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise InputSpecError(f"input {key} must be a positive finite number, got {value!r}")
            object.__setattr__(self, key, float(value))
        leads = tuple(self.leads) if isinstance(self.leads, (list, tuple)) else None
        if not leads or any(lead not in STANDARD_LEADS for lead in leads) or len(set(leads)) != len(leads):
            raise InputSpecError(f"input leads must be distinct names among {list(STANDARD_LEADS)}, got "
                                 f"{self.leads!r}")
        object.__setattr__(self, "leads", leads)
        if self.n_samples < 1:
            raise InputSpecError(f"input {self.rate_hz:g} Hz x {self.seconds:g} s gives no sample")

    @property
    def n_samples(self) -> int:
        return round(self.rate_hz * self.seconds)

    @property
    def tag(self) -> str:
        """A short name safe in folder names: ``500hz-10s`` (plus ``-<n>leads-<digest>`` for another lead set)."""
        tag = f"{self.rate_hz:g}hz-{self.seconds:g}s"
        if self.leads != STANDARD_LEADS:
            tag += f"-{len(self.leads)}leads-" + hashlib.sha256(",".join(self.leads).encode()).hexdigest()[:6]
        return tag

    def describe(self) -> str:
        """What a reader sees: ``100 Hz x 10 s, 12 leads``."""
        leads = "12 leads" if self.leads == STANDARD_LEADS else f"{len(self.leads)} leads ({', '.join(self.leads)})"
        return f"{self.rate_hz:g} Hz x {self.seconds:g} s, {leads}"

    def to_dict(self) -> dict[str, Any]:
        return {"rate_hz": self.rate_hz, "seconds": self.seconds, "leads": list(self.leads)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "InputSpec":
        return cls(d["rate_hz"], d["seconds"], tuple(d["leads"]))


DEFAULT_INPUT = InputSpec()
