"""pytest plugin: study options, the ``ecg_cell`` parametrization, and the leaderboard at session end.

The only place (with the CLI) that reads user options. Under pytest-xdist the workers train cells and write
records; the controller, which sees every test report, writes the leaderboard once in ``pytest_sessionfinish``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pytest

from ecgbench.cluster.gpus import cells_per_gpu, check_workers, worker_device
from ecgbench.cluster.phases import PHASES
from ecgbench.data.prepare import default_cache_dir
from ecgbench.data.root import DataRootError, datasets_in
from ecgbench.cluster.shards import ShardSpec
from ecgbench.results.tally import RunTally, score_outcome
from ecgbench.runner import RERUN_MODES, CellRunner, RunOptions, cell_hyperparameters, pretrain_hyperparameters
from ecgbench.study import (DEFAULT_PROFILE, Cell, Pretraining, Profile, Transferability, default_results_dir,
                            enumerate_cells, enumerate_transferability, get_profile, iter_upstream_needs)

if TYPE_CHECKING:
    from ecgbench.results.compare import Comparison, FailSpec
    from ecgbench.results.runs import SavedRun

CELL_PROPERTY = "ecg_cell"
SCORE_PROPERTY = "ecg_transferability"
Task = Cell | Pretraining | Transferability
OUTCOME_PROPERTY = "ecg_outcome"  # "trained ok", "reused failed", ...: where the cell's record came from
SKIP_PROPERTY = "ecg_skip"  # why a study cell was skipped
SCORE_STATUS_PROPERTY = "ecg_score_status"  # the status of the score record a task wrote


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
        self.selected_tasks: list[Task] = []  # after -k/-m, phase and shard (read by ecgbench submit)
        self.written: list[Path] = []
        self.problems: list[str] = []
        self.summary: str | None = None
        self.scores_summary: str | None = None
        self.stale_note: str | None = None  # how many stale records the leaderboard left out
        self.configuration_note: str | None = None  # how many records of another configuration it left out
        self.dataset_warnings: list[str] = []  # partial copies the run's cells used, every run
        self.errors: list[str] = []  # what went wrong at session end (shown in the ecgbench section, exit non-zero)

    @property
    def cells_run(self) -> list[str]:
        """Keys of the study cells this session started."""
        return self.tally.started

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
        from ecgbench.cost import CostModel, load_measured
        from ecgbench.cluster.phases import phase_tasks, shard_of

        selected = [task_of(item) for item in items]
        tasks = phase_tasks(self.phase, [t for t in selected if isinstance(t, Cell)],
                            [t for t in selected if isinstance(t, Pretraining)],
                            [t for t in selected if isinstance(t, Transferability)])
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
        if report.when == "call" and SCORE_PROPERTY in properties:
            self.tally.scores[properties[SCORE_PROPERTY]] = score_outcome(report.outcome,
                                                                          properties.get(SCORE_STATUS_PROPERTY))

    def _records(self) -> list[dict]:
        """The profile's records of its current configuration (others counted in ``configuration_note``)."""
        from ecgbench.results.configuration import current_configuration
        from ecgbench.results.store import load_records

        loaded = load_records(self.options.results_dir, self.profile.name)
        self.problems = loaded.problems
        records, self.configuration_note = current_configuration(
            loaded.records, lambda r: cell_hyperparameters(self.profile, Cell.from_dict(r["cell"])),
            self.options.keep_stale, "--ecg-keep-stale")
        return records

    def _score_records(self) -> list[dict]:
        from ecgbench.results.configuration import current_configuration
        from ecgbench.results.score_records import load_score_records

        loaded = load_score_records(self.options.results_dir, self.profile.name)
        self.problems += loaded.problems
        return current_configuration(loaded.records, lambda r: pretrain_hyperparameters(self.profile),
                                     self.options.keep_stale, "--ecg-keep-stale")[0]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """The controller (or a plain run) writes the leaderboard from every stored record of the profile.

        Nothing here may raise: a failure (a full or read-only disk, an untrusted results folder) is kept for
        the ecgbench section of the summary and makes the exit status non-zero, so pytest's own summary of
        the cells still prints.
        """
        if self.is_worker or not self.tally.seen:
            return
        from ecgbench.codeid import leaderboard_records
        from ecgbench.results.datasets import partial_copies
        from ecgbench.results.report import build_report, terminal_summary

        try:
            records, scores = self._records(), self._score_records()
            ran = set(self.tally.started)
            self.summary = terminal_summary([r for r in records if r["key"] in ran])
            self.dataset_warnings = partial_copies([r for r in records if r["key"] in ran])
            self.scores_summary = self.tally.score_line()
            if ran or self.tally.scores:
                shown, self.stale_note = leaderboard_records(records, self.options.keep_stale, "--ecg-keep-stale")
                notes = [note for note in (self.stale_note, self.configuration_note) if note]
                notes += [f"this run: {line}" for line in self.tally.lines()]
                self.written = build_report(shown, self.report_dir, notes=notes, score_records=scores)
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
        if self.scores_summary:
            terminalreporter.write_line(self.scores_summary)
        for problem in self.problems:
            terminalreporter.write_line(f"skipped unreadable record: {problem}")
        for note in (self.stale_note, self.configuration_note):
            if note:
                terminalreporter.write_line(note)
        for warning in self.dataset_warnings:
            terminalreporter.write_line(warning, yellow=True)
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


