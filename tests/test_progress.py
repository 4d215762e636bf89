"""The terminal's progress lines, driven by fake test reports and the run's tally."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from ecgbench.cost import TRAIN_OVER_FORWARD, task_work
from ecgbench.plugin.session import (
    CELL_PROPERTY,
    CHECKPOINT_PROPERTY,
    OUTCOME_PROPERTY,
    SCORE_OUTCOME_PROPERTY,
    SCORE_PROPERTY,
    SKIP_PROPERTY,
    task_outcome,
)
from ecgbench.progress import EpochFile, RunProgress, format_seconds, task_key
from ecgbench.results.tally import RunTally, TaskOutcome
from ecgbench.study import enumerate_cells, enumerate_transferability, get_profile, pretrainings_of

PROFILE = get_profile("smoke")
CELLS = [c for c in enumerate_cells(PROFILE) if c.model == "resnet1d18" and c.downstream == "ptb"][:4]
NEED = next(iter(pretrainings_of([c for c in CELLS if c.upstream])))


@dataclass
class Report:
    nodeid: str
    when: str


def _nodeid(key: str) -> str:
    return f"benchmarks/test_grid.py::test_cell[{key}]"


def _finish(progress: RunProgress, key: str, outcome: str, seconds: float) -> None:
    """A cell's call as the plugin tallies it, then its teardown report."""
    progress.tally.tasks[key] = TaskOutcome("cell", outcome, seconds, started=True)
    progress.reported(Report(_nodeid(key), "teardown"))


@pytest.fixture
def run(tmp_path):
    lines = []
    progress = RunProgress(PROFILE, lines.append, RunTally(tmp_path))
    progress.plan([_nodeid(c.key) for c in CELLS] + ["tests/test_other.py::test_plain"])
    return progress, lines


def test_task_keys_come_from_the_test_ids():
    assert task_key("benchmarks/test_grid.py::test_cell[ptbxl->ptb-lstm-f0.05-finetune-s0]") == \
        "ptbxl->ptb-lstm-f0.05-finetune-s0"
    assert task_key("tests/test_x.py::test_plain") is None
    assert task_key("tests/test_x.py::test_other[ptb-lstm]") is None  # a parametrized test of another suite
    assert (format_seconds(42.4), format_seconds(185)) == ("42 s", "3 min 05 s")


def test_the_eta_prices_the_work_left_at_the_rate_measured_so_far_over_the_tasks_in_parallel(run):
    progress, lines = run
    progress.started(_nodeid(CELLS[0].key))
    progress.started(_nodeid(CELLS[1].key))  # two at once: the ETA halves
    _finish(progress, CELLS[0].key, "trained ok", 30.0)
    work = {c.key: task_work(PROFILE, c) for c in CELLS}
    units = {k: w.train_samples * TRAIN_OVER_FORWARD + w.infer_samples for k, w in work.items()}
    expected = sum(units[c.key] for c in CELLS[1:]) * (30.0 / units[CELLS[0].key]) / 2
    assert progress.eta() == pytest.approx(expected)
    assert lines[-1].startswith(f"ecgbench [1/4 done, 3 left, ETA {format_seconds(expected)}]: {CELLS[0].key}: "
                                "trained ok in 30 s")
    _finish(progress, CELLS[1].key, "reused ok", 0.01)  # a reused task costs nothing and changes no rate
    assert progress.eta() == pytest.approx(expected - units[CELLS[1].key] * (30.0 / units[CELLS[0].key]) / 2)


def test_reused_cells_are_counted_into_the_next_line_not_one_line_each(run):
    progress, lines = run
    for cell in CELLS[:3]:
        progress.started(_nodeid(cell.key))
        _finish(progress, cell.key, "reused ok", 0.01)
    assert lines == [] and "ETA after the first trained task" in progress._status()
    progress.started(_nodeid(CELLS[3].key))
    _finish(progress, CELLS[3].key, "trained failed", 5.0)
    assert lines[-1].endswith("trained failed in 5 s (and 3 reused from stored records)")


