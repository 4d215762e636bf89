"""The study tasks a pytest selection (``-k``, ``-m``, ``--ecg-profile``...) stands for, by asking pytest itself.

Why collect rather than re-implement ``-k``: the shards a cluster job runs are cut by pytest inside the job;
the plan shown and submitted beforehand must see exactly the same selection, so it comes from the same code.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecgbench.runner import RunOptions
from ecgbench.study import Cell, Pretraining, Profile, Transferability

GRID_FILE = Path(__file__).resolve().parents[1] / "grid" / "test_grid.py"  # in the installed package, not a checkout
RESERVED_OPTIONS = ("--ecg-phase", "--ecg-shard", "--ecg-costs", "-n", "--numprocesses", "--dist")


@dataclass(frozen=True)
class Selection:
    """The profile, run options and selected tasks of a pytest argument list (grid file not included)."""

    args: tuple[str, ...]
    profile: Profile
    options: RunOptions
    cells: tuple[Cell, ...]
    pretrainings: tuple[Pretraining, ...]
    scores: tuple[Transferability, ...] = ()


class _Collector:
    """Keeps the config of a finished collection."""

    def __init__(self) -> None:
        self.config: pytest.Config | None = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.config = session.config


def collect_selection(args: list[str], grid_file: Path = GRID_FILE) -> Selection:
    """Collect ``grid_file`` with ``args`` (no test runs); a clear error when pytest rejects them.

    The ecgbench plugin's session object (registered as ``ecgbench-session``) holds the selected tasks.
    """
    clash = [a for a in args if a.split("=")[0] in RESERVED_OPTIONS]
    if clash:
        raise ValueError(f"{clash}: phases, shards and workers are set by ecgbench submit, not in the selection")
    collector = _Collector()
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = pytest.main([str(grid_file), "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                           plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) or collector.config is None:
        raise ValueError(f"pytest could not collect {grid_file} with {args}:\n{output.getvalue()[-2000:]}")
    state = collector.config.pluginmanager.get_plugin("ecgbench-session")
    tasks = state.selected_tasks
    return Selection(tuple(args), state.profile, state.options,
                     tuple(t for t in tasks if isinstance(t, Cell)),
                     tuple(t for t in tasks if isinstance(t, Pretraining)),
                     tuple(t for t in tasks if isinstance(t, Transferability)))
