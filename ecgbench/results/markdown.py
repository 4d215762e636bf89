"""Small text helpers the Markdown reports share."""
from __future__ import annotations

from tabulate import tabulate


def markdown_table(rows: list[list], headers: list[str]) -> str:
    """A GitHub Markdown table, cells printed as given (no number re-formatting)."""
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def first_line(text: str | None) -> str | None:
    """The first non-blank line of ``text`` (an error's cause), None when there is none."""
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else None
