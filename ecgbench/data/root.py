"""The real-data root (``--ecg-data``, ``ecgbench data ... --root``): a folder with one sub-folder per dataset.

A mistyped root must never turn a run on real data into a silent run on the synthetic stand-ins: a path that
does not exist or is no folder, or a folder that holds none of the datasets asked for, is an error that says
what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable


class DataRootError(ValueError):
    """A data root that is missing, not a folder, or holds none of the expected dataset sub-folders."""


def check_folder(root: Path) -> Path:
    """``root`` if it is an existing folder, else ``DataRootError`` saying what it is."""
    root = Path(root)
    if not root.exists():
        raise DataRootError(f"{root}: no such folder (expected a folder with one sub-folder per dataset)")
    if not root.is_dir():
        raise DataRootError(f"{root}: is a file, not a folder (expected a folder with one sub-folder per dataset)")
    return root


def datasets_in(root: Path, datasets: Iterable[str]) -> list[str]:
    """Which of ``datasets`` have their sub-folder under the existing folder ``root``; none is an error naming
    the sub-folder names expected and what the folder holds instead."""
    wanted = list(dict.fromkeys(datasets))
    found = [name for name in wanted if (check_folder(root) / name).is_dir()]
    if not found:
        held = sorted(p.name for p in Path(root).iterdir() if not p.name.startswith("."))
        raise DataRootError(f"{root}: holds none of the datasets asked for: expected a sub-folder named "
                            f"{', '.join(wanted)}; it holds {', '.join(held) if held else 'nothing'}")
    return found
