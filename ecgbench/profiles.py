"""Profiles are data: ``profiles.toml`` (or a user's file) parsed strictly into ``Profile`` objects, each value
checked where it is read so that an error names the file, the profile and the key."""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ecgbench.checkpoints import CHECKPOINTS, get_checkpoint
from ecgbench.data.classes import DATASET_CLASSES, UPSTREAMS
from ecgbench.data.overlap import DEFAULT_OVERLAP, OVERLAP_MODES
from ecgbench.data.registry import DATASETS, has_standin
from ecgbench.engine.config import TrainConfig
from ecgbench.engine.precision import POLICIES
from ecgbench.models import HEAD_POLICIES, MODELS, PAPER_HEAD_POLICY

REGIMES = ("scratch", "finetune", "linear")
DEFAULT_PROFILE = "default"
# The control any claim about pre-trained features needs: each model's own initialisation, frozen. Its
# fine-tune cells would be scratch cells under another name, so only its linear probes exist.
RANDOM_UPSTREAM = "random"
RANDOM_REGIMES = ("linear",)


def is_dataset_upstream(upstream: str | None) -> bool:
    """Whether ``upstream`` is pre-trained by the grid itself (a dataset), not given (``random``, a checkpoint)."""
    return upstream is not None and upstream != RANDOM_UPSTREAM and upstream not in CHECKPOINTS


def checkpoint_models(upstreams: tuple[str, ...]) -> dict[str, str]:
    """The model of each given checkpoint among ``upstreams``: only that model's cells start from it."""
    return {u: get_checkpoint(u).model for u in upstreams if u in CHECKPOINTS}


def upstream_fits(upstream: str, model: str) -> bool:
    """Whether ``model``'s cells can start from ``upstream`` (a checkpoint only fits its own model)."""
    return checkpoint_models((upstream,)).get(upstream, model) == model


@dataclass(frozen=True)
class Profile:
    """Grid axes, synthetic data sizes and hyper-parameters: one table of ``profiles.toml``.

    ``head_policy``: which part of a pre-trained model the transfer regimes re-create (``ecgbench.models.base``);
    the paper's ``last_layer`` unless a profile asks for an ablation.
    ``precision``: ``auto`` (bf16 where the device and the model gain from it, see
    ``ecgbench.engine.precision.resolve_precision``), ``fp32`` or ``bf16``; a cell's identity holds the precision
    it resolved to.
    """

    name: str
    description: str
    upstreams: tuple[str, ...]
    downstreams: tuple[str, ...]
    models: tuple[str, ...]
    fractions: tuple[float, ...]
    regimes: tuple[str, ...]
    seeds: int
    synthetic_records: dict[str, int]
    pretrain: TrainConfig
    train: TrainConfig
    head_policy: str = PAPER_HEAD_POLICY
    precision: str = "auto"
    overlap: str = DEFAULT_OVERLAP  # the overlap guard's mode (``ecgbench.data.overlap``)

    def with_seeds(self, seeds: int) -> "Profile":
        """The profile with another seed count (``--ecg-seeds``), checked like the profile's own."""
        profile = Profile(**{**self.__dict__, "seeds": _number(seeds, "the seed count", int, 1)})
        check_grid_size(profile, f"profile {self.name} with {seeds} seeds")
        return profile

    def hyperparameters(self) -> dict[str, Any]:
        return {"pretrain": _optimiser(self.pretrain), "train": _optimiser(self.train), "head_policy": self.head_policy,
                "precision": self.precision}


def _optimiser(config: TrainConfig) -> dict[str, Any]:
    """A profile's config without its precision field: the profile's ``precision`` policy stands for it."""
    return {k: v for k, v in asdict(config).items() if k != "precision"}


MAX_SEEDS = 1000
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_CELLS = 50_000  # far above the paper's grid (~1,000 cells); beyond it collection alone exhausts memory


class ProfileError(ValueError):
    """A profile that cannot run as written; the message names the file, the profile and the key."""


