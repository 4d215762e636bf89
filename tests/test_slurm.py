"""``ecgbench submit`` against a real one-node Slurm (``scripts/slurm-cluster.sh start``, which ``.ci/run``
calls); skipped where no Slurm accepts jobs."""
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from record_factory import untagged

ROOT = Path(__file__).parents[1]


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None:
        return False
    return subprocess.run(["bash", str(ROOT / "scripts" / "slurm-cluster.sh"), "status"], capture_output=True,
                          timeout=30).returncode == 0


pytestmark = pytest.mark.skipif(not _slurm_up(), reason="no Slurm cluster (bash scripts/slurm-cluster.sh start)")


def submit(results: Path, cache: Path, selection: str, *extra: str) -> dict[str, list[str]]:
    """Run ``ecgbench submit`` and return the job ids it printed per phase."""
    cmd = [sys.executable, "-m", "ecgbench", "submit", "--executor", "slurm", "--time-min", "20", *extra, "--",
           "--ecg-profile", "smoke", "--ecg-results", str(results), "--ecg-cache", str(cache), "-k", selection]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return {m[1]: m[2].split() for m in re.finditer(r"^submitted (\w+): (.+)$", out.stdout, re.M)}


def queued(job_ids: list[str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %T", "-j", ",".join(job_ids)], capture_output=True, text=True)
    return out.stdout.split("\n") if out.stdout.strip() else []


def wait_until_gone(job_ids: list[str], timeout: float = 400) -> None:
    """Poll squeue (submitit's ``result()`` waits forever on a cancelled job when accounting is off)."""
    deadline = time.monotonic() + timeout
    while queued(job_ids):
        assert time.monotonic() < deadline, f"jobs still queued after {timeout} s: {queued(job_ids)}"
        time.sleep(1)


def records(results: Path) -> dict[str, dict]:
    return {untagged(p): json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}


def test_two_shards_after_the_pretrain_phase_complete_the_selection(tmp_path, data_cache):
    results = tmp_path / "results"
    # scratch + fine-tune + linear from cpsc2018 and georgia, on ptb, one model, one fraction: 5 cells
    selection = "ptb and not ptbxl and gru and f0.05"
    jobs = submit(results, data_cache, selection, "--shards", "2")
    assert set(jobs) == {"pretrain", "scratch", "transfer"} and len(jobs["pretrain"]) == 2
    wait_until_gone([j for ids in jobs.values() for j in ids])
    done = records(results)
    assert len(done) == 5 and all(r["status"] == "ok" for r in done.values()), {k: r["error"] for k, r in done.items()}
    assert sorted(untagged(p) for p in (results / "checkpoints").glob("*.pt")) == ["cpsc2018-gru-s0",
                                                                                  "georgia-gru-s0"]
    assert not any(r["timing"]["pretrain_built_here"] for r in done.values())  # the pretrain phase built them


def test_a_cancelled_shard_resubmitted_reruns_only_its_missing_cells(tmp_path, data_cache):
    results = tmp_path / "results"
    # fine-tune from cpsc2018 or georgia, two fractions, onto the four other downstreams: 12 cells
    selection = "lstm and not bilstm and finetune and not ptbxl and (f0.05 or f0.25)"
    jobs = submit(results, data_cache, selection, "--shards", "1")
    wait_until_gone(jobs["pretrain"])
    transfer = jobs["transfer"]
    deadline = time.monotonic() + 300
    while not list(results.glob("*.json")):
        assert queued(transfer) and time.monotonic() < deadline, "the shard ended before it could be cancelled"
        time.sleep(0.2)
    subprocess.run(["scancel", *transfer], check=True)
    wait_until_gone(transfer, timeout=60)
    before = records(results)
    checkpoints = sorted((results / "checkpoints").glob("*.pt"))
    mtimes = [p.stat().st_mtime_ns for p in checkpoints]
    assert [untagged(p) for p in checkpoints] == ["cpsc2018-lstm-s0", "georgia-lstm-s0"]
    assert 1 <= len(before) < 12, "the cancelled shard should have stored some of its cells, not all"

    again = submit(results, data_cache, selection, "--shards", "1", "--only", "transfer:1")
    assert list(again) == ["transfer"]
    wait_until_gone(again["transfer"])
    after = records(results)
    assert len(after) == 12 and all(r["status"] == "ok" for r in after.values())
    assert all(after[key] == record for key, record in before.items())  # finished cells were not retrained
    assert [p.stat().st_mtime_ns for p in checkpoints] == mtimes  # nor were the checkpoints