def test_a_cell_in_flight_on_a_worker_shows_its_epoch_from_the_worker_file(run, tmp_path):
    progress, lines = run
    progress.epoch_folder = tmp_path
    progress.started(_nodeid(CELLS[0].key))
    progress.started(_nodeid(CELLS[1].key))
    EpochFile(tmp_path, "gw1")(CELLS[1].key, 3, 8)
    _finish(progress, CELLS[0].key, "trained ok", 2.0)
    assert lines[-1].endswith(f"; running: {CELLS[1].key} (epoch 3/8)")


def test_a_transfer_cell_started_beside_its_checkpoint_says_it_may_wait(run):
    progress, lines = run
    transfer = next(c for c in CELLS if c.pretraining == NEED)
    progress.started(f"benchmarks/test_grid.py::test_pretrain[{NEED.key}]")
    assert f"checkpoint {NEED.key}: built now if a selected task needs it" in lines[-1]
    progress.started(_nodeid(transfer.key))
    assert f"{transfer.key} starts while checkpoint {NEED.key} is prepared" in lines[-1]


def test_the_summary_counts_each_kind_of_task_by_outcome_and_names_the_slowest_cells(run):
    progress, _ = run
    for cell, outcome, seconds in zip(CELLS, ("trained ok", "trained ok", "reused ok", "trained failed"),
                                      (4.0, 9.0, 0.1, 2.0)):
        _finish(progress, cell.key, outcome, seconds)
    progress.tally.tasks[NEED.key] = TaskOutcome("checkpoint", "skipped")
    progress.reported(Report(f"benchmarks/test_grid.py::test_pretrain[{NEED.key}]", "teardown"))
    lines = progress.summary_lines()
    assert set(lines[0].removeprefix("cells: ").split(", ")) == {"2 trained ok", "1 reused ok", "1 trained failed"}
    assert lines[1] == "checkpoints: 1 skipped"
    assert lines[2] == f"slowest cells: {CELLS[1].key} 9 s, {CELLS[0].key} 4 s, {CELLS[3].key} 2 s"


# -- one tally: the plugin reads the reports into it, the progress lines and the ecgbench section read it ------

SCORE = enumerate_transferability(PROFILE)[0]
MIXED = "upstream ptbxl is synthetic data but downstream ptb is real"


def _report(test: str, key: str, when: str, outcome: str, duration: float = 0.0, **properties) -> pytest.TestReport:
    nodeid = f"benchmarks/test_grid.py::{test}[{key}]"
    return pytest.TestReport(nodeid, ("benchmarks/test_grid.py", 0, nodeid), {}, outcome, None, when,
                             duration=duration, user_properties=list(properties.items()))


def _reports() -> list[pytest.TestReport]:
    """Every report of a run, teardowns too, with the properties the grid's fixtures add."""
    trained, reused, lost, skipped = CELLS
    tasks = [
        ("test_pretrain", NEED.key, "call", "passed", 6.0, {CHECKPOINT_PROPERTY: "trained"}),
        ("test_cell", trained.key, "call", "passed", 4.0, {CELL_PROPERTY: trained.key, OUTCOME_PROPERTY: "trained ok"}),
        ("test_cell", reused.key, "call", "failed", 0.1,
         {CELL_PROPERTY: reused.key, OUTCOME_PROPERTY: "reused failed"}),
        ("test_cell", lost.key, "call", "failed", 1.0, {CELL_PROPERTY: lost.key}),  # execute raised: no record
        ("test_cell", skipped.key, "call", "skipped", 0.0, {SKIP_PROPERTY: MIXED}),
        # its record written (failed: nothing to score), then the test skipped it: counted skipped, not failed
        ("test_transferability", SCORE.key, "call", "skipped", 2.0,
         {SCORE_PROPERTY: SCORE.key, SCORE_OUTCOME_PROPERTY: "trained failed"}),
    ]
    reports = []
    for test, key, when, outcome, seconds, properties in tasks:
        reports += [_report(test, key, "setup", "passed", **properties), _report(test, key, when, outcome, seconds,
                                                                                 **properties)]
        reports.append(_report(test, key, "teardown", "failed" if key == trained.key else "passed", **properties))
    return reports


