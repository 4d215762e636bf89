"""pytest plugin: study options, the ``ecg_cell`` parametrization, and the leaderboard at session end.

The only place (with the CLI) that reads user options. Under pytest-xdist the workers train cells and write
records; the controller, which sees every test report, writes the leaderboard once in ``pytest_sessionfinish``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

import pytest

from ecgbench.cluster.phases import PHASES
from ecgbench.data.prepare import default_cache_dir
from ecgbench.data.root import DataRootError, datasets_in
from ecgbench.cluster.shards import ShardSpec
from ecgbench.results.tally import RunTally
from ecgbench.runner import RERUN_MODES, CellRunner, RunOptions
from ecgbench.study import (DEFAULT_PROFILE, Cell, Pretraining, Profile, enumerate_cells, get_profile,
                            iter_upstream_needs)

CELL_PROPERTY = "ecg_cell"
OUTCOME_PROPERTY = "ecg_outcome"  # "trained ok", "reused failed", ...: where the cell's record came from
SKIP_PROPERTY = "ecg_skip"  # why a study cell was skipped


class EcgSession:
    """Per-session state, registered as a plugin object (the pytest-benchmark pattern)."""

    def __init__(self, profile: Profile, options: RunOptions, is_worker: bool, phase: str = "all",
                 shard: ShardSpec | None = None, measured_costs: Path | None = None) -> None:
        self.profile = profile
        self.options = options
        self.phase = phase
        self.shard = shard
        self.measured_costs = measured_costs
        self.report_dir = options.results_dir.parent
        self.is_worker = is_worker
        self.tally = RunTally(options.results_dir)
        self.selected_tasks: list[Cell | Pretraining] = []  # after -k/-m, phase and shard (read by ecgbench submit)
        self.written: list[Path] = []
        self.problems: list[str] = []
        self.summary: str | None = None
        self.errors: list[str] = []  # what went wrong at session end (shown in the ecgbench section, exit non-zero)

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]):
        """After ``-k``/``-m`` have selected cells, keep the tasks of ``--ecg-phase`` and ``--ecg-shard``.

        The pre-training phase also takes back the pre-training cases ``-k`` left out: it runs what the
        selected cells need. Items that are no study task are dropped under a phase or a shard.
        """
        everything = list(items)
        result = yield
        if self.phase == "all" and self.shard is None:
            self.selected_tasks = [task for item in items if (task := task_of(item)) is not None]
            return result
        from ecgbench.cluster.cost import CostModel, load_measured
        from ecgbench.cluster.phases import phase_tasks, shard_of

        selected = [task_of(item) for item in items]
        tasks = phase_tasks(self.phase, [t for t in selected if isinstance(t, Cell)],
                            [t for t in selected if isinstance(t, Pretraining)])
        if self.shard is not None:
            try:
                measured = load_measured(self.measured_costs) if self.measured_costs else None
            except ValueError as e:
                raise pytest.UsageError(f"--ecg-costs: {e}") from None
            tasks = shard_of(tasks, self.shard, CostModel(self.profile, measured))
        wanted = {task.key for task in tasks}
        kept = [item for item in everything if (task := task_of(item)) is not None and task.key in wanted]
        kept_ids = {id(item) for item in kept}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept_ids])
        _undo_deselection(config, kept)
        items[:] = kept
        self.selected_tasks = [task_of(item) for item in kept]
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Seen by the controller for every worker's test: which study cells ran, were reused or were skipped."""
        properties = dict(report.user_properties)
        if report.when == "call" and CELL_PROPERTY in properties:
            key = properties[CELL_PROPERTY]
            self.tally.started.append(key)
            if OUTCOME_PROPERTY in properties:
                self.tally.outcomes[key] = tuple(properties[OUTCOME_PROPERTY].split())
        if report.skipped and SKIP_PROPERTY in properties:
            self.tally.skipped[report.nodeid] = properties[SKIP_PROPERTY]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The controller (or a plain run) writes the leaderboard from every stored record of the profile.

        Nothing here may raise: a failure (a full or read-only disk, an untrusted results folder) is kept for
        the ecgbench section of the summary and makes the exit status non-zero, so pytest's own summary of
        the cells still prints.
        """
        if self.is_worker or not self.tally.seen:
            return
        from ecgbench.results.report import build_report, terminal_summary
        from ecgbench.results.store import load_records

        try:
            loaded = load_records(self.options.results_dir, self.profile.name)
            self.problems = loaded.problems
            ran = set(self.tally.started)
            self.summary = terminal_summary([r for r in loaded.records if r["key"] in ran])
            if self.tally.started:
                self.written = build_report(loaded.records, self.report_dir, run_lines=self.tally.lines())
        except Exception as error:  # reported in the summary section instead of a traceback that hides it
            self.errors.append(f"the leaderboard was not written: {type(error).__name__}: {error}")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.is_worker or not self.tally.seen:
            return
        terminalreporter.section("ecgbench")
        if self.summary:
            terminalreporter.write_line(self.summary)
        for line in self.tally.lines():
            terminalreporter.write_line(line)
        for problem in self.problems:
            terminalreporter.write_line(f"skipped unreadable record: {problem}")
        for path in self.written:
            terminalreporter.write_line(f"wrote {path}")
        for error in self.errors:
            terminalreporter.write_line(f"error: {error}", red=True, bold=True)


STATE_KEY = pytest.StashKey[EcgSession]()
SESSION_PLUGIN = "ecgbench-session"  # the name other code finds this session's state by, without importing us


def _undo_deselection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Take ``items`` (pre-trainings that ``-k`` had left out) off the terminal's deselected count."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and "deselected" in reporter.stats:
        back = {id(item) for item in items}
        reporter.stats["deselected"] = [item for item in reporter.stats["deselected"] if id(item) not in back]


def task_of(item: pytest.Item) -> Cell | Pretraining | None:
    """The study task an item runs (a cell or a pre-training), None for any other test."""
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    return params.get("ecg_cell", params.get("ecg_pretraining"))


def default_results_dir(root: Path, profile: str) -> Path:
    """``reports/results`` for the main profile, ``reports/<profile>/results`` for the others."""
    base = Path(root) / "reports"
    return base / "results" if profile == DEFAULT_PROFILE else base / profile / "results"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ecgbench", "ecgbench transfer-learning study")
    group.addoption("--ecg-profile", default=DEFAULT_PROFILE, help="profile of profiles.toml (default: %(default)s)")
    group.addoption("--ecg-profiles", type=Path, default=None, metavar="FILE",
                    help="a TOML file of your own profiles instead of the packaged profiles.toml")
    group.addoption("--ecg-results", type=Path, default=None,
                    help="results directory (default: reports/results, or reports/<profile>/results)")
    group.addoption("--ecg-data", type=Path, default=None, help="folder with one sub-folder per real dataset")
    group.addoption("--ecg-seeds", type=int, default=None, help="number of seeds (default: the profile's)")
    group.addoption("--ecg-cache", type=Path, default=None,
                    help="cache of generated/prepared data (default: $ECGBENCH_CACHE or ~/.cache/ecgbench)")
    group.addoption("--ecg-rerun", choices=RERUN_MODES, default="none",
                    help="re-run stored cells: none (only missing cells run), failed, all")
    group.addoption("--ecg-device", default=None, help="torch device (default: cuda when present, else cpu)")
    group.addoption("--ecg-phase", choices=PHASES, default="all",
                    help="run only this phase of the selection: pretrain (the checkpoints its cells need), "
                         "scratch, transfer (fine-tune and linear cells), or all (default)")
    group.addoption("--ecg-shard", type=_shard_option, default=None, metavar="K/N",
                    help="run shard K of N (1-based) of the phase, balanced by estimated cost")
    group.addoption("--ecg-costs", type=Path, default=None, metavar="FILE",
                    help="measured seconds per task (written by ecgbench submit) to refine the shard balance")


def _shard_option(text: str) -> ShardSpec:
    try:
        return ShardSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def worker_device(worker_id: str, visible_gpus: int) -> str | None:
    """Round-robin GPU of an xdist worker ("gw3" -> cuda:3 % visible); None without GPUs.

    ``visible_gpus`` is what torch sees, so ``CUDA_VISIBLE_DEVICES`` is respected.
    """
    if visible_gpus < 1 or not worker_id.startswith("gw"):
        return None
    return f"cuda:{int(worker_id[2:]) % visible_gpus}"


def _share_machine_between_workers(config: pytest.Config) -> str | None:
    """Under xdist, N workers on C cores each get C/N torch threads, and each its own GPU when there are GPUs."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    import torch

    workers = int(workerinput.get("workercount", 1))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return worker_device(workerinput["workerid"], gpus)


