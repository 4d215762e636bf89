"""The measurements of one performance run, and their Markdown rendering (``reports/performance.md``).

The measurements come from a pytest-benchmark JSON file (``ecgbench.perf.readings``); nothing here times.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ecgbench.perf.measure import LoaderStall

COMMAND = "ecgbench perf --measure --json reports/throughput.json --out reports/performance.md"
BENCHMARKS = "throughput"  # the folder of the throughput benchmarks (pytest-benchmark)
EPOCH_SPEEDUP_TARGET = 2.5
RESNET_FRACTION_TARGET = 0.5
STALL_TARGET = 0.05
WORKER_MEMORY_MB = 4096


@dataclass(frozen=True)
class Throughput:
    """Median seconds per batch of one (model, kind, dtype, batch, device), with the FLOPs to judge it by."""

    model: str
    kind: str  # "train" (forward+backward+Adam) or "inference" (forward)
    dtype: str  # "float32", "float64" (the paper's) or "bf16-autocast"
    batch: int
    device: str
    seconds: float
    flops_per_sample: float
    ceiling: float  # FLOP/s of the matching matmul ceiling (float32 on CPU, bf16 on CUDA)
    cpu_share: float | None = None  # CPU time got per wall second and thread while timed; None on a GPU

    @property
    def samples_per_s(self) -> float:
        return self.batch / self.seconds

    @property
    def fraction(self) -> float:
        return self.flops_per_sample * self.samples_per_s / self.ceiling


@dataclass(frozen=True)
class EpochTiming:
    """Seconds of one training epoch (plus its validation pass) over ``records``: ours vs the paper-style one."""

    model: str
    batch: int
    records: int
    device: str
    ours_s: float
    reference_s: float
    cpu_share: float | None = None  # the lower of the two epochs' (see ``Throughput.cpu_share``)
    reference_item_ms: float | None = None  # one paper-style item fetch alone (the O(N) frame filter)

    @property
    def speedup(self) -> float:
        return self.reference_s / self.ours_s


@dataclass
class PerfRun:
    """Everything one run measured, and where and when."""

    date: str
    device_name: str
    torch_version: str
    threads: int
    load_start: float
    load_end: float
    ceilings: dict[str, float]  # e.g. "cpu float32" -> FLOP/s
    throughputs: list[Throughput] = field(default_factory=list)
    epochs: list[EpochTiming] = field(default_factory=list)
    stalls: list[LoaderStall] = field(default_factory=list)
    memory_mb: dict[str, float] = field(default_factory=dict)
    grid_hours: dict[str, float] = field(default_factory=dict)  # device -> hours for the `paper` grid
    minutes: float = 0.0


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _baseline(run: PerfRun, t: Throughput) -> Throughput | None:
    """The paper-style (float64) measurement of the same model, kind, batch and device."""
    return next((b for b in run.throughputs if b.dtype == "float64" and
                 (b.model, b.kind, b.batch, b.device) == (t.model, t.kind, t.batch, t.device)), None)


def _speedup_cell(run: PerfRun, t: Throughput) -> str:
    if t.dtype == "float64":
        return "baseline"
    base = _baseline(run, t)
    return "-" if base is None else f"{base.seconds / t.seconds:.2f}x"


def _row(criterion: str, target: str, measured: str, met: bool) -> str:
    return f"| {criterion} | {target} | {measured} | {'yes' if met else 'NO'} |"


def _criteria(run: PerfRun) -> list[str]:
    """One row per target of the performance issue that this run measured."""
    rows = [_row(f"epoch {e.model} b{e.batch} {e.device}, {e.records} records: speed-up over paper-style",
                 f">= {EPOCH_SPEEDUP_TARGET}x", f"{e.speedup:.2f}x", e.speedup >= EPOCH_SPEEDUP_TARGET)
            for e in run.epochs]
    groups: dict[tuple, list[EpochTiming]] = {}
    for e in sorted(run.epochs, key=lambda e: e.records):
        groups.setdefault((e.model, e.batch, e.device), []).append(e)
    for (model, batch, device), group in groups.items():
        if len(group) > 1:
            rows.append(_row(f"epoch {model} b{batch} {device}: speed-up grows with records", "increasing",
                             " -> ".join(f"{e.speedup:.2f}x" for e in group),
                             all(a.speedup < b.speedup for a, b in zip(group, group[1:]))))
            fetches = [e.reference_item_ms for e in group]
            if None not in fetches:
                rows.append(_row(f"paper-style item fetch {device}: grows with records (O(N) filter)", "increasing",
                                 " -> ".join(f"{ms:.1f} ms" for ms in fetches),
                                 all(a < b for a, b in zip(fetches, fetches[1:]))))
    rows += [_row(f"{t.model} train b{t.batch} {t.device} {t.dtype}: fraction of ceiling",
                  f">= {RESNET_FRACTION_TARGET:.0%}", f"{t.fraction:.0%}", t.fraction >= RESNET_FRACTION_TARGET)
             for t in run.throughputs if t.model.startswith("resnet") and t.kind == "train" and t.dtype != "float64"]
    rows += [_row(f"loader stall {s.model} b{s.batch} {s.device}", f"<= {STALL_TARGET:.0%}", f"{s.stall:+.1%}",
                  s.stall <= STALL_TARGET) for s in run.stalls]
    if run.memory_mb:
        peak = max(run.memory_mb.values())
        rows.append(_row("smoke grid peak RSS per worker", f"<= {WORKER_MEMORY_MB} MiB", f"{peak:.0f} MiB",
                         peak <= WORKER_MEMORY_MB))
    return rows


def _notes(run: PerfRun) -> list[str]:
    gpu = any(name.startswith("cuda") for name in run.ceilings)
    return [
        "- GPU path (`_cuda` benchmarks, CUDA rows here): the engine's bf16 autocast, cuDNN benchmark mode, batches "
        "resident on the GPU for step timings, the engine's own loader for the stall measurement, "
        "`ECGBENCH_COMPILE=1` for `torch.compile`. Channels-last does not apply: the models "
        "use 1-D convolutions on 3-D tensors, which have no channels-last layout."
        + ("" if gpu else " This run had no GPU, so there are no CUDA rows and no GPU estimate of the `paper` grid."),
        "- The float64 (paper-style) train steps are measured at the batches listed in the table only; a `-` in "
        "the speed-up column means no float64 step was measured for that row.",
        "- FLOPs count matmuls and convolutions only (2 per multiply-add), as `torch.utils.flop_counter` does; "
        "element-wise work (BatchNorm, activations, Adam) is real time but no counted FLOPs, so fractions are "
        "conservative.",
    ]


def render(run: PerfRun, command: str = COMMAND) -> str:
    """The report: provenance, the criteria of the performance issue, and one table per measurement.

    ``command`` is the one that regenerates this report (the GPU report is made with other options).
    """
    lines = [
        "# Performance of the train/eval core",
        "",
        f"Regenerate with `{command}`: it waits for a quiet machine, runs the throughput benchmarks with "
        f"pytest-benchmark (`pytest {BENCHMARKS} --benchmark-json JSON`, about {max(1, round(run.minutes))} "
        "minutes here) and renders this report from that file; without `--measure` it only renders. "
        f"`pytest {BENCHMARKS} --benchmark-save=NAME` keeps a run to compare with `--benchmark-compare`.",
        "",
        f"Measured {run.date} on {run.device_name}, torch {run.torch_version}, {run.threads} CPU threads. "
        f"1-minute load average {run.load_start:.2f} when measuring started, {run.load_end:.2f} when it ended "
        f"(counting the run's own {run.threads} threads); the CPU share columns show which rows other processes "
        "slowed down.",
        "",
        "Matmul ceilings (best square `torch.mm`): "
        + ", ".join(f"{name} {flops / 1e9:.1f} GFLOP/s" for name, flops in run.ceilings.items()) + ".",
        "",
        "## Criteria",
        "",
        "| criterion | target | measured | met |",
        "|---|---|---|---|",
        *_criteria(run),
        "",
        "## Throughput per model",
        "",
        "pytest-benchmark's median of several timed rounds after a warm-up step. `train` is the engine's own "
        "`train_step` with its `make_optimiser` (forward, BCE loss, backward, Adam) on a batch already in memory; "
        "`inference` is `predict`'s forward. "
        "GFLOP/sample counts forward+backward for `train` and forward for `inference` (`torch.utils.flop_counter`; "
        "recurrent layers counted analytically because the fused CPU LSTM kernel is invisible to the counter). "
        "Fraction of ceiling is achieved FLOP/s over the run's best float32 matmul ceiling reading (bf16 on CUDA). "
        "Speed-up is over "
        "the same step in float64, as the paper's code runs it. CPU share is the CPU time the measuring process "
        f"got per wall second and thread ({run.threads} threads): 1.00 means no other process took CPU from it, "
        "lower means the row was slowed by other load.",
        "",
        "| model | kind | dtype | batch | samples/s | GFLOP/sample | GFLOP/s | fraction of ceiling | "
        "speed-up over paper-style | CPU share | device | date |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for t in run.throughputs:
        lines.append(f"| {t.model} | {t.kind} | {t.dtype} | {t.batch} | {t.samples_per_s:.1f} | "
                     f"{t.flops_per_sample / 1e9:.3f} | {t.flops_per_sample * t.samples_per_s / 1e9:.1f} | "
                     f"{t.fraction:.0%} | {_speedup_cell(run, t)} | {_fmt(t.cpu_share, '.2f')} | {t.device} | "
                     f"{run.date[:10]} |")
    lines += [
        "",
        "## One epoch: ours vs the paper-style baseline",
        "",
        "Both train one epoch over the same synthetic records from the prepared cache and then validate on the "
        "first 64. Ours: `engine.train.fit` (float32, batches sliced from the memory map). Paper-style "
        "(`ecgbench/perf/reference.py`): a float64 copy of the model, a long pandas frame (1000 rows per record) "
        "filtered per item by `ecg_id`, a default `DataLoader`, per-batch `gc.collect()` (`empty_cache()` on CUDA). "
        "The per-item filter scans the whole frame, so its share grows with the number of records; the item "
        "fetch column times it alone (median of 30 random items). One epoch each, so the float64 compute's "
        "run-to-run noise (about 10 %) can hide the filter's growth in the speed-up column at these sizes.",
        "",
        "| model | batch | records | ours (s) | paper-style (s) | speed-up | paper-style item fetch (ms) | CPU share "
        "| device |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {e.model} | {e.batch} | {e.records} | {e.ours_s:.1f} | {e.reference_s:.1f} | {e.speedup:.2f}x | "
          f"{_fmt(e.reference_item_ms, '.2f')} | {_fmt(e.cpu_share, '.2f')} | {e.device} |" for e in run.epochs],
        "",
        "## Does the loader stall the model?",
        "",
        "Runs of 8 train steps fed by `fit`'s loader (`iter_batches`: sorted fancy index into the memory map, one "
        "copy; on CUDA the next batch is sliced and pinned on a helper thread while the GPU works) alternated with "
        "runs on a batch already on the device; each run timed as `fit` runs it (steps queued, one wait at the "
        "end); medians per step. Stall = loader-fed / in-memory - 1.",
        "",
        "| model | batch | device | loader-fed step (ms) | in-memory step (ms) | loader alone (ms) | stall |",
        "|---|---:|---|---:|---:|---:|---:|",
        *[f"| {s.model} | {s.batch} | {s.device} | {s.loader_step_s * 1e3:.1f} | {s.memory_step_s * 1e3:.1f} | "
          f"{s.batch_only_s * 1e3:.2f} | {s.stall:+.1%} |" for s in run.stalls],
    ]
    if run.memory_mb:
        lines += [
            "",
            "## Peak memory of the smoke grid",
            "",
            "Peak RSS of a fresh process running each model's heaviest smoke cell (pre-train on ptbxl, fine-tune "
            f"on ptb, fraction 1.0), as a pytest-xdist worker would; the budget is {WORKER_MEMORY_MB} MiB per worker.",
            "",
            "| model | peak RSS (MiB) |",
            "|---|---:|",
            *[f"| {model} | {mb:.0f} |" for model, mb in run.memory_mb.items()],
        ]
    if run.grid_hours:
        lines += [
            "",
            "## The `paper` grid, extrapolated",
            "",
            "Every cell, upstream checkpoint and transferability score task of the `paper` profile (100 epochs, "
            "batch 256, three seeds), priced by the one cost model (`ecgbench/cost`: FLOPs x samples of each task; "
            "a score task's forward pass and LogME's Gram matrix) at each model's seconds per FLOP "
            "of its measured batch-256 train step (`ecgbench/perf/grid.py`). Inference and a linear probe's frozen "
            "backbone are priced at the training step's rate per FLOP (inference runs faster per FLOP, so this "
            "leans high); early stopping is ignored.",
            "",
            "| device | hours |",
            "|---|---:|",
            *[f"| {device} | {hours:,.0f} |" for device, hours in run.grid_hours.items()],
        ]
    lines += ["", "## Notes", "", *_notes(run)]
    return "\n".join(lines) + "\n"