def _strict(table: Any, cls: type, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: expected a table, got {table!r}")
    known = {f.name for f in fields(cls)} - {"name"}
    required = {f.name for f in fields(cls) if f.default is f.default_factory and f.name != "name"}
    unknown, missing = set(table) - known, required - set(table)
    if unknown or missing:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return table


def _number(value: Any, where: str, kind: type, low: float, low_open: bool = False) -> Any:
    """``value`` as an int (``kind`` int) or float, at least ``low`` (above it when ``low_open``)."""
    ok_type = (isinstance(value, int) if kind is int else isinstance(value, (int, float))) \
        and not isinstance(value, bool)
    if not ok_type or not math.isfinite(value) or not (value > low if low_open else value >= low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        what = "an integer" if kind is int else "a finite number"
        raise ProfileError(f"{where}: must be {what} {bound}, got {value!r}")
    return kind(value)


def _names(value: Any, where: str, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (not value and not allow_empty):
        raise ProfileError(f"{where}: must be a {'' if allow_empty else 'non-empty '}list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise ProfileError(f"{where}: names a value twice: {value!r}")
    return tuple(value)


def _train_config(table: Any, where: str) -> TrainConfig:
    t = _strict(table, TrainConfig, where)
    if "precision" in t:
        raise ProfileError(f"{where}: unknown key 'precision': the precision is one setting of the whole profile "
                           f"(precision = \"auto\", \"fp32\" or \"bf16\" beside head_policy)")
    return TrainConfig(epochs=_number(t["epochs"], f"{where} epochs", int, 1),
                       batch_size=_number(t["batch_size"], f"{where} batch_size", int, 1),
                       lr=_number(t["lr"], f"{where} lr", float, 0, low_open=True),
                       patience=_number(t.get("patience", 0), f"{where} patience", int, 0),
                       min_samples_per_epoch=_number(t.get("min_samples_per_epoch", 0),
                                                     f"{where} min_samples_per_epoch", int, 0))


def _parse_profile(name: str, table: Any, where: str) -> Profile:
    at = f"{where} [{name}]"
    if not PROFILE_NAME.fullmatch(name):
        raise ProfileError(f"{where}: profile name {name!r}: a profile name is letters, digits and . _ - (it names "
                           "the folder reports/<name>)")
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: top-level key {name!r} = {table!r} is no profile: each profile is a table "
                           f"[{name}] of grid axes and hyper-parameters")
    t = dict(_strict(table, Profile, at))
    if not isinstance(t["description"], str):
        raise ProfileError(f"{at} description: must be a string, got {t['description']!r}")
    for key in ("pretrain", "train"):
        t[key] = _train_config(t[key], f"{at} {key}")
    t["upstreams"] = _names(t["upstreams"], f"{at} upstreams", allow_empty=True)
    for key in ("downstreams", "models", "regimes"):
        t[key] = _names(t[key], f"{at} {key}")
    if not isinstance(t["fractions"], list) or not t["fractions"]:
        raise ProfileError(f"{at} fractions: must be a non-empty list of numbers in (0, 1], got {t['fractions']!r}")
    t["fractions"] = tuple(_number(f, f"{at} fractions", float, 0, low_open=True) for f in t["fractions"])
    t["seeds"] = _number(t["seeds"], f"{at} seeds", int, 1)
    if not isinstance(t["synthetic_records"], dict):
        raise ProfileError(f"{at} synthetic_records: must be a table dataset = records, got {t['synthetic_records']!r}")
    t["synthetic_records"] = {k: _number(v, f"{at} synthetic_records.{k}", int, 1)
                              for k, v in t["synthetic_records"].items()}
    for key in ("head_policy", "overlap"):
        if key in t and not isinstance(t[key], str):
            raise ProfileError(f"{at} {key}: must be a string, got {t[key]!r}")
    if t.get("precision", "auto") not in POLICIES:
        raise ProfileError(f"{at} precision: must be one of {', '.join(POLICIES)}, got {t['precision']!r}")
    profile = Profile(name=name, **t)
    _validate(profile, where)
    return profile


def _validate(p: Profile, where: str) -> None:
    at = f"{where} [{p.name}]"
    problems = [f"upstreams/downstreams: unknown dataset {d!r} (registered: {', '.join(DATASETS)}; register yours "
                "with --ecg-manifest or an ecgbench.datasets entry point; the built-in upstream "
                f"{RANDOM_UPSTREAM!r} is each model's own frozen initialisation)"
                for d in dict.fromkeys((*p.upstreams, *p.downstreams)) if d not in DATASETS
                and not (d in p.upstreams and (d == RANDOM_UPSTREAM or d in CHECKPOINTS))]
    problems += [f"downstreams: {d!r} is an upstream ({'random features' if d == RANDOM_UPSTREAM else 'a checkpoint'}"
                 "), not a dataset" for d in p.downstreams if d == RANDOM_UPSTREAM or d in CHECKPOINTS]
    problems += [f"upstreams: checkpoint {u!r} holds weights of model {m!r}, which models does not name"
                 for u, m in checkpoint_models(p.upstreams).items() if m not in p.models]
    if RANDOM_UPSTREAM in p.upstreams and not set(RANDOM_REGIMES) & set(p.regimes):
        problems.append(f"upstreams: {RANDOM_UPSTREAM!r} has linear-probe cells only (its fine-tune cells would "
                        "equal scratch): add \"linear\" to regimes or drop it")
    problems += [f"upstreams: {u!r} is no upstream dataset of the study (its upstreams: {', '.join(UPSTREAMS)})"
                 for u in p.upstreams if u in DATASET_CLASSES and u not in UPSTREAMS]
    problems += [f"models: unknown model {m!r} (registered: {', '.join(MODELS)})" for m in p.models if m not in MODELS]
    problems += [f"regimes: unknown regime {r!r}" for r in p.regimes if r not in REGIMES]
    problems += [f"fractions: fraction {f} not in (0, 1]" for f in p.fractions if not 0 < f <= 1]
    if len(set(p.fractions)) != len(p.fractions):
        problems.append(f"fractions: names a value twice: {list(p.fractions)}")
    problems += [f"synthetic_records: unknown dataset {d!r}" for d in p.synthetic_records if d not in DATASETS]
    used = (set(p.upstreams) | set(p.downstreams)) & set(DATASETS)
    lacking = sorted(d for d in used if has_standin(d) and d not in p.synthetic_records)
    if lacking:
        problems.append(f"synthetic_records lacks {lacking}")
    problems += [f"synthetic_records: {d!r} has no synthetic stand-in (only {', '.join(DATASET_CLASSES)} do): "
                 "remove it; its cells read its files from --ecg-data" for d in p.synthetic_records
                 if d in DATASETS and not has_standin(d)]
    if p.head_policy not in HEAD_POLICIES:
        problems.append(f"head_policy: unknown head_policy {p.head_policy!r} (known: {', '.join(HEAD_POLICIES)})")
    if p.overlap not in OVERLAP_MODES:
        problems.append(f"overlap: unknown overlap {p.overlap!r} (known: {', '.join(OVERLAP_MODES)})")
    if problems:
        raise ProfileError(f"{at}: " + "; ".join(problems))
    check_grid_size(p, at)
    transfers = set(p.regimes) - {"scratch"} and any(u != d for u in p.upstreams for d in p.downstreams)
    if "scratch" not in p.regimes and not transfers:  # the grid enumeration would find no cell
        raise ProfileError(f"{at}: the grid has no cell: no scratch regime, and no upstream other than a downstream")


def check_grid_size(p: Profile, where: str) -> None:
    """Refuse a grid too large to collect (``seeds = 10000`` would exhaust memory before any cell runs)."""
    if p.seeds > MAX_SEEDS:
        raise ProfileError(f"{where} seeds: {p.seeds} seeds is more than the {MAX_SEEDS} ecgbench accepts")
    per_seed = len(p.downstreams) * len(p.models) * len(p.fractions) * len(p.regimes) * max(1, len(p.upstreams))
    if per_seed * p.seeds > MAX_CELLS:
        raise ProfileError(f"{where}: the grid has up to {per_seed * p.seeds} cells ({per_seed} per seed x "
                           f"{p.seeds} seeds), more than the {MAX_CELLS} ecgbench collects: fewer seeds or axes")


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """All profiles of ``path`` (default: the packaged ``profiles.toml``)."""
    if path is None:
        text, where = resources.files("ecgbench").joinpath("profiles.toml").read_text(), "profiles.toml"
    else:
        try:
            text, where = Path(path).read_text(), str(path)
        except OSError as e:
            raise ProfileError(f"{path}: cannot read the profiles file: {e.strerror}") from None
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML: {e}") from None
    if not tables:
        raise ProfileError(f"{where}: defines no profile")
    return {name: _parse_profile(name, table, where) for name, table in tables.items()}


def get_profile(name: str, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    if name not in profiles:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
    return profiles[name]
