"""The study's vocabulary: profiles (data), cells, which cells are valid, and what identifies a cell's result."""
from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from ecgbench.data.classes import DATASET_CLASSES, UPSTREAMS
from ecgbench.engine.config import TrainConfig
from ecgbench.models import HEAD_POLICIES, MODELS, PAPER_HEAD_POLICY

REGIMES = ("scratch", "finetune", "linear")
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Profile:
    """Grid axes, synthetic data sizes and hyper-parameters: one table of ``profiles.toml``.

    ``head_policy``: which part of a pre-trained model the transfer regimes re-create (``ecgbench.models.base``);
    the paper's ``last_layer`` unless a profile asks for an ablation.
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

    def with_seeds(self, seeds: int) -> "Profile":
        return Profile(**{**self.__dict__, "seeds": seeds})

    def hyperparameters(self) -> dict[str, Any]:
        return {"pretrain": asdict(self.pretrain), "train": asdict(self.train), "head_policy": self.head_policy}


def _strict(table: dict[str, Any], cls: type, where: str) -> dict[str, Any]:
    known = {f.name for f in fields(cls)} - {"name"}
    required = {f.name for f in fields(cls) if f.default is f.default_factory and f.name != "name"}
    unknown, missing = set(table) - known, required - set(table)
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return table


def _parse_profile(name: str, table: dict[str, Any], where: str) -> Profile:
    t = dict(_strict(table, Profile, f"{where} [{name}]"))
    for key in ("pretrain", "train"):
        t[key] = TrainConfig(**_strict(t[key], TrainConfig, f"{where} [{name}.{key}]"))
    for key in ("upstreams", "downstreams", "models", "fractions", "regimes"):
        t[key] = tuple(t[key])
    missing = (set(t["upstreams"]) | set(t["downstreams"])) - set(t["synthetic_records"])
    if missing:
        raise ValueError(f"{where} [{name}]: synthetic_records lacks {sorted(missing)}")
    profile = Profile(name=name, **t)
    _validate(profile, where)
    return profile


def _validate(p: Profile, where: str) -> None:
    problems = [f"unknown dataset {d!r}" for d in (*p.upstreams, *p.downstreams) if d not in DATASET_CLASSES]
    problems += [f"{u!r} is no upstream dataset" for u in p.upstreams if u not in UPSTREAMS]
    problems += [f"unknown regime {r!r}" for r in p.regimes if r not in REGIMES]
    problems += [f"fraction {f} not in (0, 1]" for f in p.fractions if not 0 < f <= 1]
    if p.head_policy not in HEAD_POLICIES:
        problems.append(f"unknown head_policy {p.head_policy!r} (known: {', '.join(HEAD_POLICIES)})")
    if problems:
        raise ValueError(f"{where} [{p.name}]: " + "; ".join(problems))


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """All profiles of ``path`` (default: the packaged ``profiles.toml``)."""
    if path is None:
        text, where = resources.files("ecgbench").joinpath("profiles.toml").read_text(), "profiles.toml"
    else:
        text, where = Path(path).read_text(), str(path)
    return {name: _parse_profile(name, table, where) for name, table in tomllib.loads(text).items()}


def default_results_dir(root: Path, profile: str) -> Path:
    """``reports/results`` for the main profile, ``reports/<profile>/results`` for the others."""
    base = Path(root) / "reports"
    return base / "results" if profile == DEFAULT_PROFILE else base / profile / "results"


def get_profile(name: str, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    if name not in profiles:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
    return profiles[name]


@dataclass(frozen=True, order=True)
class Cell:
    """One point of the study: ``upstream`` is None exactly for the scratch regime."""

    downstream: str
    model: str
    fraction: float
    regime: str
    seed: int
    upstream: str | None = None

    @property
    def key(self) -> str:
        """Human-readable id, also the pytest id: ``cpsc2018->ptb-resnet1d18-f0.25-finetune-s0``."""
        source = f"{self.upstream}->{self.downstream}" if self.upstream else self.downstream
        return f"{source}-{self.model}-f{self.fraction}-{self.regime}-s{self.seed}"

    @property
    def file_stem(self) -> str:
        """``key`` safe as a file name on every platform."""
        return self.key.replace("->", "_to_")

    @property
    def pretraining(self) -> "Pretraining | None":
        """The upstream checkpoint this cell starts from (None for scratch)."""
        return Pretraining(self.upstream, self.model, self.seed) if self.upstream else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cell":
        return cls(**d)


class Pretraining(NamedTuple):
    """One upstream checkpoint: trained once, shared by every fine-tune and linear cell that starts from it."""

    upstream: str
    model: str
    seed: int

    @property
    def key(self) -> str:
        """Human-readable id, also the pytest id of its pre-training case: ``pretrain-ptbxl-resnet1d18-s0``."""
        return f"pretrain-{self.upstream}-{self.model}-s{self.seed}"


class Transferability(NamedTuple):
    """Transferability scores of one upstream checkpoint on one downstream training subset: a forward pass only.

    It scores the checkpoint ``pretraining`` on the records ``finetune_cell`` trains on (the same nested subset),
    so its scores can be set beside that cell's measured outcome.
    """

    upstream: str
    downstream: str
    model: str
    fraction: float
    seed: int

    @property
    def key(self) -> str:
        """Human-readable id, also the pytest id: ``ptbxl->cpsc2018-resnet1d18-f0.05-s0``."""
        return f"{self.upstream}->{self.downstream}-{self.model}-f{self.fraction}-s{self.seed}"

    @property
    def file_stem(self) -> str:
        return self.key.replace("->", "_to_")

    @property
    def pretraining(self) -> Pretraining:
        return Pretraining(self.upstream, self.model, self.seed)

    @property
    def finetune_cell(self) -> Cell:
        """The fine-tune cell whose outcome the scores predict (and whose training subset they read)."""
        return Cell(self.downstream, self.model, self.fraction, "finetune", self.seed, self.upstream)


def enumerate_cells(profile: Profile) -> list[Cell]:
    """Every valid cell of a profile, in a fixed order (xdist workers must all collect the same list).

    Scratch cells are not repeated per upstream; a downstream never fine-tunes from itself.
    """
    cells = []
    for seed in range(profile.seeds):
        for downstream in profile.downstreams:
            for model in profile.models:
                for fraction in profile.fractions:
                    for regime in profile.regimes:
                        if regime == "scratch":
                            cells.append(Cell(downstream, model, fraction, regime, seed))
                            continue
                        cells += [Cell(downstream, model, fraction, regime, seed, upstream)
                                  for upstream in profile.upstreams if upstream != downstream]
    unknown = sorted({c.model for c in cells} - set(MODELS.names()))
    if unknown:
        raise KeyError(f"profile {profile.name!r} names unregistered models {unknown}")
    return cells


def enumerate_transferability(profile: Profile) -> list[Transferability]:
    """One score task per (upstream, downstream, model, fraction, seed) of a profile's transfer pairs.

    The same pairs as the fine-tune cells (a downstream is never scored from itself), in a fixed order.
    """
    return [Transferability(cell.upstream, cell.downstream, cell.model, cell.fraction, cell.seed)
            for cell in enumerate_cells(replace(profile, regimes=("finetune",)))]


def subset_size(n_train: int, fraction: float) -> int:
    """Records kept of a training split: at least one."""
    return max(1, math.ceil(n_train * fraction - 1e-9))


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from the parts' text: the same on every host, worker and Python (no ``hash()``)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def identity_hash(payload: dict[str, Any]) -> str:
    """Digest of everything that changes a result (lm-eval once cached without the model name: include all)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def iter_upstream_needs(cells: list[Cell] | list[Transferability]) -> Iterator[Pretraining]:
    """The distinct upstream checkpoints a selection of cells (or score tasks) needs, in first-use order."""
    seen = set()
    for c in cells:
        if (need := c.pretraining) is not None and need not in seen:
            seen.add(need)
            yield need
