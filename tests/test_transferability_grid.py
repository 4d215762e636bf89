"""Transferability scores in the grid: pytest cases with axis markers, stored and resumed records, phases and
shard costs, the leaderboard section from stored records alone, and ``ecgbench transferability``."""
from __future__ import annotations

import dataclasses
import json

import pytest
from test_plugin import GRID, _collected
from test_transferability_report import grid as hand_built_grid

from ecgbench.cli import main
from ecgbench.cluster.phases import phase_tasks
from ecgbench.cost import split_sizes, task_flops, task_work, work_flops
from ecgbench.results.score_records import (
    SCORE_SCHEMA_VERSION,
    ScoreRecordError,
    load_score_records,
    read_score_record,
    score_record_path,
    write_score_record,
)
from ecgbench.results.store import load_records, write_record
from ecgbench.study import Cell, Pretraining, Transferability, enumerate_transferability, get_profile, subset_size
from ecgbench.transfer_ranking import NO_OUTCOMES, caveat

TASK = Transferability("cpsc2018", "ptb", "resnet1d18", 1.0, 0)
# Two upstreams, one model, the whole training set: the smallest profile with a ranking to print.
TINY_PROFILES = """
[tiny]
description = "two upstreams for one downstream"
upstreams = ["ptbxl", "cpsc2018"]
downstreams = ["ptb"]
models = ["resnet1d18"]
fractions = [1.0]
regimes = ["finetune"]
seeds = 1
synthetic_records = { ptbxl = 60, cpsc2018 = 60, ptb = 60 }  # the smoke sizes: a shared data cache
pretrain = { epochs = 1, batch_size = 16, lr = 0.001, patience = 0 }
train = { epochs = 1, batch_size = 16, lr = 0.001, patience = 0 }
"""


@pytest.fixture
def grid(pytester, data_cache):
    pytester.makepyfile(test_grid=GRID.read_text())
    results = pytester.path / "out" / "results"
    return results, ["--ecg-profile", "smoke", "--ecg-results", str(results), "--ecg-cache", str(data_cache),
                     "-p", "no:cacheprovider"]


def test_one_case_per_checkpoint_downstream_fraction_and_seed_selectable_by_axis(pytester, grid):
    _, args = grid
    everything = pytester.runpytest("--collect-only", "-q", "-m", "transferability", *args)
    everything.stdout.fnmatch_lines(["*test_transferability[[]ptbxl->cpsc2018-resnet1d18-f0.05-s0]*",
                                     "216/756 tests collected (540 deselected)*"])
    selected = _collected(pytester.runpytest("--collect-only", "-q", "-m",
                                             "transferability and from_ptbxl and to_ptb and model_gru", *args))
    assert selected == [f"ptbxl->ptb-gru-f{f}-s0" for f in (0.05, 0.25, 1.0)]
    assert len(enumerate_transferability(get_profile("smoke"))) == 216


def test_the_pretrain_phase_builds_what_score_tasks_need_and_the_transfer_phase_runs_them(pytester, grid):
    _, args = grid
    selection = ["-m", "transferability and to_ptb and model_gru and not from_georgia"]
    pretrain = _collected(pytester.runpytest("--collect-only", "-q", *selection, "--ecg-phase", "pretrain", *args))
    assert pretrain == ["pretrain-cpsc2018-gru-s0", "pretrain-ptbxl-gru-s0"]  # what the score tasks need
    transfer = _collected(pytester.runpytest("--collect-only", "-q", *selection, "--ecg-phase", "transfer", *args))
    assert len(transfer) == 6 and all("->ptb-gru" in t for t in transfer)
    scratch = pytester.runpytest("--collect-only", "-q", *selection, "--ecg-phase", "scratch", *args)
    assert _collected(scratch) == []


def test_score_tasks_in_phase_tasks_and_cost_one_forward_pass_over_their_subset():
    profile = get_profile("smoke")
    cell = Cell("ptb", "gru", 1.0, "scratch", 0)
    assert phase_tasks("transfer", [cell], [], [TASK]) == [TASK]
    assert phase_tasks("pretrain", [cell], [], [TASK]) == [Pretraining("cpsc2018", "resnet1d18", 0)]
    assert phase_tasks("all", [cell], [], [TASK]) == [cell, TASK]
    small = dataclasses.replace(TASK, fraction=0.25)
    work = task_work(profile, small)
    assert work.train_samples == 0
    assert work.infer_samples == subset_size(split_sizes(profile.synthetic_records["ptb"])["train"], 0.25)


