"""pytest hooks and fixtures of the study: the options, the session set up in ``pytest_configure``, the
``ecg_cell``/``ecg_pretraining``/``ecg_transferability`` parametrization, and the fixtures that run tasks.

The only place (with the CLI) that reads user options. Under pytest-xdist the workers train cells and write
records; the controller, which sees every test report, writes the leaderboard once (``ecgbench.plugin.session``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import pytest

from ecgbench import progress
from ecgbench.cluster.gpus import cells_per_gpu_here, check_workers, share_machine, visible_gpus
from ecgbench.cluster.phases import PHASES
from ecgbench.cluster.shards import ShardSpec
from ecgbench.options import (
    OptionError,
    add_profile_options,
    add_run_options,
    build_study,
    study_profile,
    study_results_dir,
)
from ecgbench.plugin import hookspecs
from ecgbench.plugin.saved_runs import SAVED_RUN_PLUGIN, SavedRunSession, add_saved_run_options
from ecgbench.plugin.session import (
    CELL_PROPERTY,
    CHECKPOINT_PROPERTY,
    OUTCOME_PROPERTY,
    SCORE_OUTCOME_PROPERTY,
    SCORE_PROPERTY,
    SESSION_PLUGIN,
    SKIP_PROPERTY,
    STATE_KEY,
    EcgSession,
)
from ecgbench.plugin.tasks import parametrize_tasks, register_axis_markers
from ecgbench.results.store import load_records, other_profiles_problem
from ecgbench.runner import RERUN_MODES, CellRunner, checkpoint_file
from ecgbench.study import Cell, Pretraining, Profile, Transferability, default_results_dir

PREFIX = "--ecg-"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ecgbench", "ecgbench transfer-learning study")
    add_profile_options(group.addoption, PREFIX)
    add_run_options(group.addoption, PREFIX)
    group.addoption("--ecg-rerun", choices=RERUN_MODES, default="none",
                    help="re-run stored cells: none (only missing cells run), failed, all")
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
    add_saved_run_options(group)
    group.addoption("--ecg-manifest", type=Path, action="append", default=[], metavar="PATH",
                    help="register the dataset of this manifest TOML (repeatable; see ecgbench data new)")
    group.addoption("--ecg-checkpoint", type=Path, action="append", default=[], metavar="PATH",
                    help="register the checkpoint of this manifest TOML as an upstream (repeatable; see ecgbench "
                         "checkpoint new)")


def _shard_option(text: str) -> ShardSpec:
    try:
        return ShardSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


def _option(config: pytest.Config) -> Callable[[str], object]:
    return lambda name: config.getoption(f"{PREFIX}{name}")


def _project_root(config: pytest.Config) -> Path:
    """A checkout (or any project with a pytest config) keeps reports/ beside it; elsewhere the current folder."""
    return config.rootpath if config.inipath is not None else config.invocation_params.dir


def _resolved_cells_per_gpu(config: pytest.Config, gpus: int) -> int:
    """``--ecg-cells-per-gpu``: as given, or for ``auto`` from the least free device and the largest peak GPU
    memory of a cell among this profile's stored records."""
    option = config.getoption("--ecg-cells-per-gpu")
    if option != "auto":
        return option
    try:
        profile = study_profile(_option(config), PREFIX)  # also before pytest_configure: xdist asks while it starts
    except OptionError as e:
        raise pytest.UsageError(str(e)) from None
    records = load_records(study_results_dir(_option(config), profile, _project_root(config)), profile.name).records
    return cells_per_gpu_here([peak for r in records if (peak := (r.get("environment") or {}).get("peak_gpu_mb"))],
                              gpus)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto --ecg-cells-per-gpu K``: K workers per visible GPU."""
    gpus = visible_gpus()
    if config.getoption("--ecg-cells-per-gpu") is None or gpus < 1:
        return None
    return gpus * _resolved_cells_per_gpu(config, gpus)


def _check_cells_per_gpu(config: pytest.Config) -> None:
    """An explicit ``-n`` must not put more cells on a GPU than ``--ecg-cells-per-gpu`` allows."""
    workers = config.getoption("numprocesses", None)
    if config.getoption("--ecg-cells-per-gpu") is None or not isinstance(workers, int):
        return
    gpus = visible_gpus()
    problem = check_workers(workers, gpus, _resolved_cells_per_gpu(config, gpus)) if gpus else None
    if problem:
        raise pytest.UsageError(problem)


def _register_manifests(config: pytest.Config) -> None:
    """``--ecg-manifest PATH`` and ``--ecg-checkpoint PATH``: a user's datasets and checkpoints, registered
    before the profile names them."""
    from ecgbench.checkpoints import register_checkpoint_file
    from ecgbench.data import register_manifest_file

    for path in config.getoption("--ecg-manifest"):
        try:
            register_manifest_file(path)
        except ValueError as e:
            raise pytest.UsageError(f"--ecg-manifest {path}: {e}") from None
    for path in config.getoption("--ecg-checkpoint"):  # after the datasets: a checkpoint must not shadow one
        try:
            register_checkpoint_file(path)
        except ValueError as e:
            raise pytest.UsageError(f"--ecg-checkpoint {path}: {e}") from None


def _check_results_owner(results_dir: Path, profile: Profile) -> None:
    """A results folder of another profile is a usage error: its records stay, and so do its leaderboard and
    figures, which this run would otherwise replace."""
    problem = other_profiles_problem(results_dir, profile.name)
    if problem:
        raise pytest.UsageError(f"--ecg-results {problem} (the default for {profile.name}: "
                                f"{default_results_dir(Path('.'), profile.name)})")


def pytest_configure(config: pytest.Config) -> None:
    _register_manifests(config)
    workerinput = getattr(config, "workerinput", None)
    try:
        profile, options = build_study(
            _option(config), PREFIX, _project_root(config), rerun=config.getoption("--ecg-rerun"),
            keep_stale=config.getoption("--ecg-keep-stale"),
            fallback_device=(share_machine(workerinput["workerid"], int(workerinput.get("workercount", 1)))
                             if workerinput is not None else None))
    except OptionError as e:
        raise pytest.UsageError(str(e)) from None
    if workerinput is None:
        _check_results_owner(options.results_dir, profile)
    session = EcgSession(profile, options, is_worker=workerinput is not None,
                         phase=config.getoption("--ecg-phase"), shard=config.getoption("--ecg-shard"),
                         measured_costs=config.getoption("--ecg-costs"))
    config.stash[STATE_KEY] = session
    if not session.is_worker:
        _check_cells_per_gpu(config)
    register_axis_markers(config, profile)
    config.pluginmanager.register(session, SESSION_PLUGIN)
    progress.register(config, session.profile, session.tally)
    if not session.is_worker:
        config.pluginmanager.register(SavedRunSession.from_options(config, session), SAVED_RUN_PLUGIN)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_tasks(metafunc, metafunc.config.stash[STATE_KEY].profile)


@pytest.fixture(scope="session")
def ecg_runner(pytestconfig: pytest.Config) -> CellRunner:
    """The study of this session: the selected profile bound to the results, cache and data options; a
    conftest's ``pytest_ecgbench_update_record`` sees each record it writes."""
    state = pytestconfig.stash[STATE_KEY]
    return CellRunner(state.profile, state.options, update_record=pytestconfig.hook.pytest_ecgbench_update_record,
                      on_epoch=progress.epoch_reporter(pytestconfig))


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
    from ecgbench.data import DATASETS, missing_files

    for name in (d for d in datasets if d in DATASETS):  # an upstream that is no dataset has no files
        if (reason := missing_files(name, runner.options.data_root)) is not None:
            pytest.skip(reason)


