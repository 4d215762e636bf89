"""What one run did with its tasks: trained here, reused from stored records, skipped (and why), or lost.

A fresh clone ships stored records, so a run that reuses all of them finishes in seconds and looks like a
study that ran: the terminal summary and the leaderboard's provenance say which it was, and how to retrain.
The plugin fills one ``RunTally`` per session from test reports (the controller under xdist sees only reports),
one ``TaskOutcome`` per study task; it is the only count of outcomes: the ecgbench section and the leaderboard's
provenance (``lines``, ``score_line``), the progress lines and the "ecgbench run" section (``ecgbench.progress``)
all read it, so they cannot disagree. Score tasks are counted by what happened to them: a task whose test
failed (its record could not be written, say) or was skipped is never counted as ok because a record of it exists.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_REASONS = 5  # distinct skip reasons listed; the rest are counted
SCORE_OUTCOMES = ("ok", "failed", "skipped")
ORIGINS = ("trained", "reused")


def score_outcome(test_outcome: str, record_status: str | None) -> str:
    """What happened to a score task: pytest's outcome of its test ("passed", "failed", "skipped") and the
    status of the record it wrote (None when it wrote none)."""
    if test_outcome == "skipped":
        return "skipped"
    return "ok" if test_outcome == "passed" and record_status == "ok" else "failed"


@dataclass(frozen=True)
class TaskOutcome:
    """What one study task did, from the report that decided it (its call, or a setup that failed or skipped)."""

    kind: str  # "cell", "checkpoint" or "score"
    # "trained ok", "reused failed", ... (a score task's last word from ``score_outcome``; a checkpoint's outcome is
    # "trained", "reused" or "skipped"); "skipped", "failed" or "ok" alone when the task said nothing
    outcome: str
    seconds: float = 0.0  # of its call
    reason: str | None = None  # why it was skipped (missing data, real and synthetic data mixed)
    started: bool = False  # a cell or score task past its skip checks: what it stored belongs to this run

    @property
    def origin(self) -> str | None:
        """"trained" or "reused"; None for a task that stopped before it had a record."""
        first = self.outcome.split()[0]
        return first if first in ORIGINS else None

    @property
    def status(self) -> str:
        """The outcome's last word: "ok", "failed" or "skipped" for a cell or score task."""
        return self.outcome.split()[-1]


@dataclass
class RunTally:
    """What the run's study tasks did, one ``TaskOutcome`` per task, and the lines that count them."""

    results_dir: Path
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)  # task key -> what it did, in the order they ended

    def started(self, kind: str) -> list[str]:
        """Keys of the tasks of ``kind`` (``"cell"``, ``"score"``) that got past their skip checks."""
        return [key for key, task in self.tasks.items() if task.kind == kind and task.started]

    @property
    def seen(self) -> bool:
        """Whether a cell or score task started or was skipped with a reason: the run has something to say."""
        return any(task.started or task.reason for task in self.tasks.values())

    def count(self, kind: str) -> Counter[str]:
        """How many tasks of ``kind`` ended in each outcome (``{"trained ok": 3, "skipped": 1}``)."""
        return Counter(task.outcome for task in self.tasks.values() if task.kind == kind)

    def score_line(self) -> str | None:
        """``transferability scores: 3 ok, 1 failed, 1 skipped (1 x why)``; None when the run had no score task.

        Every score task is counted here, one skipped for its data too (with the reason): the cells' ``skipped``
        line leaves score tasks out, so no task is counted twice."""
        scores = [task for task in self.tasks.values() if task.kind == "score"]
        if not scores:
            return None
        counts = Counter(task.status for task in scores)
        reasons = _reasons([task.reason for task in scores if task.reason])
        return (f"transferability scores: {', '.join(f'{counts[outcome]} {outcome}' for outcome in SCORE_OUTCOMES)}"
                + (f" ({reasons})" if reasons else ""))

    def lines(self, relative_to: Path | None = None) -> list[str]:
        """One line per kind of outcome of the cells: trained, reused (from where, how to retrain), skipped,
        unrecorded.

        ``relative_to``: name the results folder relative to this one (a leaderboard beside it is committed and
        must not carry the user's absolute path); the terminal gets the full path.
        """
        cells = self.count("cell")
        folder = Path(os.path.relpath(self.results_dir, relative_to)) if relative_to else self.results_dir
        lines = [f"trained here: {cells['trained ok'] + cells['trained failed']} cells ({cells['trained ok']} ok, "
                 f"{cells['trained failed']} failed)"]
        if reused := cells["reused ok"] + cells["reused failed"]:
            lines.append(f"reused from stored records in {folder}: {reused} cells "
                         f"({cells['reused ok']} ok, {cells['reused failed']} failed), not trained "
                         "again; retrain them with --ecg-rerun all (or only the failed ones with --ecg-rerun failed)")
        if skipped := [task.reason for task in self.tasks.values() if task.kind == "cell" and task.reason]:
            lines.append(f"skipped: {len(skipped)} cells ({_reasons(skipped)})")
        unrecorded = [key for key in self.started("cell") if self.tasks[key].origin is None]
        if unrecorded:
            lines.append(f"no record: {len(unrecorded)} cells stopped before their record was written (see their "
                         f"failures above): {', '.join(unrecorded[:MAX_REASONS])}"
                         + (", ..." if len(unrecorded) > MAX_REASONS else ""))
        return lines


def _reasons(reasons: list[str]) -> str:
    """``3 x why; 1 x why not``, the most frequent first, at most ``MAX_REASONS`` of them."""
    counted = Counter(reasons).most_common()
    listed = "; ".join(f"{n} x {reason}" for reason, n in counted[:MAX_REASONS])
    return listed + (f"; {len(counted) - MAX_REASONS} more reasons" if len(counted) > MAX_REASONS else "")
