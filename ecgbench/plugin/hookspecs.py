"""Hooks a user's ``conftest.py`` or plugin may implement to extend the study (registered by ``pytest_addhooks``).

As pytest-benchmark's ``pytest_benchmark_update_json``: each hook gets what ecgbench is about to store or write,
and adds to it, never replaces it. Their names start with ``pytest_``: pytest only takes an unmarked function of
a conftest for a hook implementation when it does.
"""
from __future__ import annotations

import pytest

hookspec = pytest.hookspec


@hookspec
def pytest_ecgbench_update_record(record: dict, cell) -> None:
    """Add fields to ``record["environment"]`` of a study cell's record before it is written (on the process that
    ran the cell, so also on an xdist worker). The record's other keys are fixed by its schema, and the
    environment is no part of the cell's identity: what is added here never changes which record is reused.

    Example::

        def pytest_ecgbench_update_record(record, cell):
            record["environment"]["cluster_node"] = os.environ.get("SLURMD_NODENAME", "local")
    """


@hookspec
def pytest_ecgbench_leaderboard_sections(records: list[dict], score_records: list[dict]) -> str | None:
    """A Markdown section (a ``## heading`` and its body) to add to the leaderboard, or None; called by the
    process that writes it (the controller under xdist) with the records it shows and the score records.

    Example::

        def pytest_ecgbench_leaderboard_sections(records, score_records):
            return f"## Cells per model\\n\\n{collections.Counter(r['cell']['model'] for r in records)}\\n"
    """
