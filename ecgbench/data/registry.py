"""The dataset registry: names -> manifest files, from ecgbench itself, the ``ecgbench.datasets`` entry points,
``--ecg-manifest`` files and ``register_dataset`` calls alike.

Registering is where a manifest meets its loader (the loader owns the schema of its ``[format.options]``), so
a manifest is checked whole here, once, and ``manifest.py`` need not know the loaders.
"""
from __future__ import annotations

import os
from pathlib import Path

from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.data.loaders import loader_class
from ecgbench.data.manifest import MANIFEST_DIR, DataError, Manifest, ManifestError, load_manifest
from ecgbench.registry import Registry


class DatasetFilesMissing(DataError):
    """A dataset without a synthetic stand-in whose files are not where the run looks: its cells are skipped."""


def checked_manifest(path: Path) -> Manifest:
    """The manifest at ``path``, its format options checked by its loader."""
    manifest = load_manifest(path)
    try:
        loader = loader_class(manifest.format.kind)
    except KeyError as e:
        raise ManifestError(f"{path}: [format] kind: {e.args[0]}") from None
    loader.parse_options(manifest.format.options, f"{path}: [format.options]")
    return manifest


def _discover(registry: Registry[Path]) -> None:
    """Datasets of the ``ecgbench.datasets`` entry points: each names a manifest path (str or path-like)."""
    from ecgbench.entrypoints import load_group

    found = []
    for entry in load_group("ecgbench.datasets"):
        if not isinstance(entry.value, (str, os.PathLike)):
            raise entry.error(f"must name the path of a manifest TOML (a str or pathlib.Path), got "
                              f"{type(entry.value).__name__}")
        path = Path(entry.value)
        try:
            manifest = checked_manifest(path)
        except DataError as e:
            raise entry.error(str(e)) from None
        if manifest.name != entry.name:
            raise entry.error(f"{path} names dataset {manifest.name!r}; the entry point's name must be the same")
        found.append((entry, path))
    for entry, path in found:
        registry.register(entry.name, path, entry.origin)


DATASETS: Registry[Path] = Registry("dataset", discover=_discover)
for _name in DATASET_CLASSES:
    DATASETS.register(_name, MANIFEST_DIR / f"{_name}.toml")


def register_dataset(name: str, manifest_path: Path, origin: str = "register_dataset()") -> None:
    """Make a user's dataset known to ``load``, ``open_dataset``, profiles and the CLI; a taken name is refused,
    except the same file registered again under its name (a second ``--ecg-manifest`` of one file)."""
    path = Path(manifest_path)
    manifest = checked_manifest(path)
    if manifest.name != name:
        raise ManifestError(f"{path}: manifest names dataset {manifest.name!r}, registered as {name!r}")
    if name in DATASETS and DATASETS.get(name).resolve() == path.resolve():
        return
    DATASETS.register(name, path, origin)


def register_manifest_file(path: Path) -> str:
    """``--ecg-manifest PATH``: register the dataset the manifest names; returns that name."""
    name = checked_manifest(Path(path)).name
    register_dataset(name, Path(path), origin=f"manifest file {Path(path).resolve()}")
    return name


def get_manifest(name: str) -> Manifest:
    """The manifest of a registered dataset, checked against its name and (built-ins) the study's class list."""
    path = DATASETS.get(name)
    manifest = checked_manifest(path)
    if manifest.name != name:
        raise ManifestError(f"{path}: manifest names dataset {manifest.name!r}, expected {name!r}")
    expected = DATASET_CLASSES.get(name)
    if expected is not None and manifest.classes != expected:
        raise ManifestError(f"{path}: classes {list(manifest.classes)} differ from the study's {list(expected)}")
    return manifest


def has_standin(name: str) -> bool:
    """Whether ``name`` has a built-in synthetic stand-in (the study's five datasets do, a user's do not)."""
    return name in DATASET_CLASSES


def has_files(name: str, data_root: Path | None) -> bool:
    """Whether ``data_root/name`` is there: the dataset is then real data, read from its files, never its
    stand-in."""
    return data_root is not None and (Path(data_root) / name).exists()


def missing_files(name: str, data_root: Path | None) -> str | None:
    """Why ``name`` cannot be opened (no stand-in and no files), or None when it can."""
    if has_standin(name) or (data_root is not None and (Path(data_root) / name).is_dir()):
        return None
    where = (f"{Path(data_root) / name} does not exist" if data_root is not None
             else "no --ecg-data folder was given")
    return (f"dataset {name} has no synthetic stand-in and {where}: put its files in DATA/{name} and pass "
            f"--ecg-data DATA (ecgbench data verify {name} --root DATA checks them)")


__all__ = ["DATASETS", "DatasetFilesMissing", "checked_manifest", "get_manifest", "has_standin", "missing_files",
           "register_dataset", "register_manifest_file"]
