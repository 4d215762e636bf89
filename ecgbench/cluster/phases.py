"""Which tasks a phase of a selection runs, and which of them fall in one shard.

A cluster run has two phases: the upstream pre-trainings the selected cells need (each its own task, so each
checkpoint is trained exactly once), then the cells, split into ``scratch`` cells (they need no checkpoint and
need not wait) and ``transfer`` cells (fine-tune and linear: they start once the checkpoints exist) with the
transferability-score tasks (a forward pass of a checkpoint each).
``all`` is a plain run: whatever the selection holds, checkpoints trained on first use.
"""
from __future__ import annotations

from typing import Sequence

from ecgbench.cluster.shards import ShardSpec, partition
from ecgbench.cost import CostModel, Task
from ecgbench.study import Cell, Pretraining, Transferability, pretrainings_of

PHASES = ("all", "pretrain", "scratch", "transfer")


def phase_tasks(phase: str, cells: Sequence[Cell], pretrainings: Sequence[Pretraining],
                scores: Sequence[Transferability] = ()) -> list[Task]:
    """The tasks ``phase`` runs for a selection of cells, pre-training cases and score tasks, in selection order.

    ``pretrain`` runs the checkpoints the selected cells and score tasks need as well as any pre-training
    selected directly.
    """
    if phase == "pretrain":
        return list(dict.fromkeys([*pretrainings, *pretrainings_of([*cells, *scores])]))
    if phase == "scratch":
        return [c for c in cells if c.regime == "scratch"]
    if phase == "transfer":
        return [*(c for c in cells if c.regime != "scratch"), *scores]
    if phase == "all":
        return [*pretrainings, *cells, *scores]
    raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")


def split_into_shards(tasks: Sequence[Task], count: int, costs: CostModel) -> list[list[Task]]:
    """``count`` shards of near-equal estimated cost, each in the given task order."""
    by_key = {t.key: t for t in tasks}
    keys = partition({key: costs.cost(t) for key, t in by_key.items()}, count)
    order = {t.key: i for i, t in enumerate(tasks)}
    return [sorted((by_key[k] for k in shard), key=lambda t: order[t.key]) for shard in keys]


def shard_of(tasks: Sequence[Task], spec: ShardSpec, costs: CostModel) -> list[Task]:
    """The tasks of shard ``spec``; the ``spec.count`` shards partition ``tasks``."""
    return split_into_shards(tasks, spec.count, costs)[spec.index - 1]
