"""The pre-training cache: built once, also when two processes want the same checkpoint at the same time."""
import multiprocessing as mp
import time
from pathlib import Path

import pytest
import torch

from ecgbench.engine.checkpoint import cached_checkpoint, checksum_path, load_checkpoint


def _slow_build(counter: Path):
    def build():
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(1.0)  # long enough that the second process arrives while the first still trains
        return {"state_dict": {"w": torch.arange(3.0)}, "classes": ["A", "B"]}
    return build


def _worker(path: str, counter: str, queue) -> None:
    ckpt, built = cached_checkpoint(Path(path), "id-1", _slow_build(Path(counter)))
    queue.put((built, ckpt["state_dict"]["w"].tolist(), ckpt["classes"]))


def test_two_processes_train_the_checkpoint_once(tmp_path):
    path, counter = tmp_path / "up.pt", tmp_path / "count.txt"
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), str(counter), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert counter.read_text().count("built") == 1
    assert sorted(built for built, _, _ in results) == [False, True]
    assert all(w == [0.0, 1.0, 2.0] and classes == ["A", "B"] for _, w, classes in results)


def test_a_stale_checkpoint_is_rebuilt_not_used(tmp_path):
    path, counter = tmp_path / "up.pt", tmp_path / "count.txt"
    cached_checkpoint(path, "id-1", _slow_build(counter))
    assert load_checkpoint(path, "id-1") is not None
    assert load_checkpoint(path, "id-2") is None  # another id (changed config or data): not reused
    _, built = cached_checkpoint(path, "id-2", _slow_build(counter))
    assert built and counter.read_text().count("built") == 2


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "drop_checksum"])
def test_a_corrupt_checkpoint_is_reported_with_its_path_and_rebuilt(tmp_path, damage):
    path, counter = tmp_path / "up.pt", tmp_path / "count.txt"
    cached_checkpoint(path, "id-1", _slow_build(counter))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:50])
    elif damage == "flip_byte":
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    else:
        checksum_path(path).unlink()
    with pytest.warns(UserWarning, match=f"checkpoint {path} .*rebuilding it"):
        ckpt, built = cached_checkpoint(path, "id-1", _slow_build(counter))
    assert built and ckpt["state_dict"]["w"].tolist() == [0.0, 1.0, 2.0]
    assert load_checkpoint(path, "id-1") is not None
