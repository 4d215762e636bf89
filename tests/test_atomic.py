"""Atomic writes publish whole files with the permissions any ordinary write would give."""
import os
import stat

import pytest

from ecgbench.atomic import atomic_path, atomic_write_bytes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_respects_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "record.json", b"{}")
        with atomic_path(tmp_path / "sub" / "checkpoint.pt") as tmp:  # what torch.save writes into
            with open(tmp, "wb") as f:
                f.write(b"weights")
    finally:
        os.umask(old)
    for path in (tmp_path / "record.json", tmp_path / "sub" / "checkpoint.pt"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert (tmp_path / "record.json").read_bytes() == b"{}"


def test_a_failed_write_leaves_neither_the_file_nor_a_temp_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "record.json") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_the_target_is_an_error_naming_it_and_writes_nothing_beside_it(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a folder, expected a file name: '.*out'"):
        atomic_write_bytes(tmp_path / "out", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any((tmp_path / "out").iterdir())