def task_of(item: pytest.Item) -> Task | None:
    """The study task an item runs (a cell, a pre-training or a score task), None for any other test."""
    params = getattr(item, "callspec", None)
    params = params.params if params is not None else {}
    return params.get("ecg_cell", params.get("ecg_pretraining", params.get("ecg_scoring")))


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
    group.addoption("--ecg-cells-per-gpu", type=_cells_per_gpu_option, default=None, metavar="K|auto",
                    help="cells run at once on one GPU (xdist workers per GPU); auto: as many as the free memory "
                         "holds at the largest stored peak of a cell (1 before any was measured); with -n auto, "
                         "K workers per GPU")
    group.addoption("--ecg-phase", choices=PHASES, default="all",
                    help="run only this phase of the selection: pretrain (the checkpoints its cells need), "
                         "scratch, transfer (fine-tune and linear cells), or all (default)")
    group.addoption("--ecg-shard", type=_shard_option, default=None, metavar="K/N",
                    help="run shard K of N (1-based) of the phase, balanced by estimated cost")
    group.addoption("--ecg-costs", type=Path, default=None, metavar="FILE",
                    help="measured seconds per task (written by ecgbench submit) to refine the shard balance")
    _add_saved_run_options(group)
    group.addoption("--ecg-manifest", type=Path, action="append", default=[], metavar="PATH",
                    help="register the dataset of this manifest TOML (repeatable; see ecgbench data new)")


