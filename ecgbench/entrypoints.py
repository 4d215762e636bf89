"""Entry points of other distributions (``ecgbench.models``, ``ecgbench.datasets``, ``ecgbench.formats``,
``ecgbench.checkpoints``),
read with ``importlib.metadata``.

Strict on purpose: one name declared by two distributions is an error naming both (which one wins would depend
on install order), and an entry point that does not load is an error naming it (a silently skipped model or
dataset would quietly shrink the grid).
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

GROUPS = ("ecgbench.models", "ecgbench.datasets", "ecgbench.formats", "ecgbench.checkpoints")


class EntryPointError(ValueError):
    """A declared entry point is ambiguous, does not load, or gives an object of the wrong kind."""


@dataclass(frozen=True)
class Loaded:
    name: str
    value: Any  # the loaded object
    target: str  # "pkg.module:attr" as declared
    distribution: str

    @property
    def origin(self) -> str:
        return f"distribution {self.distribution} (entry point {self.name} = {self.target!r})"

    def error(self, reason: str) -> EntryPointError:
        return EntryPointError(f"entry point {self.name} = {self.target!r} of group ecgbench.* in distribution "
                               f"{self.distribution}: {reason}")


def _distribution(entry: metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "<unknown distribution>"


def load_group(group: str) -> list[Loaded]:
    """Every entry point of ``group``, loaded, in name order; raises ``EntryPointError`` before returning any."""
    by_name: dict[str, list[metadata.EntryPoint]] = {}
    for entry in metadata.entry_points(group=group):
        by_name.setdefault(entry.name, []).append(entry)
    clashes = {name: entries for name, entries in by_name.items() if len(entries) > 1}
    if clashes:
        raise EntryPointError("; ".join(
            f"{group} name {name!r} is declared by " + " and by ".join(
                f"{_distribution(e)} ({e.value!r})" for e in entries) + ": uninstall or rename one"
            for name, entries in sorted(clashes.items())))
    loaded = []
    for name, (entry,) in sorted(by_name.items()):
        try:
            value = entry.load()
        except Exception as e:  # any import-time failure of a user's package: name the entry point
            raise EntryPointError(f"entry point {name} = {entry.value!r} of group {group} in distribution "
                                  f"{_distribution(entry)} does not load: {type(e).__name__}: {e}") from e
        loaded.append(Loaded(name, value, entry.value, _distribution(entry)))
    return loaded