def _profile_from_options(config: pytest.Config) -> Profile:
    seeds = config.getoption("--ecg-seeds")
    if seeds is not None and seeds < 1:
        raise pytest.UsageError("--ecg-seeds must be at least 1")
    try:
        profile = get_profile(config.getoption("--ecg-profile"), config.getoption("--ecg-profiles"))
    except (KeyError, ValueError, OSError) as e:
        raise pytest.UsageError(str(e)) from None
    return profile.with_seeds(seeds) if seeds is not None else profile


def _check_data_root(config: pytest.Config, profile: Profile) -> None:
    """A mistyped ``--ecg-data`` is a usage error before any cell runs, never a silent run on synthetic data."""
    root = config.getoption("--ecg-data")
    if root is not None:
        try:
            datasets_in(root, (*profile.upstreams, *profile.downstreams))
        except DataRootError as e:
            raise pytest.UsageError(f"--ecg-data {e}") from None


def pytest_configure(config: pytest.Config) -> None:
    profile = _profile_from_options(config)
    _check_data_root(config, profile)
    worker_gpu = _share_machine_between_workers(config)
    results = config.getoption("--ecg-results") or default_results_dir(config.rootpath, profile.name)
    options = RunOptions(results_dir=Path(results).resolve(),
                         cache_dir=(config.getoption("--ecg-cache") or default_cache_dir()).resolve(),
                         data_root=config.getoption("--ecg-data"),
                         device=config.getoption("--ecg-device") or worker_gpu,
                         rerun=config.getoption("--ecg-rerun"))
    session = EcgSession(profile, options, is_worker=hasattr(config, "workerinput"),
                         phase=config.getoption("--ecg-phase"), shard=config.getoption("--ecg-shard"),
                         measured_costs=config.getoption("--ecg-costs"))
    config.stash[STATE_KEY] = session
    _register_axis_markers(config, profile)
    config.pluginmanager.register(session, SESSION_PLUGIN)