def _shard_option(text: str) -> ShardSpec:
    try:
        return ShardSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _share_machine_between_workers(config: pytest.Config) -> str | None:
    """Under xdist, N workers on C cores each get C/N torch threads, and each its own GPU when there are GPUs."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    import torch

    workers = int(workerinput.get("workercount", 1))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    return worker_device(workerinput["workerid"], _visible_gpus())


def _cells_per_gpu_option(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _resolved_cells_per_gpu(config: pytest.Config, gpus: int) -> int:
    """``--ecg-cells-per-gpu``: as given, or for ``auto`` from the least free device and the largest peak GPU
    memory of a cell among this profile's stored records."""
    option = config.getoption("--ecg-cells-per-gpu")
    if option != "auto":
        return option
    import torch

    from ecgbench.results.store import load_records

    profile = _profile_from_options(config)  # also before pytest_configure: xdist asks while it starts
    peaks = [peak for r in load_records(_results_dir(config, profile), profile.name).records
             if (peak := (r.get("environment") or {}).get("peak_gpu_mb"))]
    free_mb = min(torch.cuda.mem_get_info(i)[0] for i in range(gpus)) / 2**20
    return cells_per_gpu(free_mb, max(peaks, default=None))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto --ecg-cells-per-gpu K``: K workers per visible GPU."""
    gpus = _visible_gpus()
    if config.getoption("--ecg-cells-per-gpu") is None or gpus < 1:
        return None
    return gpus * _resolved_cells_per_gpu(config, gpus)


def _check_cells_per_gpu(config: pytest.Config) -> None:
    """An explicit ``-n`` must not put more cells on a GPU than ``--ecg-cells-per-gpu`` allows."""
    workers = config.getoption("numprocesses", None)
    if config.getoption("--ecg-cells-per-gpu") is None or not isinstance(workers, int):
        return
    gpus = _visible_gpus()
    problem = check_workers(workers, gpus, _resolved_cells_per_gpu(config, gpus)) if gpus else None
    if problem:
        raise pytest.UsageError(problem)


def _profile_from_options(config: pytest.Config) -> Profile:
    seeds = config.getoption("--ecg-seeds")
    if seeds is not None and seeds < 1:
        raise pytest.UsageError("--ecg-seeds must be at least 1")
    try:
        profile = get_profile(config.getoption("--ecg-profile"), config.getoption("--ecg-profiles"))
    except (KeyError, ValueError, OSError) as e:
        raise pytest.UsageError(str(e)) from None
    return profile.with_seeds(seeds) if seeds is not None else profile


def _results_dir(config: pytest.Config, profile: Profile) -> Path:
    """A checkout (or any project with a pytest config) keeps reports/ beside it; elsewhere the current folder."""
    root = config.rootpath if config.inipath is not None else config.invocation_params.dir
    return Path(config.getoption("--ecg-results") or default_results_dir(root, profile.name)).resolve()


def _register_manifests(config: pytest.Config) -> None:
    """``--ecg-manifest PATH``: a user's datasets, registered before the profile names them."""
    from ecgbench.data import register_manifest_file

    for path in config.getoption("--ecg-manifest"):
        try:
            register_manifest_file(path)
        except ValueError as e:
            raise pytest.UsageError(f"--ecg-manifest {path}: {e}") from None


def _check_data_root(config: pytest.Config, profile: Profile) -> None:
    """A mistyped ``--ecg-data`` is a usage error before any cell runs, never a silent run on synthetic data."""
    root = config.getoption("--ecg-data")
    if root is not None:
        try:
            datasets_in(root, (*profile.upstreams, *profile.downstreams))
        except DataRootError as e:
            raise pytest.UsageError(f"--ecg-data {e}") from None


def _check_folders_and_device(config: pytest.Config) -> None:
    """``--ecg-results``/``--ecg-cache`` naming a file, or a ``--ecg-device`` this torch cannot use, is a usage
    error before any cell runs, not a failure repeated in every cell."""
    for option in ("--ecg-results", "--ecg-cache"):
        path = config.getoption(option)
        if path is not None and path.exists() and not path.is_dir():
            raise pytest.UsageError(f"{option} {path}: is a file, not a folder")
    name = config.getoption("--ecg-device")
    if name is not None:
        import torch

        try:
            torch.empty(1, device=name)
        except (RuntimeError, AssertionError) as e:  # torch raises AssertionError for CUDA in a CPU-only build
            raise pytest.UsageError(f"--ecg-device {name}: this torch cannot use it ({str(e).splitlines()[0]}); "
                                    f"devices here: cpu{', cuda' if torch.cuda.is_available() else ''}") from None


def _check_results_owner(results_dir: Path, profile: Profile) -> None:
    """A results folder of another profile is a usage error: its records stay, and so do its leaderboard and
    figures, which this run would otherwise replace."""
    from ecgbench.results.store import other_profiles_problem

    problem = other_profiles_problem(results_dir, profile.name)
    if problem:
        raise pytest.UsageError(f"--ecg-results {problem} (the default for {profile.name}: "
                                f"{default_results_dir(Path('.'), profile.name)})")


