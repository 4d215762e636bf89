"""What the terminal says while a study runs, without ``-v``: the task in flight and its epoch, tasks done and
left with an ETA, checkpoints built or waited for; at the end what each kind of task did and the slowest cells.

It reads only what the controller sees anyway: the start and the report of every test (xdist forwards both).
The epoch of a cell in flight on an xdist worker comes through a small file per worker in a folder the
controller hands to its workers (``ecg_progress`` in ``workerinput``), read at the next event; in a plain run
the runner's epoch callback reaches the reporter directly. The ETA prices the tasks left with the cost model's
work per task (samples trained and inferred, ``ecgbench.cost.task_work``) at the seconds per unit of work
measured on this run's trained tasks of the same kind, model and dataset (else model, else all), divided by
the tasks seen running at once. Not FLOPs: counting a model's FLOPs costs seconds of CPU that the run itself
needs. What each finished task did it reads from the run's ``RunTally`` (filled by the plugin, which knows its
report properties), the count the ecgbench section reads too.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Callable

import pytest

from ecgbench.atomic import atomic_write_bytes
from ecgbench.cost import TRAIN_OVER_FORWARD, grid_tasks, task_work
from ecgbench.results.tally import RunTally
from ecgbench.study import Cell, Pretraining, Profile, Transferability

WORKER_INPUT = "ecg_progress"
STUDY_TESTS = ("test_pretrain", "test_cell", "test_transferability")  # the grid's test functions
SLOWEST = 3


def task_key(nodeid: str) -> str | None:
    """The study task key in a test id, ``...::test_cell[KEY]`` -> ``KEY``; None for any other test."""
    name, bracket, rest = nodeid.rpartition("::")[2].partition("[")
    return rest[:-1] if bracket and rest.endswith("]") and name in STUDY_TESTS else None


def format_seconds(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _rate_levels(task: Cell | Pretraining | Transferability) -> tuple[tuple, ...]:
    """The groups whose measured rate prices ``task``, closest first: its kind, model and dataset; its model; all.
    The cost model sizes a dataset from its manifest, so a partial or enlarged copy puts the work of all its
    tasks off by one factor, which a rate measured on that dataset's own tasks cancels (a pre-training on a
    300-record slice of PTB-XL must not price cells on a 400-record dataset)."""
    dataset = task.upstream if isinstance(task, Pretraining) else task.downstream
    return (type(task).__name__, task.model, dataset), (task.model,), ()


class EpochFile:
    """A worker's side: each epoch of its task in flight, written to ``folder/<worker>.json``."""

    def __init__(self, folder: Path, worker: str) -> None:
        self.path = Path(folder) / f"{worker}.json"

    def __call__(self, key: str, epoch: int, epochs: int) -> None:
        try:
            atomic_write_bytes(self.path, json.dumps({"task": key, "epoch": epoch, "epochs": epochs}).encode())
        except OSError:
            pass  # progress is for people: a full disk must not fail the cell (the record says what matters)


