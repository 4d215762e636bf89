"""The session object of the study (the pytest-benchmark pattern): registered in ``pytest_configure``, it keeps
the phase/shard selection, tallies what each study task did from the test reports (the controller under xdist sees
every worker's reports) and writes the leaderboard once in ``pytest_sessionfinish``."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from ecgbench.cluster.shards import ShardSpec
from ecgbench.plugin.tasks import split_by_kind, task_of
from ecgbench.progress import task_key
from ecgbench.results.configuration import current_configuration
from ecgbench.results.datasets import partial_copies
from ecgbench.results.leaderboard import rebuild_leaderboard
from ecgbench.results.score_records import load_score_records
from ecgbench.results.store import load_records
from ecgbench.results.tally import RunTally, TaskOutcome, score_outcome
from ecgbench.runner import RunOptions, cell_hyperparameters, pretrain_hyperparameters
from ecgbench.study import Cell, Profile, Task

CELL_PROPERTY = "ecg_cell"
SCORE_PROPERTY = "ecg_transferability"
OUTCOME_PROPERTY = "ecg_outcome"  # "trained ok", "reused failed", ...: where the cell's record came from
SKIP_PROPERTY = "ecg_skip"  # why a study cell (or its score task) was skipped
CHECKPOINT_PROPERTY = "ecg_checkpoint"  # "trained", "reused" or "skipped": what a pre-training case did
SCORE_OUTCOME_PROPERTY = "ecg_score_outcome"  # "trained ok", "reused failed", ...: its last word the record's status
# grid test (progress.STUDY_TESTS) -> (kind, the property a cell or score task reports once past its skip checks,
# the property of its outcome); a checkpoint is never "started": nothing of it goes into this run's records
TASK_KINDS = {"test_pretrain": ("checkpoint", None, CHECKPOINT_PROPERTY),
              "test_cell": ("cell", CELL_PROPERTY, OUTCOME_PROPERTY),
              "test_transferability": ("score", SCORE_PROPERTY, SCORE_OUTCOME_PROPERTY)}


def task_outcome(report: pytest.TestReport) -> tuple[str, TaskOutcome] | None:
    """(task key, what it did) from the report of a study task that decides it (its call, or a setup that failed
    or skipped); None for other reports and other tests. The one place that reads what the fixtures report."""
    key = task_key(report.nodeid)
    if key is None or report.when == "teardown" or (report.when == "setup" and report.passed):
        return None
    kind, started_property, outcome_property = TASK_KINDS[report.nodeid.rpartition("::")[2].partition("[")[0]]
    properties = dict(report.user_properties)
    outcome = properties.get(outcome_property) or ("skipped" if report.skipped else "failed" if report.failed else "ok")
    if kind == "score" and outcome_property in properties:  # counted by its test too: see score_outcome
        origin, status = outcome.split()
        outcome = f"{origin} {score_outcome(report.outcome, status)}"
    return key, TaskOutcome(kind, outcome, seconds=report.duration if report.when == "call" else 0.0,
                            reason=properties.get(SKIP_PROPERTY) if report.skipped else None,
                            started=started_property in properties)


SESSION_PLUGIN = "ecgbench-session"  # the name other code finds this session's state by, without importing us


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
        self.findings: list[str] = []  # one line per finding of the leaderboard just written
        self.summary: str | None = None
        self.scores_summary: str | None = None
        self.stale_note: str | None = None  # how many stale records the leaderboard left out
        self.configuration_note: str | None = None  # how many records of another configuration it left out
        self.dataset_warnings: list[str] = []  # partial copies the run's cells used, every run
        self.errors: list[str] = []  # what went wrong at session end (shown in the ecgbench section, exit non-zero)
        self.started_at = time.time()  # a checkpoint file written since was trained by this run (another worker)

    @property
    def cells_run(self) -> list[str]:
        """Keys of the study cells this session started."""
        return self.tally.started("cell")

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
        from ecgbench.cluster.phases import phase_tasks, shard_of
        from ecgbench.cost import CostModel, load_measured

        tasks = phase_tasks(self.phase, *split_by_kind([task_of(item) for item in items]))
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
        """Seen by the controller for every worker's test: what each study task did, into the run's tally (which
        the progress lines read at the task's teardown report, after this one)."""
        if (done := task_outcome(report)) is not None:
            key, outcome = done
            self.tally.tasks[key] = outcome

    def records(self) -> list[dict]:
        """The stored records of the profile's current configuration in the results folder; unreadable ones go
        to ``problems``, the count of other configurations' to ``configuration_note``."""
        loaded = load_records(self.options.results_dir, self.profile.name)
        self.problems = loaded.problems
        records, self.configuration_note = current_configuration(
            loaded.records, lambda r: cell_hyperparameters(self.profile, Cell.from_dict(r["cell"])),
            self.options.keep_stale, "--ecg-keep-stale")
        return records

    def score_records(self) -> list[dict]:
        """The stored transferability score records of the profile's current configuration; unreadable ones go
        to ``problems``."""
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
        from ecgbench.results.findings import evaluate_findings
        from ecgbench.results.report import terminal_summary
        from ecgbench.transfer_ranking import ranking_profiles_hint

        try:
            records, scores = self.records(), self.score_records()
            ran = set(self.cells_run)
            self.summary = terminal_summary([r for r in records if r["key"] in ran])
            self.dataset_warnings = partial_copies([r for r in records if r["key"] in ran])
            self.scores_summary = self.tally.score_line()
            if ran or self.tally.started("score"):
                notes = [self.configuration_note] if self.configuration_note else []
                self.written, self.stale_note = rebuild_leaderboard(
                    records, scores, self.report_dir, self.options.keep_stale, "--ecg-keep-stale",
                    notes=[*notes, *(f"this run: {line}" for line in self.tally.lines(relative_to=self.report_dir))],
                    sections=session.config.hook.pytest_ecgbench_leaderboard_sections,
                    profile_hint=ranking_profiles_hint(self.profile.name))
                shown = leaderboard_records(records, self.options.keep_stale, "--ecg-keep-stale")[0]
                self.findings = [f"finding {f.number}: {f.claim} {f.verdict_text}" for f in evaluate_findings(shown)]
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
        for line in self.findings:
            terminalreporter.write_line(line, bold=True)
        terminalreporter.write_line(f"records: {self.options.results_dir}")
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


def _undo_deselection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Take ``items`` (pre-trainings that ``-k`` had left out) off the terminal's deselected count."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and "deselected" in reporter.stats:
        back = {id(item) for item in items}
        reporter.stats["deselected"] = [item for item in reporter.stats["deselected"] if id(item) not in back]
