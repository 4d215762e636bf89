"""Locks that serialise builders on one host only; across hosts, atomic renames keep shared files whole.

Why host-local: ``flock`` on NFS is unreliable or missing, and a cluster run must not depend on it. The lock
file lives in the local temp folder, named after the absolute path it guards, so the xdist workers of one
machine still build a cache entry, checkpoint or cell once; shards on different hosts never share a task
(phases and shards see to that), and if they did, both would publish the same bytes by atomic rename.

The lock file is removed when its lock is released, so the folder holds only the locks held now (and those of
killed holders, removed by the next holder). Removing it is safe because only the holder unlinks, while it
still holds the ``flock``; a waiter that opened the old file before it was unlinked acquires a lock on an
inode the path no longer names, sees that, and starts over on the path's new file.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def lock_dir() -> Path:
    """``$ECGBENCH_LOCK_DIR``, else ``<tmp>/ecgbench-locks-<uid>``: local to the host."""
    configured = os.environ.get("ECGBENCH_LOCK_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"ecgbench-locks-{os.getuid()}"


class HostLock:
    """An exclusive, blocking, non-reentrant ``flock`` on ``lock_file``, which exists only while held."""

    def __init__(self, lock_file: Path) -> None:
        self.lock_file = str(lock_file)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.lock_file}: already held by this lock object")
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                held = os.fstat(fd)
                current = os.stat(self.lock_file)
            except FileNotFoundError:  # the holder we waited for removed the file: lock the path's new one
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                self._fd = fd
                return
            os.close(fd)  # the path names another holder's newer file now

    def release(self) -> None:
        if self._fd is None:
            raise RuntimeError(f"{self.lock_file}: released but not held")
        fd, self._fd = self._fd, None
        try:
            os.unlink(self.lock_file)  # still under the flock: nobody else can hold this inode now
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> "HostLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def host_lock(target: Path) -> HostLock:
    """The lock of whoever builds ``target`` on this host."""
    resolved = str(Path(target).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return HostLock(folder / f"{Path(resolved).name}-{digest}.lock")


def build_once(target: Path, find: Callable[[], T | None], build: Callable[[], T],
               find_again: Callable[[], T | None] | None = None) -> tuple[T, bool]:
    """What ``find`` finds of ``target``, else what ``build`` makes (and publishes), built once per host.

    Check, take the host lock of ``target``, check again (``find_again``, default ``find``: another process may
    have built it while this one waited), build. Returns (value, built_here).
    """
    found = find()
    if found is not None:
        return found, False
    with host_lock(target):
        found = (find_again or find)()
        if found is not None:
            return found, False
        return build(), True