def pytest_configure(config: pytest.Config) -> None:
    _register_manifests(config)
    profile = _profile_from_options(config)
    _check_data_root(config, profile)
    _check_folders_and_device(config)
    if not hasattr(config, "workerinput"):
        _check_results_owner(_results_dir(config, profile), profile)
    worker_gpu = _share_machine_between_workers(config)
    options = RunOptions(results_dir=_results_dir(config, profile),
                         cache_dir=(config.getoption("--ecg-cache") or default_cache_dir()).resolve(),
                         data_root=config.getoption("--ecg-data"),
                         device=config.getoption("--ecg-device") or worker_gpu,
                         rerun=config.getoption("--ecg-rerun"), keep_stale=config.getoption("--ecg-keep-stale"))
    session = EcgSession(profile, options, is_worker=hasattr(config, "workerinput"),
                         phase=config.getoption("--ecg-phase"), shard=config.getoption("--ecg-shard"),
                         measured_costs=config.getoption("--ecg-costs"))
    config.stash[STATE_KEY] = session
    if not session.is_worker:
        _check_cells_per_gpu(config)
    _register_axis_markers(config, profile)
    config.pluginmanager.register(session, SESSION_PLUGIN)
    if not session.is_worker:
        config.pluginmanager.register(SavedRunSession.from_options(config, session), SAVED_RUN_PLUGIN)


def axis_markers(task: Task) -> list[str]:
    """One marker per axis value of a task, so that ``-m`` selects any axis exactly (``-m to_ptb`` is PTB alone)
    and ``-k`` can name a transfer direction (``-k "from_ptbxl and to_cpsc2018"``; ``->`` is no ``-k`` syntax)."""
    if isinstance(task, Pretraining):
        return ["pretrain", f"from_{task.upstream}", f"model_{task.model}", f"seed_{task.seed}"]
    if isinstance(task, Transferability):
        return ["transferability", f"from_{task.upstream}", f"to_{task.downstream}", f"model_{task.model}",
                f"seed_{task.seed}"]
    source = [f"from_{task.upstream}"] if task.upstream else []
    return [*source, f"to_{task.downstream}", f"model_{task.model}", task.regime, f"seed_{task.seed}"]


def _register_axis_markers(config: pytest.Config, profile: Profile) -> None:
    """Declare every axis marker of the profile (``--strict-markers`` accepts only declared ones)."""
    cells, scores = enumerate_cells(profile), enumerate_transferability(profile)
    names = {name for task in (*cells, *scores, *iter_upstream_needs([*cells, *scores])) for name in axis_markers(task)}
    for name in sorted(names):
        config.addinivalue_line("markers", f"{name}: ecgbench study axis value (selects tasks with -m or -k)")


def _params(tasks: list[Cell] | list[Pretraining] | list[Transferability]) -> list:
    return [pytest.param(task, id=task.key, marks=[getattr(pytest.mark, name) for name in axis_markers(task)])
            for task in tasks]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ecg_cell" in metafunc.fixturenames:
        cells = enumerate_cells(metafunc.config.stash[STATE_KEY].profile)
        metafunc.parametrize("ecg_cell", _params(cells))
    if "ecg_pretraining" in metafunc.fixturenames:
        profile = metafunc.config.stash[STATE_KEY].profile
        needs = list(iter_upstream_needs([*enumerate_cells(profile), *enumerate_transferability(profile)]))
        metafunc.parametrize("ecg_pretraining", _params(needs))
    if "ecg_scoring" in metafunc.fixturenames:
        scores = enumerate_transferability(metafunc.config.stash[STATE_KEY].profile)
        metafunc.parametrize("ecg_scoring", _params(scores))


@pytest.fixture(scope="session")
def ecg_runner(pytestconfig: pytest.Config) -> CellRunner:
    """The study of this session: the selected profile bound to the results, cache and data options."""
    state = pytestconfig.stash[STATE_KEY]
    return CellRunner(state.profile, state.options)


@pytest.fixture
def ecg_run(ecg_runner: CellRunner, request: pytest.FixtureRequest) -> Callable[[Cell], dict]:
    """Run (or reuse) a cell and mark the test as a study cell, so that the controller reports it.

    A cell without its data, or whose upstream and downstream data differ in kind (real vs synthetic), is
    skipped, never run.
    """
    def run(cell: Cell) -> dict:
        _skip_unrunnable(ecg_runner, cell, request)
        request.node.user_properties.append((CELL_PROPERTY, cell.key))
        outcome = ecg_runner.execute(cell)
        request.node.user_properties.append((OUTCOME_PROPERTY, f"{outcome.origin} {outcome.record['status']}"))
        return outcome.record
    return run


