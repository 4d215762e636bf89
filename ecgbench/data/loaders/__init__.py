"""Loaders, one module per native format, in a registry that refuses duplicates (users may add formats, by
``register_format`` or an ``ecgbench.formats`` entry point naming their ``Loader`` subclass)."""
from __future__ import annotations

from ecgbench.data.loaders.base import (
    EcgRecordError,
    Index,
    Loader,
    MissingFileError,
    RawRecord,
    RecordEntry,
    check_unique,
)
from ecgbench.data.loaders.cinc import CincLoader
from ecgbench.data.loaders.code_test import CodeTestLoader
from ecgbench.data.loaders.labelled import ArrayLoader, WfdbLoader
from ecgbench.data.loaders.ptb import PtbLoader
from ecgbench.data.loaders.ptbxl import PtbxlLoader
from ecgbench.registry import Registry


def _discover(registry: Registry[type[Loader]]) -> None:
    """Formats of the ``ecgbench.formats`` entry points: each names a ``Loader`` subclass whose ``kind`` is its name."""
    from ecgbench.entrypoints import load_group

    found = []
    for entry in load_group("ecgbench.formats"):
        if not (isinstance(entry.value, type) and issubclass(entry.value, Loader)):
            raise entry.error(f"must name a subclass of ecgbench.data.loaders.Loader, got {entry.value!r}")
        if getattr(entry.value, "kind", None) != entry.name:
            raise entry.error(f"the loader's kind {getattr(entry.value, 'kind', None)!r} must equal the entry "
                              "point's name (manifests name a format by its kind)")
        found.append(entry)
    for entry in found:
        registry.register(entry.name, entry.value, entry.origin)


FORMATS: Registry[type[Loader]] = Registry("dataset format", discover=_discover)
for _loader in (PtbxlLoader, CincLoader, PtbLoader, CodeTestLoader, WfdbLoader, ArrayLoader):
    FORMATS.register(_loader.kind, _loader)


def loader_class(kind: str) -> type[Loader]:
    return FORMATS.get(kind)


def register_format(loader: type[Loader]) -> type[Loader]:
    """Add a user's loader class (usable as a decorator); its ``kind`` names it in manifests."""
    return FORMATS.register(loader.kind, loader, origin=f"register_format() in {loader.__module__}")


__all__ = ["FORMATS", "Index", "Loader", "MissingFileError", "RawRecord", "RecordEntry", "EcgRecordError",
           "check_unique", "loader_class", "register_format"]
