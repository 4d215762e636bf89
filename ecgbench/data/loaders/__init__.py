"""Loaders, one module per native format, in a registry that refuses duplicates (users may add formats)."""
from __future__ import annotations

from ecgbench.data.loaders.base import (Index, Loader, MissingFileError, RawRecord, RecordEntry,
                                        EcgRecordError, check_unique)
from ecgbench.data.loaders.cinc import CincLoader
from ecgbench.data.loaders.code_test import CodeTestLoader
from ecgbench.data.loaders.ptb import PtbLoader
from ecgbench.data.loaders.ptbxl import PtbxlLoader
from ecgbench.registry import Registry

FORMATS: Registry[type[Loader]] = Registry("dataset format")
for _loader in (PtbxlLoader, CincLoader, PtbLoader, CodeTestLoader):
    FORMATS.register(_loader.kind, _loader)


def loader_class(kind: str) -> type[Loader]:
    return FORMATS.get(kind)


def register_format(loader: type[Loader]) -> type[Loader]:
    """Add a user's loader class (usable as a decorator); its ``kind`` names it in manifests."""
    return FORMATS.register(loader.kind, loader)


__all__ = ["FORMATS", "Index", "Loader", "MissingFileError", "RawRecord", "RecordEntry", "EcgRecordError",
           "check_unique", "loader_class", "register_format"]