def _skip_unrunnable(runner: CellRunner, cell: Cell, request: pytest.FixtureRequest) -> None:
    """Skip a cell (or the score task of its fine-tune cell) whose data are missing or would mix real and
    synthetic data, saying why (the run's tally counts the reasons); unreadable data are not skipped: the run
    records the failure with its cause."""
    try:
        _skip_without_files(runner, cell.upstream, cell.downstream)
        try:
            mixed = runner.mixed_sources(cell)
        except Exception:
            mixed = None
        if mixed:
            pytest.skip(mixed)
    except pytest.skip.Exception as skip:
        request.node.user_properties.append((SKIP_PROPERTY, str(skip.msg).removeprefix(f"{cell.key}: ")))
        raise


def _skip_without_files(runner: CellRunner, *datasets: str | None) -> None:
    """Skip (never fail) a task on a dataset that has neither files nor a synthetic stand-in, naming the folder."""
    from ecgbench.data import missing_files

    for name in filter(None, datasets):
        if (reason := missing_files(name, runner.options.data_root)) is not None:
            pytest.skip(reason)


@pytest.fixture
def ecg_pretrain(ecg_runner: CellRunner) -> Callable[[Pretraining], dict]:
    """Train (or load) an upstream checkpoint: the pre-training phase of a cluster run."""
    def pretrain(need: Pretraining) -> dict:
        _skip_without_files(ecg_runner, need.upstream)
        return ecg_runner.upstream_checkpoint(*need)[0]
    return pretrain


@pytest.fixture
def ecg_score(ecg_runner: CellRunner, request: pytest.FixtureRequest) -> Callable[[Transferability], dict]:
    """Compute (or reuse) the transferability scores of an upstream checkpoint on a downstream training subset.

    Skipped when its fine-tune cell would be (missing data, real and synthetic data mixed).
    """
    def score(task: Transferability) -> dict:
        _skip_unrunnable(ecg_runner, task.finetune_cell, request)
        request.node.user_properties.append((SCORE_PROPERTY, task.key))
        record = ecg_runner.transferability(task)
        request.node.user_properties.append((SCORE_STATUS_PROPERTY, record["status"]))
        return record
    return score


# --- saved runs and the comparison gate (issue 13) -----------------------------------------------------------

SAVED_RUN_PLUGIN = "ecgbench-saved-run"


def _add_saved_run_options(group: pytest.OptionGroup) -> None:
    group.addoption("--ecg-keep-stale", action="store_true",
                    help="reuse records made by other result-affecting code instead of re-running them, and "
                         "include them in the leaderboard (default: re-run them; the leaderboard leaves them out)")
    group.addoption("--ecg-save", default=None, metavar="NAME",
                    help="at session end, save the records of the cells this session ran as "
                         "<runs>/<machine>/NNNN_NAME.json")
    group.addoption("--ecg-autosave", action="store_true",
                    help="like --ecg-save, named after the commit and the time (commit_YYYYmmddTHHMMSS[_dirty])")
    group.addoption("--ecg-runs", type=Path, default=None, metavar="DIR",
                    help="folder of saved runs (default: .ecgbench/runs in the working folder)")
    group.addoption("--ecg-compare", default=None, metavar="RUN",
                    help="compare this session's cells with RUN (a saved run's number, name or NNNN_name, a saved-run "
                         "file or a results folder) in the terminal summary")
    group.addoption("--ecg-compare-fail", default=None, metavar="METRIC:DELTA",
                    help="with --ecg-compare: fail the session when a cell's interval of METRIC (this run minus "
                         "RUN) lies wholly below -DELTA, e.g. f1_weighted:0.02, or when a pair is refused")


