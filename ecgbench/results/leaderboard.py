"""Rebuild the leaderboard from stored records: the one path the plugin (at session end) and ``ecgbench report``
share, so both leave out the same stale records and say so the same way."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ecgbench.codeid import leaderboard_records
from ecgbench.results.report import build_report

# Extra Markdown sections for the leaderboard, given the records it shows and the score records (a plugin hook).
SectionsHook = Callable[..., list[str | None]]


class AllStaleError(ValueError):
    """Every record would be left out as stale: no leaderboard to write."""


def rebuild_leaderboard(records: list[dict], score_records: list[dict], out_dir: Path, keep_stale: bool,
                        stale_option: str, notes: Iterable[str] = (), sections: SectionsHook | None = None,
                        allow_empty: bool = True) -> tuple[list[Path], str | None]:
    """Write the leaderboard of the non-stale ``records`` (all with ``keep_stale``) into ``out_dir``.

    Returns the written paths and the note on left-out stale records (naming ``stale_option``, the option that
    includes them). ``allow_empty=False`` refuses, with ``AllStaleError``, a leaderboard with no record left.
    """
    shown, stale_note = leaderboard_records(records, keep_stale, stale_option)
    if not shown and not allow_empty:
        raise AllStaleError(f"every record is stale; include them with {stale_option}")
    extra = [s for s in (sections(records=shown, score_records=score_records) if sections else []) if s]
    written = build_report(shown, out_dir, notes=[*([stale_note] if stale_note else []), *notes],
                           score_records=score_records, sections=extra)
    return written, stale_note
