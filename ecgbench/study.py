"""The study's vocabulary: cells, which cells are valid, and what identifies a cell's result (profiles, the
grid's data, are parsed in ``ecgbench.profiles``; their names are re-exported here)."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from ecgbench.data.registry import get_manifest
from ecgbench.models import MODELS
from ecgbench.profiles import (
    DEFAULT_PROFILE,
    MAX_CELLS,
    MAX_SEEDS,
    REGIMES,
    Profile,
    ProfileError,
    check_grid_size,
    get_profile,
    load_profiles,
)

__all__ = ["DEFAULT_PROFILE", "MAX_CELLS", "MAX_SEEDS", "REGIMES", "Cell", "Pretraining", "Profile", "ProfileError",
           "Task", "Transferability", "check_grid_size", "dataset_records", "default_results_dir", "enumerate_cells",
           "enumerate_transferability", "get_profile", "identity_hash", "pretrainings_of", "load_profiles",
           "stable_seed", "subset_size"]


def dataset_records(profile: Profile, name: str) -> int:
    """Records a dataset of the profile has, for cost estimates: the stand-in's size, else the manifest's count."""
    if name in profile.synthetic_records:
        return profile.synthetic_records[name]
    return get_manifest(name).record_count


def default_results_dir(root: Path, profile: str) -> Path:
    """``reports/results`` for the main profile, ``reports/<profile>/results`` for the others."""
    base = Path(root) / "reports"
    return base / "results" if profile == DEFAULT_PROFILE else base / profile / "results"


class _FileNamed:
    """A task whose ``key`` (a property of each task) also names its record file."""

    @property
    def file_stem(self) -> str:
        """``key`` safe as a file name on every platform."""
        return self.key.replace("->", "_to_")


@dataclass(frozen=True, order=True)
class Cell(_FileNamed):
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
    def pretraining(self) -> "Pretraining | None":
        """The upstream checkpoint this cell starts from (None for scratch)."""
        return Pretraining(self.upstream, self.model, self.seed) if self.upstream else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cell":
        return cls(**d)


@dataclass(frozen=True, order=True)
class Pretraining:
    """One upstream checkpoint: trained once, shared by every fine-tune and linear cell that starts from it."""

    upstream: str
    model: str
    seed: int

    @property
    def key(self) -> str:
        """Human-readable id, also the pytest id of its pre-training case: ``pretrain-ptbxl-resnet1d18-s0``."""
        return f"pretrain-{self.upstream}-{self.model}-s{self.seed}"


@dataclass(frozen=True, order=True)
class Transferability(_FileNamed):
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
    def pretraining(self) -> Pretraining:
        return Pretraining(self.upstream, self.model, self.seed)

    @property
    def finetune_cell(self) -> Cell:
        """The fine-tune cell whose outcome the scores predict (and whose training subset they read)."""
        return Cell(self.downstream, self.model, self.fraction, "finetune", self.seed, self.upstream)


Task = Cell | Pretraining | Transferability  # what one pytest case of the grid runs


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

    The same pairs as the fine-tune cells (a downstream is never scored from itself), in a fixed order; none for
    a profile without a transfer regime (nothing to predict, and no checkpoint to score).
    """
    if not set(profile.regimes) & {"finetune", "linear"}:
        return []
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


def pretrainings_of(cells: list[Cell] | list[Transferability]) -> Iterator[Pretraining]:
    """The distinct upstream checkpoints a selection of cells (or score tasks) needs, in first-use order."""
    seen = set()
    for c in cells:
        if (pretraining := c.pretraining) is not None and pretraining not in seen:
            seen.add(pretraining)
            yield pretraining
