"""Code identity at work: other result-affecting code re-runs a cell (its checkpoint too), a report change does
not; stale records are reused only when asked and never silently mixed into a leaderboard."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from record_factory import make_record
from tiny_model import NAME, TINY_MODEL_CONFTEST, import_what_training_imports, tiny_profiles

import ecgbench
import ecgbench.runner as runner
from ecgbench import codeid
from ecgbench.cli import main
from ecgbench.codeid import CodeIdentity, code_digest, leaderboard_records
from ecgbench.results.store import write_record
from ecgbench.study import Cell

import_what_training_imports()

SCRATCH = Cell("ptb", NAME, 1.0, "scratch", 0)
FINETUNE = Cell("ptb", NAME, 1.0, "finetune", 0, upstream="cpsc2018")


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the ecgbench package whose files a test edits, standing in for the user's checkout."""
    return Path(shutil.copytree(Path(ecgbench.__file__).parent, tmp_path / "ecgbench",
                                ignore=shutil.ignore_patterns("__pycache__")))


@pytest.fixture
def code_of(monkeypatch, package_copy):
    """This process's code identity becomes the digest of the package copy, recomputed on every use."""
    monkeypatch.setattr(codeid, "code_identity", lambda: CodeIdentity(code_digest(package_copy), "c0ffee", False))
    return package_copy


@pytest.fixture
def trainings(monkeypatch) -> list[str]:
    """Every ``fit`` call (pre-training and cell training) appends its seed's caller: count the trainings."""
    calls, real_fit = [], runner.fit

    def counting_fit(*args, **kwargs):
        calls.append("fit")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(runner, "fit", counting_fit)
    return calls


@pytest.fixture
def tiny_runner(make_runner, smoke_profile):
    profile = dataclasses.replace(smoke_profile, models=(NAME,))
    def make(results: str = "results", profile=profile, **options):
        return make_runner(results, profile=profile, **options)
    return make


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\nEDITED = 1\n")  # code: a comment would keep the digest


def test_an_engine_change_reruns_a_cell_and_its_checkpoint_a_report_change_does_not(code_of, trainings,
                                                                                   tiny_runner):
    first = tiny_runner().run(FINETUNE)
    assert first["status"] == "ok", first["error"]
    assert first["identity"]["code_digest"] == code_digest(code_of) and len(trainings) == 2  # upstream + cell
    _edit(code_of / "results" / "report.py")
    assert tiny_runner().run(FINETUNE) == first and len(trainings) == 2
    _edit(code_of / "engine" / "train.py")
    again = tiny_runner().run(FINETUNE)
    assert len(trainings) == 4  # the checkpoint was made by the old engine too
    assert again["identity"]["code_digest"] == code_digest(code_of) != first["identity"]["code_digest"]
    assert again["identity"]["checkpoint_id"] != first["identity"]["checkpoint_id"]
    assert again["environment"]["commit"] == ecgbench.codeid.git_commit()
    assert "dirty" in again["environment"]


def test_keep_stale_reuses_a_record_that_differs_only_by_its_code(code_of, trainings, tiny_runner):
    first = tiny_runner().run(SCRATCH)
    _edit(code_of / "models" / "__init__.py")
    stale_runner = tiny_runner(keep_stale=True)
    assert stale_runner.made_by_other_code(SCRATCH, first)
    assert stale_runner.run(SCRATCH) == first and len(trainings) == 1
    other_lr = dataclasses.replace(stale_runner.profile, train=dataclasses.replace(stale_runner.profile.train,
                                                                                   lr=0.01))
    changed = tiny_runner(keep_stale=True, profile=other_lr)
    assert not changed.made_by_other_code(SCRATCH, first)  # another hyper-parameter: not merely stale
    assert changed.run(SCRATCH)["identity"]["hyperparameters"]["train"]["lr"] == 0.01 and len(trainings) == 2
    rerun = tiny_runner().run(SCRATCH)  # the default re-runs stale records
    assert len(trainings) == 3 and rerun["identity"]["code_digest"] != first["identity"]["code_digest"]


def test_a_record_without_a_code_digest_is_never_taken_for_a_stale_one(tiny_runner, trainings):
    study = tiny_runner(keep_stale=True)
    record = study.run(SCRATCH)
    old = {**record, "identity": {k: v for k, v in record["identity"].items() if k != "code_digest"}}
    assert not study.made_by_other_code(SCRATCH, old)


# --- leaderboards -------------------------------------------------------------------------------------------

