"""Locks that serialise builders on one host only; across hosts, atomic renames keep shared files whole.

Why host-local: ``flock`` on NFS is unreliable or missing, and a cluster run must not depend on it. The lock
file lives in the local temp folder, named after the absolute path it guards, so the xdist workers of one
machine still build a cache entry, checkpoint or cell once; shards on different hosts never share a task
(phases and shards see to that), and if they did, both would publish the same bytes by atomic rename.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from filelock import FileLock


def lock_dir() -> Path:
    """``$ECGBENCH_LOCK_DIR``, else ``<tmp>/ecgbench-locks-<uid>``: local to the host."""
    configured = os.environ.get("ECGBENCH_LOCK_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"ecgbench-locks-{os.getuid()}"


def host_lock(target: Path) -> FileLock:
    """The lock of whoever builds ``target`` on this host."""
    resolved = str(Path(target).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{Path(resolved).name}-{digest}.lock"))
