"""The checkpoint registry: names -> manifest files, from ``--ecg-checkpoint`` files, the ``ecgbench.checkpoints``
entry points of packages that ship weights, and ``register_checkpoint_file`` calls alike.

A checkpoint's name shares the namespace of upstreams with the datasets and ``random``: a clash is refused.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ecgbench.checkpoints.manifest import CheckpointManifest, load_manifest
from ecgbench.checkpoints.weights import CheckpointError, check_fit, read_state_dict
from ecgbench.digests import file_sha256
from ecgbench.registry import Registry

RANDOM = "random"  # the built-in upstream of ecgbench.study, which no checkpoint may shadow


def _refuse_clash(name: str, where: str) -> None:
    from ecgbench.data import DATASETS

    if name == RANDOM or name in DATASETS:
        raise CheckpointError(f"{where}: checkpoint name {name!r} is already an upstream "
                              f"({'the built-in random control' if name == RANDOM else 'a dataset'}): rename it")


def _discover(registry: Registry[Path]) -> None:
    """Checkpoints of the ``ecgbench.checkpoints`` entry points: each names a manifest path (str or path-like)."""
    from ecgbench.entrypoints import load_group

    found = []
    for entry in load_group("ecgbench.checkpoints"):
        if not isinstance(entry.value, (str, os.PathLike)):
            raise entry.error(f"must name the path of a checkpoint manifest TOML, got {type(entry.value).__name__}")
        try:
            manifest = load_manifest(Path(entry.value))
            _refuse_clash(manifest.name, str(entry.value))
        except CheckpointError as e:
            raise entry.error(str(e)) from None
        if manifest.name != entry.name:
            raise entry.error(f"{entry.value} names checkpoint {manifest.name!r}; the entry point's name must be "
                              "the same")
        found.append((entry, Path(entry.value)))
    for entry, path in found:
        registry.register(entry.name, path, entry.origin)


CHECKPOINTS: Registry[Path] = Registry("checkpoint", discover=_discover)


def register_checkpoint_file(path: Path) -> str:
    """``--ecg-checkpoint PATH``: register the checkpoint the manifest names; returns that name. The same file
    given twice is one registration."""
    path = Path(path)
    manifest = load_manifest(path)
    _refuse_clash(manifest.name, str(path))
    if manifest.name in CHECKPOINTS and CHECKPOINTS.get(manifest.name).resolve() == path.resolve():
        return manifest.name
    CHECKPOINTS.register(manifest.name, path, f"checkpoint file {path.resolve()}")
    return manifest.name


def get_checkpoint(name: str) -> CheckpointManifest:
    return load_manifest(CHECKPOINTS.get(name))


def given_checkpoint(name: str) -> dict:
    """The weights of checkpoint ``name`` as the runner uses an upstream checkpoint; the file's sha256 must be
    the manifest's (changed weights are refused, never silently used under the old id)."""
    manifest = get_checkpoint(name)
    path = manifest.weights_path
    if not path.is_file():
        raise CheckpointError(f"{manifest.source}: weights file {path} does not exist")
    stat = path.stat()
    return _load(manifest, str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _load(manifest: CheckpointManifest, path: str, size: int, mtime_ns: int) -> dict:
    """Read and checked once per process and file version (a cell of every seed reads the same weights)."""
    sha = file_sha256(Path(path))
    if sha != manifest.sha256:
        raise CheckpointError(f"{manifest.source}: weights {path} have sha256 {sha}, the manifest says "
                              f"{manifest.sha256}: the weights changed (run `ecgbench checkpoint new` again to accept "
                              "them; their cells get new ids)")
    state = read_state_dict(Path(path))
    check_fit(state, manifest.model, Path(path), manifest.outputs)
    return {"state_dict": state, "classes": [f"{manifest.name}{i}" for i in range(manifest.outputs)],
            "model": manifest.model, "upstream": manifest.name, "input": manifest.input.to_dict(),
            "sha256": sha, "train_seconds": 0.0}
