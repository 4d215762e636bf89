"""What one run did with its cells: trained here, reused from stored records, skipped (and why), or lost.

A fresh clone ships stored records, so a run that reuses all of them finishes in seconds and looks like a
study that ran: the terminal summary and the leaderboard's provenance say which it was, and how to retrain.
The plugin fills a ``RunTally`` from test reports (the controller under xdist sees only reports). Score tasks
are counted by what happened to them: a task whose test failed (its record could not be written, say) or was
skipped is never counted as ok because a record of it exists.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_REASONS = 5  # distinct skip reasons listed; the rest are counted
SCORE_OUTCOMES = ("ok", "failed", "skipped")


def score_outcome(test_outcome: str, record_status: str | None) -> str:
    """What happened to a score task: pytest's outcome of its test ("passed", "failed", "skipped") and the
    status of the record it wrote (None when it wrote none)."""
    if test_outcome == "skipped":
        return "skipped"
    return "ok" if test_outcome == "passed" and record_status == "ok" else "failed"


@dataclass
class RunTally:
    results_dir: Path
    outcomes: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (trained|reused, ok|failed)
    started: list[str] = field(default_factory=list)  # keys of cells that started (with or without a record)
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why
    scores: dict[str, str] = field(default_factory=dict)  # score task key -> one of SCORE_OUTCOMES

    @property
    def seen(self) -> bool:
        return bool(self.started or self.skipped or self.scores)

    def score_line(self) -> str | None:
        """``transferability scores: 3 ok, 1 failed, 1 skipped``; None when no score task ran."""
        if not self.scores:
            return None
        counts = [f"{sum(o == outcome for o in self.scores.values())} {outcome}" for outcome in SCORE_OUTCOMES]
        return f"transferability scores: {', '.join(counts)}"

    def count(self, origin: str, status: str | None = None) -> int:
        return sum(o == origin and status in (None, s) for o, s in self.outcomes.values())

    def lines(self, relative_to: Path | None = None) -> list[str]:
        """One line per kind of outcome: trained, reused (from where, how to retrain), skipped, unrecorded.

        ``relative_to``: name the results folder relative to this one (a leaderboard beside it is committed and
        must not carry the user's absolute path); the terminal gets the full path.
        """
        trained, reused = self.count("trained"), self.count("reused")
        folder = Path(os.path.relpath(self.results_dir, relative_to)) if relative_to else self.results_dir
        lines = [f"trained here: {trained} cells ({self.count('trained', 'ok')} ok, "
                 f"{self.count('trained', 'failed')} failed)"]
        if reused:
            lines.append(f"reused from stored records in {folder}: {reused} cells "
                         f"({self.count('reused', 'ok')} ok, {self.count('reused', 'failed')} failed), not trained "
                         "again; retrain them with --ecg-rerun all (or only the failed ones with --ecg-rerun failed)")
        if self.skipped:
            reasons = Counter(self.skipped.values()).most_common()
            listed = "; ".join(f"{n} x {reason}" for reason, n in reasons[:MAX_REASONS])
            more = f"; {len(reasons) - MAX_REASONS} more reasons" if len(reasons) > MAX_REASONS else ""
            lines.append(f"skipped: {len(self.skipped)} cells ({listed}{more})")
        unrecorded = [key for key in self.started if key not in self.outcomes]
        if unrecorded:
            lines.append(f"no record: {len(unrecorded)} cells stopped before their record was written (see their "
                         f"failures above): {', '.join(unrecorded[:MAX_REASONS])}"
                         + (", ..." if len(unrecorded) > MAX_REASONS else ""))
        return lines
