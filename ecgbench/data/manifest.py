"""Dataset manifests: what a complete copy of a source is and how it becomes a ``PreparedDataset``.

One TOML file per dataset; the study's five live in the checkout's top-level ``data_manifests/``, which the
wheel ships as ``ecgbench/data/manifests/``. The schema is strict (unknown or missing keys are errors) because a
misspelt key that is silently ignored changes labels or splits without anyone noticing. Which names map to
which manifest files is the dataset registry's job (``data/registry.py``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ecgbench.data.dataset import N_LEADS, N_SAMPLES
from ecgbench.inputs import STANDARD_LEADS, InputSpec


def _manifest_dir() -> Path:
    """The shipped manifests: inside an installed wheel, else the checkout's ``data_manifests/`` (editable too)."""
    installed = Path(__file__).resolve().parent / "manifests"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "data_manifests"


MANIFEST_DIR = _manifest_dir()
UNKNOWN_SHA256 = "unknown"  # a checksum nobody could compute from a complete copy yet: verify says "not checked"


class DataError(ValueError):
    """A dataset, manifest or record that cannot be used as it is; the message names the file and the fault."""


class ManifestError(DataError):
    pass


@dataclass(frozen=True)
class Download:
    """One archive or file of the official release; ``sha256`` may be ``UNKNOWN_SHA256``."""

    url: str
    sha256: str


@dataclass(frozen=True)
class Source:
    homepage: str
    downloads: tuple[Download, ...]
    layout: str  # where the user puts the files when fetch cannot download them


@dataclass(frozen=True)
class SourceFile:
    """A file that identifies a complete copy (path relative to the dataset folder)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class Format:
    """Which loader reads the native files; ``options`` are checked by that loader's own strict schema."""

    kind: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Signal:
    """What every record must look like; a record that differs is a bad record, never silently converted."""

    native_rate_hz: float
    rates_hz: tuple[float, ...]  # rates a record may have (PTB-XL ships 500 Hz and 100 Hz copies)
    leads: tuple[str, ...]  # the source's names of I, II, III, aVR, aVL, aVF, V1-V6, in that order
    extra_channels: tuple[str, ...]  # further channels the source has and we drop (PTB's Frank leads)
    duration_s: tuple[float, float]  # shortest and longest record expected
    plausible_peak_mv: tuple[float, float]  # bounds of the largest deviation from baseline (catches wrong gains)


@dataclass(frozen=True)
class Labels:
    """Source labels -> classes. ``ignore`` lists known labels that map to no class; anything else is unknown."""

    map: dict[str, tuple[str, ...]]
    ignore: tuple[str, ...]
    none_class: str  # class set when no other class is (CODE-test's NORM); "" for none
    unmapped: Literal["keep", "drop"]  # a record with no class: all-zero row, or dropped and counted
    unknown: Literal["error", "skip"]  # a record with an unknown label: error naming it, or skipped and counted


@dataclass(frozen=True)
class FoldSplit:
    """The source's own folds (PTB-XL ``strat_fold``)."""

    rule: Literal["folds"]
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


@dataclass(frozen=True)
class StratifiedSplit:
    """Seeded multi-label stratified split, grouped by patient where the source identifies patients."""

    rule: Literal["stratified"]
    seed: int
    train: float
    val: float
    test: float
    group_by_patient: bool


@dataclass(frozen=True)
class Preprocess:
    resample: Literal["polyphase"]  # scipy.signal.resample_poly: anti-aliasing FIR, no plain decimation
    rate_hz: float
    window_s: float
    crop: Literal["start", "centre"]  # which 10 s of a longer record
    pad: Literal["end", "both"]  # where zeros go in a shorter one
    scaling: Literal["none", "minmax"]  # none: millivolts; minmax: each record to [-1, 1] as the paper did


QualityRule = Literal["keep", "drop", "error"]


