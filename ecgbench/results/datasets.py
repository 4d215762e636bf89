"""Which datasets a set of records used, upstreams too, with the records used against those expected.

Each record's identity lists the datasets of its cell (``datasets``: source, records used, records expected:
the manifest's count for real data, the stand-in's size for synthetic data). A real copy with fewer records
than its manifest expects is a partial copy: the leaderboard's provenance and the terminal summary of every
run that uses it say so, not only the run that first prepared it.
"""
from __future__ import annotations


def _summaries(records: list[dict]) -> dict[str, set[tuple[str, int, int]]]:
    found: dict[str, set[tuple[str, int, int]]] = {}
    for record in records:
        datasets = (record.get("identity") or {}).get("datasets") or {}
        for name, info in datasets.items():
            found.setdefault(name, set()).add((info["source"], info["records"], info["expected"]))
    return found


def _roles(records: list[dict]) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for record in records:
        cell = record["cell"]
        roles.setdefault(cell["downstream"], set()).add("downstream")
        if cell.get("upstream"):
            roles.setdefault(cell["upstream"], set()).add("upstream")
    return roles


def _describe(source: str, used: int, expected: int) -> str:
    if source == "synthetic":
        return f"synthetic, {used} records"
    if used < expected:
        return f"real, {used} of the {expected} records its manifest expects (a partial copy)"
    return f"real, {used} records (its manifest expects {expected})"


def dataset_lines(records: list[dict]) -> list[str]:
    """One line per dataset the records used: ``ptbxl (upstream): synthetic, 1000 records``."""
    roles = _roles(records)
    return [f"{name} ({' and '.join(sorted(roles.get(name, {'?'})))}): "
            + "; ".join(_describe(*summary) for summary in sorted(summaries))
            for name, summaries in sorted(_summaries(records).items())]


def partial_copies(records: list[dict]) -> list[str]:
    """A warning per real dataset of which the records used fewer records than its manifest expects."""
    return [f"partial copy: {name} has {used} of the {expected} records its manifest expects; results on it "
            "are not those of the full dataset"
            for name, summaries in sorted(_summaries(records).items())
            for source, used, expected in sorted(summaries) if source == "real" and used < expected]
