"""Code identity: result-affecting source changes the digest, reports and the CLI do not; git commit and dirty."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import ecgbench
from ecgbench import codeid
from ecgbench.codeid import (
    CodeIdentityError,
    code_digest,
    code_digest_counts,
    code_identity,
    git_commit,
    git_dirty,
    result_sources,
)

PACKAGE_DIR = Path(ecgbench.__file__).parent


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the ecgbench package whose files a test may edit."""
    return Path(shutil.copytree(PACKAGE_DIR, tmp_path / "ecgbench",
                                ignore=shutil.ignore_patterns("__pycache__")))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_installed_package_digests_like_its_source_folder():
    assert code_digest() == code_digest(PACKAGE_DIR)
    assert len(code_digest()) == 20


@pytest.mark.parametrize("changed", ["engine/train.py", "models/resnet1d.py", "data/preprocess.py",
                                     "data/synthetic.py", "data/loaders/ptbxl.py", "runner.py"])
def test_a_change_to_result_affecting_source_changes_the_digest(package_copy, changed):
    before = code_digest(package_copy)
    _append(package_copy / changed, "\nCHANGED = 1\n")
    assert code_digest(package_copy) != before


@pytest.mark.parametrize("changed", ["results/report.py", "cli.py", "plugin/hooks.py", "data/commands.py",
                                     "data/fetch.py", "provenance.py"])
def test_a_change_to_reports_cli_or_plugin_keeps_the_digest(package_copy, changed):
    before = code_digest(package_copy)
    _append(package_copy / changed, "\nCHANGED = 1\n")  # code, not a comment: a comment never counts
    assert code_digest(package_copy) == before


def test_a_docstring_or_comment_edit_keeps_the_digest(package_copy):
    before = code_digest(package_copy)
    runner = package_copy / "runner.py"
    text = runner.read_text()
    edited = text.replace('"""Run one cell of the study', '"""Run one cell (reworded) of the study', 1)
    edited = edited.replace("class CellRunner:\n", "class CellRunner:  # a new comment\n\n", 1)
    edited = edited.replace('"""The prepared dataset ``name``', '"""Reworded: the prepared dataset ``name``', 1)
    assert edited.count("reworded") + edited.count("Reworded") + edited.count("a new comment") == 3
    runner.write_text(edited)
    assert code_digest(package_copy) == before


def test_a_changed_constant_changes_the_digest(package_copy):
    before = code_digest(package_copy)
    engine = package_copy / "data" / "synthetic.py"
    text = engine.read_text()
    assert 'SPLIT_FRACTIONS = (0.7, 0.1, 0.2)' in text
    engine.write_text(text.replace('SPLIT_FRACTIONS = (0.7, 0.1, 0.2)', 'SPLIT_FRACTIONS = (0.6, 0.2, 0.2)'))
    assert code_digest(package_copy) != before


def test_a_new_model_file_changes_the_digest(package_copy):
    before = code_digest(package_copy)
    (package_copy / "models" / "transformer.py").write_text("X = 1\n")
    assert code_digest(package_copy) != before


def test_renaming_a_listed_module_is_an_error_naming_the_pattern(package_copy):
    (package_copy / "runner.py").rename(package_copy / "cell_runner.py")
    with pytest.raises(CodeIdentityError, match=r"\['runner.py'\] match no file"):
        code_digest(package_copy)


def test_the_file_list_is_one_editable_constant(package_copy, monkeypatch):
    (package_copy / "runner.py").rename(package_copy / "cell_runner.py")
    monkeypatch.setattr(codeid, "RESULT_SOURCES",
                        tuple("cell_runner.py" if p == "runner.py" else p for p in codeid.RESULT_SOURCES))
    sources = result_sources(package_copy, codeid.RESULT_SOURCES)
    assert "cell_runner.py" in sources and "engine/train.py" in sources
    assert not {"cli.py", "plugin/hooks.py", "data/fetch.py"} & set(sources)
    assert not any(p.startswith(("results/", "perf/", "cluster/")) for p in sources)


def test_code_identity_is_computed_once_per_process():
    assert code_identity() is code_identity()
    assert code_identity().as_dict()["code_digest"] == code_digest()


def test_commit_and_dirty_flag_of_the_checkout():
    expected = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PACKAGE_DIR,
                              capture_output=True, text=True)
    if expected.returncode != 0:
        pytest.skip("the package is not in a git checkout here")
    assert git_commit() == expected.stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=PACKAGE_DIR,
                            capture_output=True, text=True).stdout
    assert git_dirty() is bool(status.strip())


def test_only_the_package_makes_a_checkout_dirty(package_copy):
    """Regenerated reports or edited docs beside the package do not make its code dirty; an edited module does."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = package_copy.parent
    (repo / "README.md").write_text("readme\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    (repo / "README.md").write_text("edited\n")
    assert git_commit(package_copy) != "unknown" and git_dirty(package_copy) is False
    _append(package_copy / "metrics.py", "\n# edited\n")
    git_dirty.cache_clear()
    assert git_dirty(package_copy) is True


def test_a_copy_outside_a_checkout_has_no_commit(package_copy):
    """Even inside some other repository's folder, an untracked copy claims no commit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(package_copy.parent)], check=True)
    assert git_commit(package_copy) == "unknown"
    assert git_dirty(package_copy) is None


def test_digest_counts_of_records():
    records = [{"identity": {"code_digest": "a"}}, {"identity": {"code_digest": "b"}},
               {"identity": {"code_digest": "a"}}, {"identity": {"code_version": "0.1.0"}}]
    assert code_digest_counts(records) == {"a": 2, "b": 1, "unknown": 1}