class RunProgress:
    """The controller's view of a run: planned tasks, tasks in flight; finished ones are the tally's."""

    def __init__(self, profile: Profile, write: Callable[[str], None], tally: RunTally) -> None:
        self.profile, self.write, self.tally = profile, write, tally
        self.planned: list[str] = []
        self.running: list[str] = []  # keys of the tasks in flight, in start order
        self.epochs: dict[str, tuple[int, int]] = {}  # key -> (epoch, max epochs)
        self.epoch_folder: Path | None = None
        self.parallel = 1  # the most tasks seen running at once
        self._tasks: dict | None = None
        self._work: dict[str, float] = {}
        self._quiet_reuses = 0

    # -- events -------------------------------------------------------------------------------------------
    def plan(self, nodeids: list[str]) -> None:
        if not self.planned:
            self.planned = [key for nodeid in nodeids if (key := task_key(nodeid)) is not None]

    def started(self, nodeid: str) -> None:
        key = task_key(nodeid)
        if key is None:
            return
        self.running.append(key)
        self.parallel = max(self.parallel, len(self.running))
        need = self._pretraining_of(key)
        if isinstance(self._task(key), Pretraining):
            self.write(f"ecgbench {self._status()}: checkpoint {key}: built now if a selected task needs it; "
                       "cells starting from it wait for it")
        elif need is not None and need.key in self.running:
            self.write(f"ecgbench {self._status()}: {key} starts while checkpoint {need.key} is prepared: it "
                       "waits if that one is being built")

    def epoch(self, key: str, epoch: int, epochs: int) -> None:
        """A plain run's epoch callback: one line per epoch of the task in flight."""
        self.epochs[key] = (epoch, epochs)
        self.write(f"ecgbench {self._status()}: {key}: epoch {epoch}/{epochs}")

    def reported(self, report: pytest.TestReport) -> None:
        """A study task's line at its teardown report, when the tally has what its earlier reports said."""
        key = task_key(report.nodeid)
        if report.when != "teardown" or key not in self.tally.tasks:
            return
        if key in self.running:
            self.running.remove(key)
        self.epochs.pop(key, None)
        ended = self.tally.tasks[key]
        if ended.origin == "reused":
            self._quiet_reuses += 1
            return
        reused = f" (and {self._quiet_reuses} reused from stored records)" if self._quiet_reuses else ""
        self._quiet_reuses = 0
        what = "checkpoint " if ended.kind == "checkpoint" else "score task " if ended.kind == "score" else ""
        self.write(f"ecgbench {self._status()}: {what}{key}: {ended.outcome}"
                   f"{f' in {format_seconds(ended.seconds)}' if ended.seconds else ''}{reused}{self._in_flight()}")

    # -- status -----------------------------------------------------------------------------------------
    def _task(self, key: str):
        if self._tasks is None:
            self._tasks = {task.key: task for task in grid_tasks(self.profile)}
        return self._tasks.get(key)

    def _pretraining_of(self, key: str) -> Pretraining | None:
        task = self._task(key)
        return None if task is None or isinstance(task, Pretraining) else task.pretraining

    def work(self, key: str) -> float:
        """The task's work in forward passes of one sample (a training step counts ``TRAIN_OVER_FORWARD``),
        computed once per task: the ETA of every progress line reads it for all tasks."""
        if key not in self._work:
            task = self._task(key)
            work = task_work(self.profile, task) if task is not None else None
            self._work[key] = 0.0 if work is None else work.train_samples * TRAIN_OVER_FORWARD + work.infer_samples
        return self._work[key]

    def eta(self) -> float | None:
        """Seconds left: each unfinished task's work at the seconds per unit of work measured on trained tasks
        like it (``_rate_levels``), over the tasks that run at once; None before any task trained."""
        spent, done = defaultdict(float), defaultdict(float)
        for key, ended in self.tally.tasks.items():
            if ended.origin == "trained" and (task := self._task(key)) is not None and (work := self.work(key)):
                for level in _rate_levels(task):
                    spent[level] += ended.seconds
                    done[level] += work
        if not done:
            return None

        def rate(task) -> float:
            level = next(level for level in _rate_levels(task) if level in done)
            return spent[level] / done[level]
        left = [key for key in self.planned if key not in self.tally.tasks and self._task(key) is not None]
        return sum(self.work(k) * rate(self._task(k)) for k in left) / self.parallel

    def _status(self) -> str:
        done, total = len(self.tally.tasks), len(self.planned) or len(self.tally.tasks)
        eta = self.eta()
        return (f"[{done}/{total} done, {max(0, total - done)} left, "
                f"ETA {format_seconds(eta) if eta is not None else 'after the first trained task'}]")

    def _in_flight(self) -> str:
        self._read_epoch_files()
        if not self.running:
            return ""
        shown = [key + (f" (epoch {self.epochs[key][0]}/{self.epochs[key][1]})" if key in self.epochs else "")
                 for key in self.running]
        return "; running: " + ", ".join(shown)

    def _read_epoch_files(self) -> None:
        if self.epoch_folder is None:
            return
        for path in self.epoch_folder.glob("*.json"):
            try:
                found = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced right now: the next event reads it
            if found.get("task") in self.running:
                self.epochs[found["task"]] = (found["epoch"], found["epochs"])

    # -- the end ----------------------------------------------------------------------------------------
    def summary_lines(self) -> list[str]:
        """What each kind of task did, and the slowest trained cells."""
        lines = []
        for kind, label in (("cell", "cells"), ("checkpoint", "checkpoints"), ("score", "score tasks")):
            if counts := self.tally.count(kind):
                lines.append(f"{label}: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
        slow = sorted(((ended.seconds, key) for key, ended in self.tally.tasks.items()
                       if ended.kind == "cell" and ended.origin == "trained"), reverse=True)[:SLOWEST]
        if slow:
            lines.append("slowest cells: " + ", ".join(f"{key} {format_seconds(s)}" for s, key in slow))
        return lines


class ProgressPlugin:
    """The pytest side of ``RunProgress`` on the controller (or a plain run)."""

    def __init__(self, config: pytest.Config, profile: Profile, tally: RunTally) -> None:
        self.config = config
        self.progress = RunProgress(profile, self._write, tally)

    def _write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():  # inside a test too
            if getattr(reporter._tw, "width_of_current_line", 0):  # after -q's dots: a line of its own
                reporter.write("\n")
            reporter.write_line(line)

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        lines = self.progress.summary_lines()
        if lines:
            terminalreporter.section("ecgbench run")
            for line in lines:
                terminalreporter.write_line(line)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.plan([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        self.progress.plan(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        if self.progress.epoch_folder is None:
            self.progress.epoch_folder = Path(tempfile.mkdtemp(prefix="ecgbench-progress-"))
        node.workerinput[WORKER_INPUT] = str(self.progress.epoch_folder)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.progress.started(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.progress.reported(report)

    def pytest_unconfigure(self) -> None:
        if self.progress.epoch_folder is not None:
            shutil.rmtree(self.progress.epoch_folder, ignore_errors=True)


def epoch_reporter(config: pytest.Config) -> Callable[[str, int, int], None] | None:
    """The runner's epoch callback: a file for the controller on an xdist worker, the reporter in a plain run."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        folder = workerinput.get(WORKER_INPUT)
        return EpochFile(Path(folder), workerinput["workerid"]) if folder else None
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin.progress.epoch if plugin is not None else None


PLUGIN_NAME = "ecgbench-progress"


def register(config: pytest.Config, profile: Profile, tally: RunTally) -> None:
    """Register the progress reporter of the run's ``tally`` on the controller or a plain run (never on an xdist
    worker)."""
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ProgressPlugin(config, profile, tally), PLUGIN_NAME)
