"""From a stored signal to the model's input: checked, 12 standard leads, 100 Hz, 10 s, scaled as the manifest says.

Order: select leads -> check -> resample -> crop -> scale -> zero-pad. Scaling comes before padding so that
the padded zeros are zeros of the scaled signal and do not move a record's min-max range.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ecgbench.data.manifest import Preprocess, Signal


class SignalError(ValueError):
    """A signal that is not what the manifest describes; the caller adds the record's name."""


def standard_leads(signal: np.ndarray, channels: tuple[str, ...], spec: Signal) -> np.ndarray:
    """[T, 12] in the standard order, found by name (case-insensitive); extra channels must be known ones."""
    names = [c.lower() for c in channels]
    wanted = [lead.lower() for lead in spec.leads]
    missing = [lead for lead, key in zip(spec.leads, wanted) if key not in names]
    unexpected = sorted(set(names) - set(wanted) - {c.lower() for c in spec.extra_channels})
    if missing or unexpected or len(set(names)) != len(names):
        raise SignalError(f"unexpected lead set {list(channels)}: missing {missing}, unexpected {unexpected}; "
                          f"the manifest expects {list(spec.leads)} (+ {list(spec.extra_channels)})")
    return signal[:, [names.index(key) for key in wanted]]


def check_signal(signal: np.ndarray, rate_hz: float, spec: Signal) -> None:
    """Rate, duration, finiteness and amplitude must be as the manifest says."""
    if not any(abs(rate_hz - r) < 1e-6 for r in spec.rates_hz):
        raise SignalError(f"unexpected sampling rate {rate_hz:g} Hz; the manifest expects {list(spec.rates_hz)}")
    duration, (shortest, longest) = len(signal) / rate_hz, spec.duration_s
    if not shortest - 1 / rate_hz <= duration <= longest + 1 / rate_hz:
        raise SignalError(f"lasts {duration:g} s; the manifest expects {shortest:g}-{longest:g} s")
    bad = ~np.isfinite(signal)
    if bad.any():
        leads = [spec.leads[i] for i in sorted(set(np.nonzero(bad)[1].tolist()))]
        raise SignalError(f"{int(bad.sum())} NaN or infinite samples (leads {leads})")
    peak = float(np.max(np.abs(signal - np.median(signal, axis=0)))) if len(signal) else 0.0
    low, high = spec.plausible_peak_mv
    if not low <= peak <= high:
        raise SignalError(f"implausible amplitude: largest deviation from baseline {peak:.4g} mV, expected "
                          f"{low:g}-{high:g} mV (a wrong gain or unit: the header's, or an array's units_per_mv?)")


def resample(signal: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Polyphase resampling along time with scipy's anti-aliasing FIR filter (no plain decimation)."""
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out / rate_in).limit_denominator(1000)
    if ratio == 1:
        return signal
    return resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def crop(signal: np.ndarray, n: int, rule: str) -> np.ndarray:
    """At most ``n`` samples: the first ones ("start") or the middle ones ("centre")."""
    extra = len(signal) - n
    if extra <= 0:
        return signal
    start = 0 if rule == "start" else extra // 2
    return signal[start:start + n]


def pad(signal: np.ndarray, n: int, rule: str) -> np.ndarray:
    """Exactly ``n`` samples: zeros after the signal ("end") or split around it ("both")."""
    missing = n - len(signal)
    before = 0 if rule == "end" else missing // 2
    return np.pad(signal, ((before, missing - before), (0, 0)))


def scale(signal: np.ndarray, rule: str) -> np.ndarray:
    """"none" keeps millivolts; "minmax" maps the record's own range onto [-1, 1] (a flat record -> zeros)."""
    if rule == "none":
        return signal
    low, high = float(signal.min()), float(signal.max())
    if high == low:
        return np.zeros_like(signal)
    return 2 * (signal - low) / (high - low) - 1


def preprocess(signal: np.ndarray, rate_hz: float, channels: tuple[str, ...], spec: Signal, rules: Preprocess
               ) -> np.ndarray:
    """The model input of one record: float32 [rate_hz x window_s, 12 leads]; raises ``SignalError``."""
    return model_input(standard_leads(signal, channels, spec), rate_hz, spec, rules)


def model_input(leads: np.ndarray, rate_hz: float, spec: Signal, rules: Preprocess) -> np.ndarray:
    """``preprocess`` of the 12 standard leads [samples, 12] that ``standard_leads`` selected."""
    check_signal(leads, rate_hz, spec)
    n = round(rules.rate_hz * rules.window_s)
    window = crop(resample(leads, rate_hz, rules.rate_hz), n, rules.crop)
    return pad(scale(window, rules.scaling), n, rules.pad).astype(np.float32)
