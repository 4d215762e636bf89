"""Named sections of a generated Markdown report, so that two commands can each regenerate their own part.

``ecgbench perf`` writes ``reports/performance.md``; ``ecgbench capacity`` writes its capacity plan into the
same file between markers, and ``ecgbench perf`` keeps that part when it rewrites. A base module, because
perf and cluster must not import each other.
"""
from __future__ import annotations

import re

CAPACITY_SECTION = "capacity-plan"


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section {name}: begin -->", f"<!-- section {name}: end -->"


def extract_section(text: str, name: str) -> str | None:
    """The section ``name`` of ``text``, markers included, or None."""
    begin, end = _markers(name)
    match = re.search(re.escape(begin) + r".*?" + re.escape(end), text, re.S)
    return match.group(0) if match else None


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` set to ``body`` (appended when absent)."""
    begin, end = _markers(name)
    section = f"{begin}\n{body.strip()}\n{end}"
    old = extract_section(text, name)
    return text.replace(old, section) if old else text.rstrip("\n") + "\n\n" + section + "\n"