@dataclass(frozen=True)
class Quality:
    """What to do with a record that reads cleanly but is suspect (detection: ``ecgbench/data/quality.py``).

    "keep": use it and count it; "drop": leave it out and count it (``dropped``, reason ``quality: FLAG``);
    "error": stop, naming the record. Kept or dropped, every flagged record is listed in the prepared dataset's
    ``info.json`` (``quality``) and counted by ``ecgbench data info``. The shipped manifests keep all four, as
    the paper used every record (a flat or clipped lead leaves eleven usable ones; cropping long records to
    10 s is the study's protocol), so that their counts are reported rather than the data set changed.
    """

    flat_lead: QualityRule  # a standard lead constant over the whole record (a disconnected electrode)
    clipped: QualityRule  # a sample at the ADC's limit (a saturated amplifier)
    padded: QualityRule  # >= 0.5 s at the start/end where no lead changes (a short recording zero-padded)
    cropped: QualityRule  # longer than the model's window, padding aside: the rest is cut (preprocess.crop)
    duplicate: QualityRule = "keep"  # two records of one split holding one recording (``duplicates.py``)


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    version: str
    licence: str
    citation: str
    record_count: int
    bad_records: Literal["error", "skip"]  # a record that cannot be read as the manifest says
    classes: tuple[str, ...]
    source: Source
    files: tuple[SourceFile, ...]
    format: Format
    signal: Signal
    labels: Labels
    split: FoldSplit | StratifiedSplit
    preprocess: Preprocess
    quality: Quality

    @property
    def input(self) -> InputSpec:
        """The input ``preprocess`` gives (all 12 standard leads): what ``prepare`` caches before any model asks
        for another (``prepare_spec``)."""
        return InputSpec(self.preprocess.rate_hz, self.preprocess.window_s, STANDARD_LEADS)

    def digest(self) -> str:
        """sha256 of the parsed manifest: a change of any rule changes the prepared cache's key."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------------
# Strict parsing: a table's keys must be exactly the dataclass's fields, recursively
# ----------------------------------------------------------------------------------------------------------
def strict_build(cls: type, value: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown and missing keys and wrong types (a field
    with a default, added after manifests were written, may be left out)."""
    hints = typing.get_type_hints(cls)
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a table, got {type(value).__name__}")
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    optional = {f.name for f in fields if f.default is not dataclasses.MISSING}
    unknown = sorted(set(value) - set(names))
    missing = [n for n in names if n not in value and n not in optional]
    if unknown or missing:
        raise ManifestError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    return cls(**{n: _convert(hints[n], value[n], f"{where}.{n}") for n in names if n in value})


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return strict_build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        return _convert_tagged(args, value, where)
    if origin is Literal:
        if value not in args:
            raise ManifestError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ManifestError(f"{where}: expected a list, got {type(value).__name__}")
        variadic = args[-1] is Ellipsis
        if not variadic and len(value) != len(args):
            raise ManifestError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(args[0] if variadic else args[i], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ManifestError(f"{where}: expected a table, got {type(value).__name__}")
        return {k: _convert(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ManifestError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def _convert_tagged(options: tuple[type, ...], value: Any, where: str) -> Any:
    """A union of dataclasses told apart by their ``rule`` literal."""
    rules = {typing.get_args(typing.get_type_hints(c)["rule"])[0]: c for c in options}
    rule = value.get("rule") if isinstance(value, dict) else None
    if rule not in rules:
        raise ManifestError(f"{where}.rule: {rule!r} is not one of {list(rules)}")
    return strict_build(rules[rule], value, where)


def _check(m: Manifest, where: str) -> None:
    """Rules across keys that the types alone cannot express."""
    problems = []
    mapped = set(m.labels.map) | ({m.labels.none_class} - {""})
    if set(m.classes) != mapped or len(set(m.classes)) != len(m.classes):
        problems.append(f"classes {list(m.classes)} must each have a labels.map entry (or be labels.none_class), "
                        f"got entries for {sorted(mapped)}")
    overlap = {s for sources in m.labels.map.values() for s in sources} & set(m.labels.ignore)
    if overlap:
        problems.append(f"labels {sorted(overlap)} are both mapped and ignored")
    if len(m.signal.leads) != N_LEADS:
        problems.append(f"signal.leads must name {N_LEADS} leads, got {len(m.signal.leads)}")
    if not all(math.isfinite(r) and r > 0 for r in m.signal.rates_hz):
        problems.append(f"signal.rates_hz {list(m.signal.rates_hz)} must be finite numbers > 0")
    if m.signal.native_rate_hz not in m.signal.rates_hz:
        problems.append(f"signal.native_rate_hz {m.signal.native_rate_hz} is not in signal.rates_hz")
    if round(m.preprocess.rate_hz * m.preprocess.window_s) != N_SAMPLES:
        problems.append(f"preprocess.rate_hz x window_s must give {N_SAMPLES} samples")
    if isinstance(m.split, StratifiedSplit):
        fractions = (m.split.train, m.split.val, m.split.test)
        if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
            problems.append(f"split fractions {fractions} must be >= 0 and sum to 1")
        if m.split.seed < 0:
            problems.append(f"split.seed {m.split.seed} must be >= 0 (a seeded split takes a non-negative seed)")
    else:
        folds = [*m.split.train, *m.split.val, *m.split.test]
        if len(folds) != len(set(folds)):
            problems.append("a fold is assigned to more than one split")
    if problems:
        raise ManifestError(f"{where}: " + "; ".join(problems))


def parse_manifest(text: str, where: str) -> Manifest:
    """A manifest from TOML text; ``where`` names it in errors. Its format options are checked where manifests
    are registered (``data/registry.py``), which knows the loaders: the loader owns that schema."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(f"{where}: not valid TOML: {e}") from None
    manifest = strict_build(Manifest, table, where)
    _check(manifest, where)
    return manifest


def load_manifest(path: Path) -> Manifest:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest: {e.strerror}") from None
    return parse_manifest(text, str(path))


__all__ = ["DataError", "MANIFEST_DIR", "Manifest", "ManifestError", "UNKNOWN_SHA256", "load_manifest",
           "parse_manifest", "strict_build"]
