"""Which study tasks a session's grid holds: one table of ``{parameter: enumerator}`` drives both the
parametrization (``pytest_generate_tests``) and ``task_of``, and every task carries one marker per axis value."""
from __future__ import annotations

from typing import Callable

import pytest

from ecgbench.study import (
    Cell,
    Pretraining,
    Profile,
    Task,
    Transferability,
    enumerate_cells,
    enumerate_transferability,
    pretrainings_of,
)


def _pretrainings(profile: Profile) -> list[Pretraining]:
    """The upstream checkpoints the profile's cells and score tasks need."""
    return list(pretrainings_of([*enumerate_cells(profile), *enumerate_transferability(profile)]))


# The fixture-free parameter a grid test names, and the tasks of a profile it is parametrized with.
TASK_PARAMETERS: dict[str, Callable[[Profile], list[Task]]] = {
    "ecg_cell": enumerate_cells,
    "ecg_pretraining": _pretrainings,
    "ecg_transferability": enumerate_transferability,
}


def task_of(item: pytest.Item) -> Task | None:
    """The study task an item runs (a cell, a pre-training or a score task), None for any other test."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    return next((params[name] for name in TASK_PARAMETERS if name in params), None)


def axis_markers(task: Task) -> list[str]:
    """One marker per axis value of a task, so that ``-m`` selects any axis exactly (``-m to_ptb`` is PTB alone)
    and ``-k`` can name a transfer direction (``-k "from_ptbxl and to_cpsc2018"``; ``->`` is no ``-k`` syntax)."""
    if isinstance(task, Pretraining):
        return ["pretrain", f"from_{task.upstream}", f"model_{task.model}", f"seed_{task.seed}"]
    if isinstance(task, Transferability):
        return ["transferability", f"from_{task.upstream}", f"to_{task.downstream}", f"model_{task.model}",
                f"seed_{task.seed}"]
    source = [f"from_{task.upstream}"] if task.upstream else []
    return [*source, f"to_{task.downstream}", f"model_{task.model}", task.regime, f"seed_{task.seed}"]


def register_axis_markers(config: pytest.Config, profile: Profile) -> None:
    """Declare every axis marker of the profile (``--strict-markers`` accepts only declared ones)."""
    names = {name for tasks_of in TASK_PARAMETERS.values() for task in tasks_of(profile)
             for name in axis_markers(task)}
    for name in sorted(names):
        config.addinivalue_line("markers", f"{name}: ecgbench study axis value (selects tasks with -m or -k)")


def parametrize_tasks(metafunc: pytest.Metafunc, profile: Profile) -> None:
    """Parametrize each task parameter the test names with the profile's tasks, ids their keys."""
    for name, tasks_of in TASK_PARAMETERS.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, [pytest.param(task, id=task.key,
                                                     marks=[getattr(pytest.mark, m) for m in axis_markers(task)])
                                        for task in tasks_of(profile)])


def split_by_kind(tasks: list[Task]) -> tuple[list[Cell], list[Pretraining], list[Transferability]]:
    """The cells, pre-trainings and score tasks of ``tasks``, each in order."""
    return ([t for t in tasks if isinstance(t, Cell)], [t for t in tasks if isinstance(t, Pretraining)],
            [t for t in tasks if isinstance(t, Transferability)])
