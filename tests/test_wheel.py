"""The wheel works outside the checkout (issue 12): built from the sources, installed into a throw-away venv, it
runs a cell of the grid (``pytest --pyargs ecgbench.grid``), lists it and reports it from an empty folder, and
describes a user's own array dataset with ``ecgbench data new``.

The venv reuses this environment's installed packages (torch...) through a ``.pth`` file and gets the wheel with
``--no-deps``, so the test takes seconds of install and one tiny cell of training."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROFILE = """[tiny]
description = "one scratch cell"
upstreams = []
downstreams = ["ptb"]
models = ["resnet1d18"]
fractions = [1.0]
regimes = ["scratch"]
seeds = 1
synthetic_records = { ptb = 40 }
pretrain = { epochs = 1, batch_size = 8, lr = 0.001 }
train = { epochs = 1, batch_size = 8, lr = 0.001 }
"""


def _run(args: list, cwd: Path, env: dict) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_wheel_runs_a_cell_from_an_empty_folder(tmp_path):
    source = tmp_path / "src"  # a copy, so that the build's egg-info and build/ never land in the checkout
    for folder in ("ecgbench", "data_manifests"):  # the wheel maps the top-level data_manifests/ into the package
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["ECGBENCH_CACHE"] = str(tmp_path / "cache")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
          source], tmp_path, env)
    wheel = next((tmp_path / "dist").glob("ecgbench_transfer-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    venv_site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                          env).strip())
    (venv_site / "_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch etc., not ecgbench
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], tmp_path, env)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([python, "-c", "import ecgbench, ecgbench.data.manifest as m; print(ecgbench.__file__, "
                                "m.MANIFEST_DIR)"], empty, env)
    assert str(venv_site) in where and str(ROOT) not in where, where
    assert "ecgbench/data/manifests" in where, where
    shipped = _run([python, "-c", "from ecgbench.data.manifest import MANIFEST_DIR as m; "
                                  "print(sorted(p.name for p in m.glob('*.toml')))"], empty, env)
    assert shipped.strip() == str(sorted(p.name for p in (ROOT / "data_manifests").glob("*.toml"))), shipped
    (empty / "tiny.toml").write_text(PROFILE)
    listed = _run([venv / "bin" / "ecgbench", "grid", "--profiles", "tiny.toml", "--profile", "tiny", "--list"],
                  empty, env)
    assert "test_cell[ptb-resnet1d18-f1.0-scratch-s0]" in listed
    out = _run([python, "-m", "pytest", "--pyargs", "ecgbench.grid", "--ecg-profiles", "tiny.toml",
                "--ecg-profile", "tiny", "-q", "-p", "no:cacheprovider"], empty, env)
    assert "1 passed" in out
    assert (empty / "reports" / "tiny" / "results" / "ptb-resnet1d18-f1.0-scratch-s0.json").is_file()
    _run([venv / "bin" / "ecgbench", "report", "--results", "reports/tiny/results", "--out", "again"], empty, env)
    assert "resnet1d18" in (empty / "again" / "leaderboard.md").read_text()
    # a user's own array dataset, described by `ecgbench data new` from the wheel and inspected by `data info`
    (empty / "data" / "mine").mkdir(parents=True)
    np.save(empty / "data" / "mine" / "x.npy", np.random.default_rng(0).normal(size=(20, 2500, 12)).astype(np.float32))
    (empty / "data" / "mine" / "labels.csv").write_text(
        "record,labels\n" + "".join(f"e{i},{'AF' if i % 2 else 'NORM'}\n" for i in range(20)))
    _run([venv / "bin" / "ecgbench", "data", "new", "mine", "--root", "data", "--labels", "data/mine/labels.csv",
          "--format", "array", "--signals", "data/mine/x.npy", "--rate", "250"], empty, env)
    info = _run([venv / "bin" / "ecgbench", "data", "info", "mine", "--root", "data", "--ecg-manifest", "mine.toml"],
                empty, env)
    assert "20 records kept of 20 indexed" in info


def test_the_wheel_lists_every_package_of_the_source():
    """pyproject.toml lists the packages (a mapped one cannot be found): a new package must be listed too."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "ecgbench").rglob("__init__.py")}
    assert on_disk | {"ecgbench.data.manifests"} == listed, f"add to [tool.setuptools] packages: {on_disk - listed}"


def test_a_checkout_reads_the_manifests_from_the_top_level_folder():
    from ecgbench.data.manifest import MANIFEST_DIR

    assert MANIFEST_DIR == ROOT / "data_manifests" and (MANIFEST_DIR / "ptbxl.toml").is_file()
