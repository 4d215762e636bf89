"""Build-once caches shared by processes: a file lock serialises builders, an atomic rename publishes.

A second process that wants the same artefact waits on the lock, then loads what the first one wrote.
A killed builder leaves only a temp file and a lock that the OS already released (flock), never a half file.
Each checkpoint has a ``.sha256`` file beside it, written after it: a checkpoint without one (a save cut short)
or whose bytes no longer match it is reported with its path and rebuilt, never used.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from ecgbench.atomic import atomic_path, atomic_write_bytes
from ecgbench.digests import file_sha256
from ecgbench.locks import build_once


def checksum_path(path: Path) -> Path:
    return Path(f"{path}.sha256")


def _save(obj: Any, path: Path) -> None:
    """Publish ``obj`` and then its checksum; a failed write (full or read-only disk) names the checkpoint."""
    try:
        with atomic_path(path) as tmp:
            torch.save(obj, tmp)
            digest = file_sha256(tmp)
        atomic_write_bytes(checksum_path(path), digest.encode())
    except OSError as e:
        raise OSError(e.errno, f"cannot write checkpoint {path}: {e.strerror or e}") from e


def _integrity_problem(path: Path) -> str | None:
    if not checksum_path(path).exists():
        return "has no .sha256 file (its save was cut short)"
    if checksum_path(path).read_text().strip() != file_sha256(path):
        return "does not match its .sha256 file (corrupt)"
    return None


def load_checkpoint(path: Path, expected_id: str) -> dict | None:
    """The checkpoint at ``path`` if intact and made for ``expected_id``; None if absent, corrupt or stale.

    A corrupt checkpoint is reported with its path; a stale one (another configuration) is silently replaced.
    """
    if not path.exists():
        return None
    problem = _integrity_problem(path)
    if problem is None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            problem = f"cannot be loaded ({type(e).__name__}: {e})"
    if problem is not None:
        warnings.warn(f"checkpoint {path} {problem}: rebuilding it", stacklevel=2)
        return None
    return ckpt if isinstance(ckpt, dict) and ckpt.get("checkpoint_id") == expected_id else None


def cached_checkpoint(path: Path, checkpoint_id: str, build: Callable[[], dict]) -> tuple[dict, bool]:
    """Load the checkpoint ``checkpoint_id`` from ``path``, building and saving it first if needed.

    Returns (checkpoint, built_here). ``build`` returns a dict of tensors and plain values; its
    ``checkpoint_id`` is set here. Built once per host (a host-local lock); across hosts the atomic rename
    publishes whole files.
    """
    def build_and_save() -> dict:
        ckpt = {**build(), "checkpoint_id": checkpoint_id}
        _save(ckpt, path)
        return ckpt

    return build_once(path, lambda: load_checkpoint(path, checkpoint_id), build_and_save)