class SavedRunSession:
    """``--ecg-save``/``--ecg-autosave`` and ``--ecg-compare``/``--ecg-compare-fail`` on the controller.

    At session end the records of the cells this session ran (on any xdist worker) are saved as one run,
    then compared with the baseline run, loaded at start so that a bad name fails before any training.
    """

    def __init__(self, ecg: EcgSession, runs_root: Path, save: str | None, autosave: bool,
                 baseline: SavedRun | None = None, metrics: tuple[str, ...] = (), gate: FailSpec | None = None) -> None:
        self.ecg, self.runs_root, self.save, self.autosave = ecg, runs_root, save, autosave
        self.baseline, self.metrics, self.gate = baseline, metrics, gate
        self.saved: SavedRun | None = None
        self.comparison: Comparison | None = None
        self.failures: list[str] = []
        self.problems: list[str] = []

    @classmethod
    def from_options(cls, config: pytest.Config, ecg: EcgSession) -> "SavedRunSession":
        """Check the options (a usage error names what is wrong) and load the baseline run."""
        from ecgbench.results.compare import DEFAULT_METRICS, CompareError, parse_fail_spec
        from ecgbench.results.runs import DEFAULT_RUNS_DIR, RunError, check_name, resolve_run

        save, autosave = config.getoption("--ecg-save"), config.getoption("--ecg-autosave")
        against, fail = config.getoption("--ecg-compare"), config.getoption("--ecg-compare-fail")
        runs_root = Path(config.getoption("--ecg-runs") or DEFAULT_RUNS_DIR).resolve()
        if save and autosave:
            raise pytest.UsageError("--ecg-save and --ecg-autosave: choose one")
        if fail and not against:
            raise pytest.UsageError("--ecg-compare-fail needs --ecg-compare RUN (the run to compare with)")
        try:
            if save:
                check_name(save)
            gate = parse_fail_spec(fail) if fail else None
            baseline = resolve_run(against, runs_root) if against else None
        except (RunError, CompareError) as e:
            raise pytest.UsageError(f"--ecg-save/--ecg-compare: {e}") from None
        metrics = tuple(dict.fromkeys([*DEFAULT_METRICS, *([gate.metric] if gate else [])]))
        return cls(ecg, runs_root, save, autosave, baseline, metrics, gate)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not (self.save or self.autosave or self.baseline):
            return
        if not self.ecg.cells_run:  # say so: a gate must not pass, nor a save look done, on a session of no cell
            self.problems.append("this session ran no cell: nothing was saved or compared")
            if self.gate:
                from ecgbench.results.compare import NO_CELL_COMPARED

                self.failures = [NO_CELL_COMPARED]
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
        from ecgbench.results.compare import CompareError, compare, gate_failures
        from ecgbench.results.runs import RunError, SavedRun, autosave_name, save_run

        ran = set(self.ecg.cells_run)
        records = [r for r in self.ecg._records() if r["key"] in ran]
        try:
            this_run = SavedRun("session", records, str(self.ecg.options.results_dir))
            if self.save or self.autosave:
                this_run = self.saved = save_run(this_run, self.save or autosave_name(), self.runs_root)
            if self.baseline is not None:
                self.comparison = compare(self.baseline, this_run, self.metrics)
                self.failures = gate_failures(self.comparison, self.gate) if self.gate else []
        except (RunError, CompareError) as e:
            self.problems.append(str(e))
        if self.failures or self.problems:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.saved is None and self.comparison is None and not self.problems:
            return
        from ecgbench.results.compare import terminal_table

        terminalreporter.section("ecgbench saved runs")
        if self.saved is not None:
            terminalreporter.write_line(f"saved {len(self.saved.records)} cells as run {self.saved.label}: "
                                        f"{self.saved.path}")
        if self.comparison is not None:
            terminalreporter.write_line(terminal_table(self.comparison))
        for problem in self.problems:
            terminalreporter.write_line(f"error: {problem}", red=True)
        if self.failures:
            terminalreporter.write_line(f"FAILED --ecg-compare-fail {self.gate.metric}:{self.gate.delta:g} "
                                        f"({len(self.failures)} cells):", red=True, bold=True)
            for line in self.failures:
                terminalreporter.write_line(f"  {line}", red=True)