@pytest.mark.parametrize("model, gram_share", [("resnet1d18", (0.0, 0.01)), ("gru", (0.5, 0.6))])
def test_a_score_task_costs_its_forward_pass_and_logmes_gram_matrix(model, gram_share):
    """The RNNs' 100 000-wide features make the Gram matrix as dear as the forward pass over PTB's 384 training
    records (and dearer with more); the ResNets' 512 make it negligible."""
    profile = get_profile("paper")
    task = Transferability("ptbxl", "ptb", model, 1.0, 0)
    forward = work_flops(model, task_work(profile, task))
    low, high = gram_share
    assert low < 1 - forward / task_flops(profile, task) < high
    records = profile.synthetic_records
    double = dataclasses.replace(profile, synthetic_records={**records, "ptb": 2 * records["ptb"]})
    grows = task_flops(double, task) / task_flops(profile, task)
    assert (3.0 <= grows < 4.0) if model == "gru" else (2.0 <= grows < 2.05)  # the n x n Gram matrix: as n^2


def test_a_grid_case_stores_a_score_record_the_leaderboard_shows_and_a_second_run_reuses(pytester, grid):
    results, args = grid
    selection = ["-m", "transferability and from_cpsc2018 and to_ptb and model_resnet1d18", "-k", "f1.0"]
    first = pytester.runpytest(*selection, *args)
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*transferability scores: 1 ok, 0 failed*", "*wrote*leaderboard.md*"])
    path = score_record_path(results, TASK.file_stem)
    record = json.loads(path.read_text())
    assert (record["status"], record["key"], record["schema_version"]) == ("ok", TASK.key, SCORE_SCHEMA_VERSION)
    assert record["n_records"] > 0 and set(record["scores"]) == set(record["higher_is_better"]) == {
        "melep", "leep", "logme"}
    assert record["timing"]["pretrain_built_here"] is True  # the checkpoint was missing: built under its lock
    assert load_records(results).records == []  # the cell store does not see score records
    assert "## Transferability scores" in (results.parent / "leaderboard.md").read_text()

    written = path.stat().st_mtime_ns
    second = pytester.runpytest(*selection, *args)
    second.assert_outcomes(passed=1)
    assert path.stat().st_mtime_ns == written  # reused, not written again
    assert len(list((results / "checkpoints").glob("*.pt"))) == 1

    path.write_text(json.dumps({**record, "scores": {**record["scores"], "melep": 0.0}}))  # edited by hand
    third = pytester.runpytest(*selection, *args)
    third.assert_outcomes(passed=1)
    third.stdout.fnmatch_lines([f"*re-scoring {TASK.key}*content does not match its content_sha256*"])
    assert read_score_record(path)["scores"] == record["scores"]  # written again, sealed: the edit is gone


def _stored(record: dict, i: int) -> dict:
    """A hand-built analysis record in the stored schema."""
    key = f"{record['upstream']}->{record['downstream']}-{record['model']}-f{record['fraction']}-s{record['seed']}"
    return {**record, "schema_version": SCORE_SCHEMA_VERSION, "key": key, "score_id": f"id{i}",
            "identity": {"task": key}, "profile": "smoke", "data_source": "synthetic", "error": None,
            "timing": {"wall_s": 1.0}, "environment": {}, "created": "2025-01-01T00:00:00+00:00"}


def test_the_report_command_includes_the_section_from_stored_records_alone(tmp_path, capsys):
    outcomes, scores = hand_built_grid()
    results = tmp_path / "results"
    for record in outcomes:
        write_record(results, record["key"].replace("->", "_to_"), {**record, "profile": "smoke"})
    for i, record in enumerate(scores):
        stored = _stored(record, i)
        write_score_record(results, stored["key"].replace("->", "_to_"), stored)
    # hand-built records carry no code digest: include them as stale
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "report"), "--keep-stale"]) == 0
    leaderboard = (tmp_path / "report" / "leaderboard.md").read_text()
    assert "## Transferability scores: do they predict fine-tuning?" in leaderboard
    assert "τ -1.000" in leaderboard and "τ +1.000" in leaderboard  # MELEP lower-is-better, LEEP/LogME higher
    assert (tmp_path / "report" / "transferability.png").stat().st_size > 0


