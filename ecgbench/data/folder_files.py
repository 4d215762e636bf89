"""Which files belong to a dataset: those below its folder whose path *below the folder* has no hidden part.

The prepared cache's key hashes exactly these files (``prepare.source_identity``), so a file the dataset reads
must be one of them: a labels row, index row, header or manifest option that names a path outside the folder
(absolute, or climbing out with ``..``) or a hidden one (``.git/``, ``.x.dat``) is refused, because a change
to it would leave the cache's key, and so "already prepared", unchanged. Only the path below the folder is
looked at, never the folder's own path: ``--ecg-data ../data`` reads what its absolute form reads.
"""
from __future__ import annotations

import posixpath
from pathlib import Path, PurePosixPath

from ecgbench.data.manifest import DataError


class OutsideDatasetError(DataError):
    """A path that is not a visible file below the dataset folder."""


def is_hidden_below(path: Path, root: Path) -> bool:
    """Whether ``path`` (below ``root``) has a part below ``root`` that starts with a dot."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def visible_files(root: Path, pattern: str) -> list[Path]:
    """Files below ``root`` matching ``pattern`` (``*.hea``), hidden ones left out, sorted."""
    return sorted(p for p in root.rglob(pattern) if not is_hidden_below(p, root))


def inside_path(relative: str, what: str) -> str:
    """``relative`` as a clean posix path below the dataset folder (``./a/b`` and ``a/../a/b`` -> ``a/b``, so
    two spellings of one file are one file); an absolute path, a path that climbs out of the folder or a hidden
    part raises ``OutsideDatasetError`` saying what ``what`` names and why it is refused."""
    path = PurePosixPath(relative.replace("\\", "/"))
    if not path.is_absolute():
        path = PurePosixPath(posixpath.normpath(path.as_posix()))
    outside = path.is_absolute() or ".." in path.parts
    if outside or any(part.startswith(".") for part in path.parts):
        kind = "a path outside the dataset folder" if outside else "a hidden path"
        raise OutsideDatasetError(
            f"{what} names {relative!r}, {kind}: every file a dataset reads must be a visible file below its folder, "
            "whose contents are part of the prepared data's identity (copy the file into the dataset folder)")
    return path.as_posix()
