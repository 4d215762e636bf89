"""Saved runs and the compare gate on the controller: ``--ecg-save``/``--ecg-autosave`` keep the records of the
cells a session ran as one run, ``--ecg-compare``/``--ecg-compare-fail`` set them beside a baseline run."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ecgbench.plugin.session import EcgSession

if TYPE_CHECKING:
    from ecgbench.results.compare import Comparison, FailSpec
    from ecgbench.results.runs import SavedRun

SAVED_RUN_PLUGIN = "ecgbench-saved-run"


def add_saved_run_options(group: pytest.OptionGroup) -> None:
    """The options of saved runs and the gate, and ``--ecg-keep-stale`` (which records a leaderboard shows)."""
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
        records = [r for r in self.ecg.records() if r["key"] in ran]
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
