"""The README walkthrough "does my pre-trained model help on my data?" at a useful size, timed: what an extra
input spec costs to prepare, and what a given checkpoint's cells cost beside those of a dataset upstream (which
pre-trains first). Writes OUT/walkthrough-costs.md (the numbers and the leaderboard's excerpt) and leaves the
run's reports under OUT/reports/walkthrough/.

The user's package is tests/thirdparty (``tinycnn250``, 250 Hz x 8 s, and its checkpoint ``demo_ssl``); the user's
data are demo_down's WFDB records (``--records``); PTB-XL is the real slice of the shared samples (``--samples``).

    .venv/bin/python -m pip install --no-deps --target /tmp/demo ./tests/thirdparty
    PYTHONPATH=/tmp/demo .venv/bin/python scripts/walkthrough-costs.py OUT [--records 400] [--seeds 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import ecgbench_demo_ext as demo
import torch

from ecgbench.data import open_dataset
from ecgbench.inputs import DEFAULT_INPUT
from ecgbench.models import model_input
from ecgbench.results.score_records import load_score_records
from ecgbench.results.store import load_records

MODEL = "tinycnn250"
PROFILE = """[walkthrough]
description = "does my pre-trained model help on my data? (scripts/walkthrough-costs.py)"
upstreams = ["demo_ssl", "ptbxl", "random"]
downstreams = ["demo_down"]
models = ["{model}"]
fractions = [0.1, 0.25, 1.0]
regimes = ["scratch", "finetune", "linear"]
seeds = {seeds}
synthetic_records = {{ ptbxl = 2000 }}
pretrain = {{ epochs = 10, batch_size = 32, lr = 0.003 }}
train = {{ epochs = 20, batch_size = 32, lr = 0.003, patience = 5 }}
"""
SECTIONS = ("## When does fine-tuning beat scratch?", "## Downstream: demo_down", "## Pre-trained vs random features",
            "## Transferability scores", "## Overlap")  # the leaderboard's sections the excerpt keeps


def write_data(root: Path, records: int, samples: Path) -> None:
    demo.write_records(root / "demo_up", ("A", "B", "C"), 60, 1, with_split=False)  # what demo_ssl was trained on
    demo.write_records(root / "demo_down", ("A", "C"), records, 2, with_split=True)
    if not (samples / "ptbxl" / "ptbxl_database.csv").is_file():
        sys.exit(f"{samples}/ptbxl: the real PTB-XL slice is needed (give --samples)")
    (root / "ptbxl").symlink_to((samples / "ptbxl").resolve(), target_is_directory=True)


def timed(name: str, cache: Path, root: Path | None, spec, synthetic: int | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    ds = open_dataset(name, synthetic_records=synthetic, cache_dir=cache, data_root=root, spec=spec)
    return time.perf_counter() - started, len(ds.split)


def prepare_costs(root: Path, cache: Path) -> list[tuple]:
    """Per dataset: the manifest's own input (first, from the files), the model's spec on top of it (the extra
    cost), and reading both again from the cache."""
    spec, rows = model_input(MODEL), []
    for name, data_root, synthetic in (("ptbxl", root, None), ("demo_down", root, None),
                                       ("ptbxl", None, 2000)):
        base, n = timed(name, cache, data_root, DEFAULT_INPUT, synthetic)
        extra, _ = timed(name, cache, data_root, spec, synthetic)
        again = timed(name, cache, data_root, DEFAULT_INPUT, synthetic)[0] + timed(name, cache, data_root, spec,
                                                                                    synthetic)[0]
        source = "synthetic stand-in" if synthetic else "real files"
        rows.append((f"{name} ({source}, {n} records)", base, extra, again))
    return rows


def run_grid(out: Path, root: Path, seeds: int) -> float:
    (out / "walkthrough.toml").write_text(PROFILE.format(model=MODEL, seeds=seeds))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pyargs", "ecgbench.grid",
                    "--ecg-profiles", "walkthrough.toml", "--ecg-profile", "walkthrough", "--ecg-data", str(root),
                    "--ecg-cache", str(out / "cache")], cwd=out, check=True)
    return time.perf_counter() - started


def cell_costs(results: Path) -> dict[str, dict[str, float]]:
    """Seconds per upstream ("" for scratch) from the records: cell training, pre-training (once per seed, as
    the checkpoint's train time), transferability score tasks. Read through the store, so a bad record stops
    the report instead of being counted."""
    cells, scores = load_records(results), load_score_records(results)
    if cells.problems or scores.problems:
        sys.exit("\n".join(cells.problems + scores.problems))
    costs: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    pretrain_by_seed: dict[tuple[str, int], float] = {}
    for record in cells.records:
        upstream = record["cell"]["upstream"] or ""
        costs[upstream]["cells"] += 1
        costs[upstream]["train_s"] += record["timing"]["train_s"]
        if upstream:
            pretrain_by_seed[upstream, record["cell"]["seed"]] = record["timing"]["pretrain_s"]
    for (upstream, _), seconds in pretrain_by_seed.items():
        costs[upstream]["pretrain_s"] += seconds
    for record in scores.records:
        costs[record["upstream"]]["scores_s"] += record["timing"]["wall_s"]
    return costs


def report(prepare: list[tuple], costs: dict, wall: float, board: str, command: str) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, one process"
    lines = [f"# Walkthrough costs ({time.strftime('%Y-%m-%d')})", "", f"`{command}` on {machine}", "",
             f"## Preparing an extra input spec ({model_input(MODEL).describe()}, beside "
             f"{DEFAULT_INPUT.describe()})", "",
             "| dataset | manifest's input, first prepare (s) | extra spec on top (s) | both read from the cache (s) |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {base:.2f} | {extra:.2f} | {again:.3f} |" for name, base, extra, again in prepare]
    lines += ["", f"## The grid's tasks by upstream (whole run {wall:.0f} s wall, one process)", "",
              "| upstream | cells | cell training (s) | pre-training (s) | transferability scores (s) |",
              "|---|---|---|---|---|"]
    for upstream in sorted(costs, key=lambda u: (u != "", u)):
        c = costs[upstream]
        lines.append(f"| {upstream or '(scratch)'} | {c['cells']:.0f} | {c['train_s']:.1f} | "
                     f"{c.get('pretrain_s', 0.0):.1f} | {c.get('scores_s', 0.0):.2f} |")
    lines += ["", "## Leaderboard excerpt (headings one level down)", ""]
    lines += [section(board, heading) for heading in SECTIONS]
    return "\n".join(lines)


def section(board: str, heading: str) -> str:
    """The leaderboard's section whose heading starts with ``heading``, up to the next section."""
    start = board.index("\n" + heading) + 1
    end = board.find("\n## ", start + 1)
    return "#" + board[start:end if end != -1 else None].strip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="an empty or new folder")
    parser.add_argument("--records", type=int, default=400, help="demo_down's record count")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "ecg-samples")
    args = parser.parse_args()
    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: the costs are of a first run")
    root = out / "data"
    write_data(root, args.records, args.samples)
    prepare = prepare_costs(root, out / "prepare-cache")
    wall = run_grid(out, root, args.seeds)
    board = (out / "reports" / "walkthrough" / "leaderboard.md").read_text()
    costs = cell_costs(out / "reports" / "walkthrough" / "results")
    command = f"scripts/walkthrough-costs.py OUT --records {args.records} --seeds {args.seeds}"
    text = report(prepare, costs, wall, board, command)
    (out / "walkthrough-costs.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
