"""Build locks are local to the host, one per target path, exclusive across processes, and leave no file
behind once released."""
import os
import subprocess
import sys
import textwrap

import pytest

from ecgbench.locks import host_lock


def test_a_lock_lives_in_the_local_lock_folder_and_is_one_per_target(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGBENCH_LOCK_DIR", str(tmp_path / "locks"))
    shared = tmp_path / "shared" / "results"
    a, again = host_lock(shared / "a.json"), host_lock(shared / "x" / ".." / "a.json")
    other = host_lock(shared / "b.json")
    assert a.lock_file == again.lock_file != other.lock_file
    assert a.lock_file.startswith(str(tmp_path / "locks")) and "a.json" in a.lock_file
    with a:
        assert not (shared / "a.json.lock").exists() and not list(tmp_path.glob("shared/**/*.lock"))


def test_a_released_lock_removes_its_file_so_the_folder_stays_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGBENCH_LOCK_DIR", str(tmp_path / "locks"))
    for i in range(20):
        with host_lock(tmp_path / f"cell-{i}.json") as lock:
            assert os.path.exists(lock.lock_file)
    assert list((tmp_path / "locks").iterdir()) == []
    with pytest.raises(ValueError):  # released even when the guarded work fails
        with host_lock(tmp_path / "failing.json"):
            raise ValueError("build failed")
    assert list((tmp_path / "locks").iterdir()) == []


def test_a_lock_file_left_by_a_killed_holder_is_taken_over_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGBENCH_LOCK_DIR", str(tmp_path / "locks"))
    lock = host_lock(tmp_path / "a.json")
    open(lock.lock_file, "w").close()  # what a SIGKILLed holder leaves: a file, no flock
    with lock:
        pass
    assert list((tmp_path / "locks").iterdir()) == []


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ecgbench.locks import host_lock
    counter, rounds = Path(sys.argv[1]), int(sys.argv[2])
    for _ in range(rounds):
        with host_lock(counter):  # a read-modify-write that loses counts unless the lock excludes
            value = int(counter.read_text())
            time.sleep(0.0005)
            counter.write_text(str(value + 1))
""")


def test_two_processes_never_hold_one_lock_together_while_its_file_comes_and_goes(tmp_path):
    """Each release unlinks the file another process may have opened and be waiting on: without the inode
    re-check after acquiring, the waiter and a newcomer would both hold the lock and counts would be lost."""
    counter, rounds = tmp_path / "counter", 150
    counter.write_text("0")
    env = {**os.environ, "ECGBENCH_LOCK_DIR": str(tmp_path / "locks")}
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(counter), str(rounds)], env=env)
               for _ in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    assert int(counter.read_text()) == 3 * rounds
    assert list((tmp_path / "locks").iterdir()) == []
