"""The terminal's progress lines, driven by fake test reports."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ecgbench.cost import TRAIN_OVER_FORWARD, task_work
from ecgbench.progress import EpochFile, RunProgress, format_seconds, task_key
from ecgbench.study import enumerate_cells, get_profile, pretrainings_of

PROFILE = get_profile("smoke")
CELLS = [c for c in enumerate_cells(PROFILE) if c.model == "resnet1d18" and c.downstream == "ptb"][:4]
NEED = next(iter(pretrainings_of([c for c in CELLS if c.upstream])))


@dataclass
class Report:
    nodeid: str
    when: str
    duration: float = 0.0
    outcome: tuple | None = None
    user_properties: list = field(default_factory=list)


def _classify(report: Report):
    return report.outcome


def _nodeid(key: str) -> str:
    return f"benchmarks/test_grid.py::test_cell[{key}]"


def _finish(progress: RunProgress, key: str, outcome: str, seconds: float) -> None:
    progress.reported(Report(_nodeid(key), "call", seconds, ("cell", outcome, _nodeid(key))))
    progress.reported(Report(_nodeid(key), "teardown"))


@pytest.fixture
def run():
    lines = []
    progress = RunProgress(PROFILE, lines.append, _classify)
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
    pretrain = f"benchmarks/test_grid.py::test_pretrain[{NEED.key}]"
    progress.reported(Report(pretrain, "call", 0.0, ("checkpoint", "skipped", pretrain)))
    progress.reported(Report(pretrain, "teardown"))
    lines = progress.summary_lines()
    assert set(lines[0].removeprefix("cells: ").split(", ")) == {"2 trained ok", "1 reused ok", "1 trained failed"}
    assert lines[1] == "checkpoints: 1 skipped"
    assert lines[2] == f"slowest cells: {CELLS[1].key} 9 s, {CELLS[0].key} 4 s, {CELLS[3].key} 2 s"