def test_the_plugin_tallies_each_task_once_from_the_report_that_decides_it(tmp_path):
    tally = RunTally(tmp_path)
    for report in _reports():
        if (done := task_outcome(report)) is not None:
            tally.tasks[done[0]] = done[1]
    trained, reused, lost, skipped = CELLS
    assert tally.tasks == {  # a failed teardown (of the trained cell) changes nothing; setups that passed neither
        NEED.key: TaskOutcome("checkpoint", "trained", 6.0),
        trained.key: TaskOutcome("cell", "trained ok", 4.0, started=True),
        reused.key: TaskOutcome("cell", "reused failed", 0.1, started=True),
        lost.key: TaskOutcome("cell", "failed", 1.0, started=True),
        skipped.key: TaskOutcome("cell", "skipped", reason=MIXED),
        SCORE.key: TaskOutcome("score", "trained skipped", 2.0, started=True)}
    assert tally.started("cell") == [trained.key, reused.key, lost.key] and tally.started("score") == [SCORE.key]
    assert task_outcome(_report("test_cell", trained.key, "setup", "skipped")) == \
        (trained.key, TaskOutcome("cell", "skipped"))  # skipped in its setup: no reason of the fixture's
    assert task_outcome(_report("test_other", "ptb", "call", "passed")) is None


def test_the_progress_summary_and_the_ecgbench_section_count_one_tally(tmp_path):
    lines = []
    progress = RunProgress(PROFILE, lines.append, RunTally(tmp_path))
    for report in _reports():  # the session's hook before the progress plugin's, as pytest calls them
        if (done := task_outcome(report)) is not None:
            progress.tally.tasks[done[0]] = done[1]
        progress.reported(report)
    trained, reused, lost, skipped = CELLS
    assert progress.summary_lines() == [
        "cells: 1 failed, 1 reused failed, 1 skipped, 1 trained ok", "checkpoints: 1 trained",
        "score tasks: 1 trained skipped", f"slowest cells: {trained.key} 4 s"]
    assert progress.tally.lines() == [
        "trained here: 1 cells (1 ok, 0 failed)",
        f"reused from stored records in {tmp_path}: 1 cells (0 ok, 1 failed), not trained again; retrain them "
        "with --ecg-rerun all (or only the failed ones with --ecg-rerun failed)",
        f"skipped: 1 cells (1 x {MIXED})",
        f"no record: 1 cells stopped before their record was written (see their failures above): {lost.key}"]
    assert progress.tally.score_line() == "transferability scores: 0 ok, 0 failed, 1 skipped"
    # one line per task that did not reuse, at its teardown; the reused cell is counted into the next line
    assert [line.split("]: ")[1].split(" in ")[0] for line in lines] == [
        f"checkpoint {NEED.key}: trained", f"{trained.key}: trained ok", f"{lost.key}: failed",
        f"{skipped.key}: skipped", f"score task {SCORE.key}: trained skipped"]
    assert lines[2].endswith("(and 1 reused from stored records)") and lines[-1].startswith("ecgbench [6/6 done")


def test_a_pretraining_prices_pretrainings_and_a_cell_prices_cells_of_its_model_and_dataset(run):
    """The cost model sizes a dataset from its manifest: a partial copy puts a pre-training's estimated work off
    by another factor than the cells', so each kind, model and dataset keeps its own measured rate."""
    progress, _ = run
    units = {c.key: progress.work(c.key) for c in CELLS}
    progress.tally.tasks[NEED.key] = TaskOutcome("checkpoint", "trained", 1.0)  # a tiny copy: fast for its size
    pretraining_rate = 1.0 / progress.work(NEED.key)
    assert progress.eta() == pytest.approx(sum(units.values()) * pretraining_rate)  # only its model's rate so far
    _finish(progress, CELLS[0].key, "trained ok", 30.0)
    cell_rate = 30.0 / units[CELLS[0].key]
    assert progress.eta() == pytest.approx(sum(units[c.key] for c in CELLS[1:]) * cell_rate)