@pytest.fixture
def ecg_pretrain(ecg_runner: CellRunner, request: pytest.FixtureRequest) -> Callable[[Pretraining], dict]:
    """Train (or load) an upstream checkpoint ahead of the cells that share it.

    Outside the pre-training phase it is skipped when selected tasks start from it and every one reuses its
    stored record: a fresh clone's committed records need no checkpoint (a cell that does trains it on demand).
    Selected alone (``-k pretrain``), it is built.
    """
    def pretrain(pretraining: Pretraining) -> dict:
        _skip_without_files(ecg_runner, pretraining.upstream)
        state = request.config.stash[STATE_KEY]
        users = [t for t in state.selected_tasks if not isinstance(t, Pretraining) and t.pretraining == pretraining]
        if state.phase == "all" and users and not any(ecg_runner.will_train(task) for task in users):
            request.node.user_properties.append((CHECKPOINT_PROPERTY, "skipped"))
            pytest.skip(f"{pretraining.key}: no selected task needs it (each reuses its stored record)")
        checkpoint, built_here = ecg_runner.upstream_checkpoint(pretraining.upstream, pretraining.model,
                                                                pretraining.seed)
        path = checkpoint_file(ecg_runner.options.results_dir, pretraining, ecg_runner.profile)
        this_run = built_here or path.stat().st_mtime >= state.started_at  # a cell on another worker built it
        request.node.user_properties.append((CHECKPOINT_PROPERTY, "trained" if this_run else "reused"))
        return checkpoint
    return pretrain


@pytest.fixture
def ecg_score(ecg_runner: CellRunner, request: pytest.FixtureRequest) -> Callable[[Transferability], dict]:
    """Compute (or reuse) the transferability scores of an upstream checkpoint on a downstream training subset.

    Skipped when its fine-tune cell would be (missing data, real and synthetic data mixed).
    """
    def score(task: Transferability) -> dict:
        _skip_unrunnable(ecg_runner, task.finetune_cell, request)
        request.node.user_properties.append((SCORE_PROPERTY, task.key))
        origin = "trained" if ecg_runner.will_train(task) else "reused"
        record = ecg_runner.transferability(task)
        request.node.user_properties.append((SCORE_OUTCOME_PROPERTY, f"{origin} {record['status']}"))
        return record
    return score