def test_stored_score_records_are_strict_and_bad_files_are_named(tmp_path):
    _, scores = hand_built_grid()
    stored = _stored(scores[0], 0)
    with pytest.raises(ScoreRecordError, match="unknown keys \\['extra'\\]"):
        write_score_record(tmp_path, "x", {**stored, "extra": 1})
    with pytest.raises(ScoreRecordError, match="missing keys \\['score_id'\\]"):
        write_score_record(tmp_path, "x", {k: v for k, v in stored.items() if k != "score_id"})
    written = write_score_record(tmp_path, "good", stored)
    assert written["content_sha256"] and read_score_record(score_record_path(tmp_path, "good")) == written
    score_record_path(tmp_path, "bad").write_text("{not json")
    edited = {**written, "scores": {**written["scores"], "melep": 0.5}}
    score_record_path(tmp_path, "edited").write_text(json.dumps(edited))
    older = {k: v for k, v in edited.items() if k != "content_sha256"}
    score_record_path(tmp_path, "older").write_text(json.dumps({**older, "schema_version": 1}))
    loaded = load_score_records(tmp_path)
    assert [r["key"] for r in loaded.records] == [stored["key"]]
    problems = dict(zip(("bad", "edited", "older"), sorted(loaded.problems)))
    assert "bad.json: unreadable score record" in problems["bad"]
    assert "edited.json: content does not match its content_sha256" in problems["edited"]
    assert "older.json: schema_version 1, expected 2" in problems["older"]


def test_the_caveat_says_how_well_each_score_predicted_the_stored_grid():
    outcomes, scores = hand_built_grid()
    text = caveat(scores, outcomes)
    assert "melep: Kendall τ -1.000" in text and "logme: Kendall τ +1.000" in text
    assert NO_OUTCOMES in caveat(scores, [r for r in outcomes if r["cell"]["regime"] == "scratch"])


def _ranking(capsys, *args: str) -> tuple[int, str]:
    code = main(["transferability", "--downstream", "ptb", *args])
    return code, capsys.readouterr().out


def test_the_cli_ranks_upstreams_by_each_score_and_trains_missing_checkpoints_only_when_asked(
        tmp_path, data_cache, capsys):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY_PROFILES)
    results = tmp_path / "results"
    args = ("--profile", "tiny", "--profiles", str(profiles), "--results", str(results), "--cache", str(data_cache))
    code, out = _ranking(capsys, *args)
    assert code == 1 and not (results / "checkpoints").exists()
    assert "missing upstream checkpoints (2): pretrain-ptbxl-resnet1d18-s0, pretrain-cpsc2018-resnet1d18-s0" in out
    assert "--train-missing" in out and '--ecg-phase pretrain -m "transferability and to_ptb"' in out

    code, out = _ranking(capsys, *args, "--train-missing")
    assert code == 0 and NO_OUTCOMES in out
    stored = {r["upstream"]: r for r in load_score_records(results).records}
    assert sorted(stored) == ["cpsc2018", "ptbxl"]
    for name, higher in (("melep", False), ("leep", True), ("logme", True)):
        best = sorted(stored, key=lambda u: stored[u]["scores"][name], reverse=higher)[0]
        column = [line.split() for line in out.splitlines() if line.startswith("1 ")][0]
        assert column[1 + 2 * ("melep", "leep", "logme").index(name)] == best, (name, out)

    created = {u: r["created"] for u, r in stored.items()}
    code, again = _ranking(capsys, *args)  # stored records are reused, no checkpoint needed
    assert code == 0 and again == out
    assert {r["upstream"]: r["created"] for r in load_score_records(results).records} == created


def test_a_downstream_outside_the_profile_is_a_clear_error(capsys, tmp_path):
    assert main(["transferability", "--downstream", "mine", "--profile", "smoke"]) == 2
    assert "profile 'smoke' has no dataset 'mine'" in capsys.readouterr().err
    one_upstream = TINY_PROFILES.replace('upstreams = ["ptbxl", "cpsc2018"]', 'upstreams = ["ptbxl"]')
    (tmp_path / "p.toml").write_text(one_upstream)
    assert main(["transferability", "--downstream", "ptbxl", "--profile", "tiny", "--profiles",
                 str(tmp_path / "p.toml"), "--results", str(tmp_path / "r")]) == 1
    assert "nothing to rank: profile tiny scores no upstream for ptbxl" in capsys.readouterr().err
