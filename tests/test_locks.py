"""Build locks are local to the host: never beside a shared file, one per target path."""
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
