"""Build-once caches shared by processes: a file lock serialises builders, an atomic rename publishes.

A second process that wants the same artefact waits on the lock, then loads what the first one wrote.
A killed builder leaves only a temp file and a lock that the OS already released (flock), never a half file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from filelock import FileLock

from ecgbench.atomic import atomic_path


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path, expected_id: str) -> dict | None:
    """The checkpoint at ``path`` if it loads and carries ``expected_id``; None if absent, corrupt or stale."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    return ckpt if isinstance(ckpt, dict) and ckpt.get("checkpoint_id") == expected_id else None


def cached_checkpoint(path: Path, checkpoint_id: str, build: Callable[[], dict]) -> tuple[dict, bool]:
    """Load the checkpoint ``checkpoint_id`` from ``path``, building and saving it first if needed.

    Returns (checkpoint, built_here). ``build`` returns a dict of tensors and plain values; its
    ``checkpoint_id`` is set here. Safe across processes on one host (the lock file sits beside ``path``).
    """
    found = load_checkpoint(path, checkpoint_id)
    if found is not None:
        return found, False
    with FileLock(str(path) + ".lock"):
        found = load_checkpoint(path, checkpoint_id)
        if found is not None:
            return found, False
        ckpt = {**build(), "checkpoint_id": checkpoint_id}
        _atomic_torch_save(ckpt, path)
        return ckpt, True
