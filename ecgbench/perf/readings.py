"""A run of the throughput benchmarks, read back from pytest-benchmark's ``--benchmark-json`` file.

Why: pytest-benchmark is the one timing harness; the report renders what it measured rather than timing
again. Each benchmark states what it measured in ``extra_info`` (``case`` names the measurement, plus the
model, batch, device and its readings: FLOPs per sample, the matmul ceiling, CPU share, epoch records, loader
stall, peak memory); ``throughput/conftest.py`` adds the run's facts (torch, threads, device names, load
average) to ``machine_info["ecgbench"]`` through ``run_facts``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ecgbench.perf.grid import grid_seconds
from ecgbench.perf.machine import load_average
from ecgbench.perf.measure import LoaderStall
from ecgbench.perf.report import EpochTiming, PerfRun, Throughput
from ecgbench.provenance import device_name
from ecgbench.study import Profile

CASES = ("train", "inference", "epoch", "reference_epoch", "loader_stall", "memory")
FACTS = ("torch", "threads", "device_names", "load_start", "load_end", "minutes")


def run_facts(started: float, load_start: float) -> dict[str, Any]:
    """What ``machine_info["ecgbench"]`` holds: when and where the run measured, and how busy the machine was."""
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "device_names": {d.type: device_name(d) for d in devices},
            "load_start": load_start, "load_end": load_average(), "minutes": (time.time() - started) / 60}


def _field(bench: dict, key: str) -> Any:
    try:
        return bench["extra_info"][key]
    except KeyError:
        raise ValueError(f"benchmark {bench.get('fullname', bench.get('name'))!r}: extra_info has no {key!r}") from None


def _median(bench: dict) -> float:
    stats = bench.get("stats") or {}
    if not isinstance(stats.get("median"), (int, float)) or stats["median"] <= 0:
        raise ValueError(f"benchmark {bench.get('fullname', bench.get('name'))!r} has no positive median time "
                         "(was it run with --benchmark-disable?)")
    return float(stats["median"])


def _load(path: Path) -> tuple[dict, list[dict]]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read a pytest-benchmark JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    facts = (data.get("machine_info") or {}).get("ecgbench")
    if not isinstance(facts, dict):
        raise ValueError(f"{path}: machine_info has no 'ecgbench' facts: was it written by `pytest throughput "
                         "--benchmark-json FILE`?")
    missing = [key for key in FACTS if key not in facts] + (["datetime"] if "datetime" not in data else [])
    if missing:
        raise ValueError(f"{path}: the run's facts lack {missing}")
    benches = [b for b in data["benchmarks"] if (b.get("extra_info") or {}).get("case") is not None]
    for bench in benches:
        if bench["extra_info"]["case"] not in CASES:
            raise ValueError(f"{path}: benchmark {bench.get('fullname')!r} has unknown case "
                             f"{bench['extra_info']['case']!r} (known: {', '.join(CASES)})")
        _median(bench)  # a benchmark that did not time (--benchmark-disable) has no readings either
    return data, benches


def _by_case(benches: list[dict], case: str) -> list[dict]:
    return [b for b in benches if b["extra_info"]["case"] == case]


def _throughputs(benches: list[dict], ceilings: dict[str, float]) -> list[Throughput]:
    """Train and inference rows; each device's best ceiling reading of the run applies to all its rows."""
    rows = [b for b in benches if b["extra_info"]["case"] in ("train", "inference")]
    best: dict[str, float] = {}
    for b in rows:
        device = _field(b, "device")
        best[device] = max(best.get(device, 0.0), float(_field(b, "ceiling_gflops")) * 1e9)
        ceilings[f"{device} {_field(b, 'ceiling_dtype')}"] = best[device]
    return [Throughput(_field(b, "model"), _field(b, "case"), _field(b, "dtype"), int(_field(b, "batch")),
                       _field(b, "device"), _median(b), float(_field(b, "flops_per_sample")),
                       best[_field(b, "device")], b["extra_info"].get("cpu_share")) for b in rows]


def _epochs(benches: list[dict]) -> list[EpochTiming]:
    """Our epoch next to the paper-style one of the same model, batch, records and device."""
    def key(b: dict) -> tuple:
        return _field(b, "model"), int(_field(b, "batch")), int(_field(b, "records")), _field(b, "device")

    references = {key(b): b for b in _by_case(benches, "reference_epoch")}
    rows = []
    for ours in _by_case(benches, "epoch"):
        ref = references.get(key(ours))
        if ref is None:
            continue
        shares = [s for s in (ours["extra_info"].get("cpu_share"), ref["extra_info"].get("cpu_share")) if s is not None]
        rows.append(EpochTiming(*key(ours), _median(ours), _median(ref), min(shares) if shares else None,
                                ref["extra_info"].get("item_fetch_ms")))
    return rows


def _grid_hours(profile: Profile, rows: list[Throughput], names: dict[str, str]) -> dict[str, float]:
    """Hours of ``profile``'s grid per device whose train steps cover all its models at its batch size."""
    hours = {}
    for device in sorted({t.device for t in rows}):
        steps = {t.model: t.seconds for t in rows if t.device == device and t.kind == "train"
                 and t.batch == profile.train.batch_size and t.dtype != "float64"}
        if set(profile.models) <= set(steps):
            hours[names.get(device, device)] = grid_seconds(profile, steps) / 3600
    return hours


def load_run(path: Path, grid_profile: Profile) -> PerfRun:
    """The report's measurements from a pytest-benchmark JSON file; ``grid_profile``'s grid is extrapolated."""
    data, benches = _load(path)
    facts = data["machine_info"]["ecgbench"]
    ceilings: dict[str, float] = {}
    throughputs = _throughputs(benches, ceilings)
    names = facts["device_names"]
    return PerfRun(
        date=data["datetime"], device_name=", ".join(names.values()), torch_version=facts["torch"],
        threads=facts["threads"],
        load_start=facts["load_start"], load_end=facts["load_end"], ceilings=ceilings, throughputs=throughputs,
        epochs=_epochs(benches),
        stalls=[LoaderStall(_field(b, "model"), int(_field(b, "batch")), _field(b, "device"),
                            _field(b, "loader_step_s"), _field(b, "memory_step_s"), _field(b, "loader_alone_s"))
                for b in _by_case(benches, "loader_stall")],
        memory_mb={_field(b, "model"): float(_field(b, "peak_rss_mb")) for b in _by_case(benches, "memory")},
        grid_hours=_grid_hours(grid_profile, throughputs, names), minutes=facts["minutes"])