def _records(current: str) -> list[dict]:
    """Two cells made by the current code, two by an older one, one by code before digests existed."""
    records = [make_record("ptb", "gru", f, "scratch", n_test=40) for f in (0.05, 0.25, 1.0)]
    records += [make_record("ptb", "lstm", f, "scratch", n_test=40) for f in (0.25, 1.0)]
    for record, digest in zip(records, (current, current, "0ld0ld0ld0ld0ld0ld00", "0ld0ld0ld0ld0ld0ld00")):
        record["identity"]["code_digest"] = digest
    return records


def _digests(leaderboard: str) -> set[str]:
    """The leaderboard's provenance line of code digests: each digest with the number of cells it made."""
    line = next(line for line in leaderboard.splitlines() if line.startswith("- code digest (cells it made): "))
    return set(line.split(": ", 1)[1].split(", "))


def test_stale_records_are_left_out_and_counted_unless_kept():
    records = _records("c" * 20)
    kept, note = leaderboard_records(records, False, "--keep-stale", digest="c" * 20)
    assert [r["identity"].get("code_digest") for r in kept] == ["c" * 20] * 2
    assert note == (f"excluded 3 stale record(s) made by other result-affecting code than this one ({'c' * 20}): "
                    "code digests 0ld0ld0ld0ld0ld0ld00 (2), unknown (1); re-run those cells, or include them with "
                    "--keep-stale")
    assert leaderboard_records(records, True, "--keep-stale", digest="c" * 20) == (records, None)
    assert leaderboard_records(kept, False, "--keep-stale", digest="c" * 20) == (kept, None)


def test_ecgbench_report_leaves_stale_records_out_and_keep_stale_lists_each_digest(tmp_path, capsys):
    current = codeid.code_identity().digest
    for record in _records(current):
        write_record(tmp_path / "results", record["key"], record)
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    assert "excluded 3 stale record(s)" in capsys.readouterr().err
    leaderboard = (tmp_path / "out" / "leaderboard.md").read_text()
    assert f"- code digest (cells it made): {current} (2)\n- excluded 3 stale record(s)" in leaderboard
    assert "lstm" not in leaderboard.split("## Downstream: ptb")[1].split("## Literature")[0]
    assert "gru" in leaderboard.split("## Downstream: ptb")[1]
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "all"),
                 "--keep-stale"]) == 0
    assert "excluded" not in capsys.readouterr().err
    leaderboard = (tmp_path / "all" / "leaderboard.md").read_text()
    assert _digests(leaderboard) == {f"{current} (2)", "0ld0ld0ld0ld0ld0ld00 (2)", "unknown (1)"}


def test_ecgbench_report_with_only_stale_records_is_an_error(tmp_path, capsys):
    for record in _records("c" * 20)[2:]:
        write_record(tmp_path / "results", record["key"], record)
    assert main(["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 1
    assert "every record in" in capsys.readouterr().err and not (tmp_path / "out" / "leaderboard.md").exists()


# --- the pytest plugin --------------------------------------------------------------------------------------

def test_the_session_leaderboard_leaves_stale_records_out_and_keep_stale_reuses_them(pytester, data_cache,
                                                                                     monkeypatch, code_of):
    pytester.makeconftest(TINY_MODEL_CONFTEST)
    pytester.makepyfile(test_grid=(Path(__file__).parents[1] / "benchmarks" / "test_grid.py").read_text())
    profiles = pytester.path / "profiles.toml"
    profiles.write_text(tiny_profiles(records=60, epochs=1))
    results = pytester.path / "out" / "results"
    args = ["--ecg-profiles", str(profiles), "--ecg-profile", "tiny", "--ecg-results", str(results),
            "--ecg-cache", str(data_cache), "-p", "no:cacheprovider"]
    pytester.runpytest("-k", "f1.0", *args).assert_outcomes(passed=1)
    old_digest = code_digest(code_of)
    _edit(code_of / "engine" / "train.py")
    result = pytester.runpytest("-k", "f0.5", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"excluded 1 stale record(s) *code digests {old_digest} (1)*--ecg-keep-stale"])
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert f"- code digest (cells it made): {code_digest(code_of)} (1)\n- excluded 1 stale record(s)" in leaderboard
    stale_file = results / f"ptb-{NAME}-f1.0-scratch-s0.json"
    before = stale_file.read_bytes()
    result = pytester.runpytest("-k", "scratch", "--ecg-keep-stale", *args)
    result.assert_outcomes(passed=2)
    assert stale_file.read_bytes() == before  # reused, not re-run
    assert "excluded" not in result.stdout.str()
    leaderboard = (results.parent / "leaderboard.md").read_text()
    assert _digests(leaderboard) == {f"{code_digest(code_of)} (1)", f"{old_digest} (1)"}
