"""Atomic publication of files and folders: readers see the old one or the whole new one, never a part.

The temp file is created like any ordinary file (``open`` with mode 0666 less the umask), not with
``mkstemp``'s 0600: a record or checkpoint in a shared results folder must be as readable as the user's
other files.
"""
from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _disk_full(path: Path, error: OSError) -> bool:
    """Whether ``error`` writing ``path`` means the disk (or the user's quota) is full."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if error.errno is None:  # numpy's short write ("720000 requested and 262112 written") has no errno
        folder = next((p for p in Path(path).parents if p.exists()), Path("."))
        try:
            return shutil.disk_usage(folder).free < 1 << 20
        except OSError:
            return False
    return False


def describe_write_error(path: Path, error: OSError) -> str:
    """``path: No space left on device (ENOSPC, the disk is full)``: the file meant, not the temp file, the
    errno's name, and in plain words when the disk is full."""
    name = errno.errorcode.get(error.errno, "") if error.errno else ""
    notes = [name] if name else []
    if _disk_full(path, error):
        notes.append("the disk is full")
    return f"{path}: {error.strerror or error}" + (f" ({', '.join(notes)})" if notes else "")


@contextmanager
def naming_write_errors(path: Path, what: str) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as one naming ``what`` and ``path`` (the file meant, where the
    library's message names a temp file or nothing: torch's "unexpected pos", numpy's "N requested")."""
    try:
        yield
    except OSError as e:
        message = f"cannot write {what} {describe_write_error(path, e)}"
        raise (OSError(e.errno, message) if e.errno is not None else OSError(message)) from e


def _create_temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s folder with a unique name; its mode follows the umask."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # 48 random bits: practically never
            continue


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is fsynced and renamed onto ``path``, else removed."""
    path = Path(path)
    if path.is_dir():  # else the temp file lands in its parent and the rename fails naming the temp file
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_beside(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def replace_folder(tmp: Path, out: Path) -> None:
    """Publish the finished folder ``tmp`` as ``out`` by one rename; a (broken) folder already at ``out`` is
    first moved aside and deleted, so readers never see a mix of the two."""
    if out.exists():
        broken = Path(tempfile.mkdtemp(prefix=f".{out.name}.broken.", dir=out.parent))
        os.replace(out, broken / "entry")
        shutil.rmtree(broken, ignore_errors=True)
    os.replace(tmp, out)