def axis_markers(task: Cell | Pretraining) -> list[str]:
    """One marker per axis value of a task, so that ``-m`` selects any axis exactly (``-m to_ptb`` is PTB alone)
    and ``-k`` can name a transfer direction (``-k "from_ptbxl and to_cpsc2018"``; ``->`` is no ``-k`` syntax)."""
    if isinstance(task, Pretraining):
        return ["pretrain", f"from_{task.upstream}", f"model_{task.model}", f"seed_{task.seed}"]
    source = [f"from_{task.upstream}"] if task.upstream else []
    return [*source, f"to_{task.downstream}", f"model_{task.model}", task.regime, f"seed_{task.seed}"]


def _register_axis_markers(config: pytest.Config, profile: Profile) -> None:
    """Declare every axis marker of the profile (``--strict-markers`` accepts only declared ones)."""
    cells = enumerate_cells(profile)
    names = {name for task in (*cells, *iter_upstream_needs(cells)) for name in axis_markers(task)}
    for name in sorted(names):
        config.addinivalue_line("markers", f"{name}: ecgbench study axis value (selects tasks with -m or -k)")


def _params(tasks: list[Cell] | list[Pretraining]) -> list:
    return [pytest.param(task, id=task.key, marks=[getattr(pytest.mark, name) for name in axis_markers(task)])
            for task in tasks]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ecg_cell" in metafunc.fixturenames:
        cells = enumerate_cells(metafunc.config.stash[STATE_KEY].profile)
        metafunc.parametrize("ecg_cell", _params(cells))
    if "ecg_pretraining" in metafunc.fixturenames:
        needs = list(iter_upstream_needs(enumerate_cells(metafunc.config.stash[STATE_KEY].profile)))
        metafunc.parametrize("ecg_pretraining", _params(needs))


@pytest.fixture(scope="session")
def ecg_runner(pytestconfig: pytest.Config) -> CellRunner:
    """The study of this session: the selected profile bound to the results, cache and data options."""
    state = pytestconfig.stash[STATE_KEY]
    return CellRunner(state.profile, state.options)


@pytest.fixture
def ecg_run(ecg_runner: CellRunner, request: pytest.FixtureRequest) -> Callable[[Cell], dict]:
    """Run (or reuse) a cell and mark the test as a study cell, so that the controller reports it.

    A cell whose upstream and downstream data differ in kind (real vs synthetic) is skipped, never run.
    """
    def run(cell: Cell) -> dict:
        try:
            mixed = ecg_runner.mixed_sources(cell)
        except Exception:  # unreadable data: ``run`` records the failure with its cause
            mixed = None
        if mixed:
            request.node.user_properties.append((SKIP_PROPERTY, mixed.removeprefix(f"{cell.key}: ")))
            pytest.skip(mixed)
        request.node.user_properties.append((CELL_PROPERTY, cell.key))
        outcome = ecg_runner.execute(cell)
        request.node.user_properties.append((OUTCOME_PROPERTY, f"{outcome.origin} {outcome.record['status']}"))
        return outcome.record
    return run


@pytest.fixture
def ecg_pretrain(ecg_runner: CellRunner) -> Callable[[Pretraining], dict]:
    """Train (or load) an upstream checkpoint: the pre-training phase of a cluster run."""
    def pretrain(need: Pretraining) -> dict:
        return ecg_runner.upstream_checkpoint(*need)[0]
    return pretrain
