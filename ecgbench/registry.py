"""A small name -> object registry that refuses duplicate names (a silent overwrite hides a user's bug).

A registry may be *open*: ``discover`` registers what other packages declare (entry points, ``entrypoints.py``)
the first time anyone reads it, so the plugin, the CLI and the Python API all see the same names without any of
them having to remember to load them. Each name remembers where it came from (``origin``), for listings and
for errors naming both sides of a clash.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")
BUILT_IN = "ecgbench (built-in)"


class Registry(Generic[T]):
    def __init__(self, kind: str, discover: Callable[["Registry[T]"], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._discover = discover
        self._discovered = discover is None

    def register(self, name: str, item: T, origin: str = BUILT_IN) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._origins[name]}); "
                             f"{origin} registers it again: rename one of them")
        self._items[name] = item
        self._origins[name] = origin
        return item

    def discover(self) -> None:
        """Run ``discover`` once; a failure is raised again on the next read (never a half-open registry)."""
        if self._discovered:
            return
        self._discovered = True
        try:
            self._discover(self)
        except BaseException:
            self._discovered = False
            raise

    def get(self, name: str) -> T:
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self._items)}") from None

    def origin(self, name: str) -> str:
        """Who registered ``name``: ecgbench itself, a distribution's entry point, a manifest file, or code."""
        self.get(name)
        return self._origins[name]

    def names(self) -> tuple[str, ...]:
        self.discover()
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
