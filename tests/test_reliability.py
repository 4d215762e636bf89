"""Runs survive SIGKILL, concurrent processes and corrupt stored state without losing or corrupting a result."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecgbench.results.store import read_record

ROOT = Path(__file__).parents[1]
# Two upstreams x two downstreams, one model, fine-tune at the smallest fraction: 4 cells, 2 checkpoints.
OVERLAPPING = "resnet1d18 and f0.05 and finetune and (ptb or code_test) and not ptbxl"


def pytest_cmd(results: Path, cache: Path, selection: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "test_grid.py"), "-q", "-p", "no:cacheprovider",
            "--ecg-profile", "smoke", "--ecg-results", str(results), "--ecg-cache", str(cache), "-k", selection,
            *extra]


def run(results: Path, cache: Path, selection: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(pytest_cmd(results, cache, selection, *extra), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def records(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}


def comparable(record: dict) -> dict:
    """What must be identical between two runs of a cell: everything but timings, dates, process facts and the
    digest over them."""
    return {k: v for k, v in record.items() if k not in ("timing", "created", "environment", "history",
                                                              "content_sha256")} | {
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]}


def test_a_killed_run_resumes_to_the_same_numbers_as_an_uninterrupted_one(tmp_path, data_cache):
    selection = "ptb and not ptbxl and resnet1d18 and (f0.25 or f1) and (scratch or cpsc2018)"
    clean = run(tmp_path / "clean", data_cache, selection)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(pytest_cmd(killed_dir, data_cache, selection), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list(killed_dir.glob("*.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before_kill = set(records(killed_dir))
    assert 1 <= len(finished_before_kill) < len(records(tmp_path / "clean"))

    resumed = run(killed_dir, data_cache, selection)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for path in killed_dir.glob("*.json"):
        read_record(path)  # every published record is whole (a killed writer leaves only an ignored .tmp)
    clean_records, resumed_records = records(tmp_path / "clean"), records(killed_dir)
    assert set(clean_records) == set(resumed_records)
    for stem in clean_records:
        assert comparable(resumed_records[stem]) == comparable(clean_records[stem]), stem


def test_parallel_workers_train_each_upstream_checkpoint_exactly_once(tmp_path, data_cache):
    result = run(tmp_path / "r", data_cache, OVERLAPPING, "-n", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    recs = records(tmp_path / "r")
    assert len(recs) == 4
    built = [r["cell"]["upstream"] for r in recs.values() if r["timing"]["pretrain_built_here"]]
    assert sorted(built) == ["cpsc2018", "georgia"]


def test_two_pytest_processes_on_one_results_directory(tmp_path, data_cache):
    results = tmp_path / "shared"
    procs = [subprocess.Popen(pytest_cmd(results, data_cache, OVERLAPPING), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    recs = records(results)
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs.values())
    built = [r["cell"]["upstream"] for r in recs.values() if r["timing"]["pretrain_built_here"]]
    assert sorted(built) == ["cpsc2018", "georgia"]  # the second process waited and loaded, never retrained


def test_a_truncated_record_is_reported_and_its_cell_rerun(tmp_path, data_cache):
    selection = "ptb-gru-f0.05-scratch-s0"
    assert run(tmp_path / "r", data_cache, selection).returncode == 0
    path = tmp_path / "r" / "ptb-gru-f0.05-scratch-s0.json"
    good = json.loads(path.read_text())
    path.write_text(path.read_text()[:100])
    again = run(tmp_path / "r", data_cache, selection, "-W", "always")
    assert again.returncode == 0, again.stdout
    assert f"re-running ptb-gru-f0.05-scratch-s0: {path}: unreadable result record" in again.stdout
    assert comparable(json.loads(path.read_text())) == comparable(good)
