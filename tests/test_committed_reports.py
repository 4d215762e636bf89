"""The committed ``reports/`` were made by the code beside them: a change to result-affecting code (engine, models,
data, runner, transfer scores) that is committed without regenerating them fails here, instead of leaving a
leaderboard that this code can no longer reproduce or rebuild (``ecgbench report`` would call every record stale).

Regenerate with ``rm -rf reports/results && bash scripts/quickstart.sh main`` on a clean tree, then commit.
"""
from pathlib import Path

import pytest

from ecgbench.codeid import IDENTITY_KEY, code_identity, record_code_digest
from ecgbench.results.score_records import load_score_records
from ecgbench.results.store import load_records
from ecgbench.study import enumerate_cells, enumerate_transferability, get_profile

REPORTS = Path(__file__).parents[1] / "reports"
RESULTS = REPORTS / "results"
REGENERATE = "regenerate reports/ (rm -rf reports/results && bash scripts/quickstart.sh main) and commit them"

pytestmark = pytest.mark.skipif(not RESULTS.is_dir(), reason="no committed reports/results beside this code")


def test_every_committed_cell_record_is_made_by_this_code_on_a_clean_tree():
    loaded = load_records(RESULTS)
    assert not loaded.problems, loaded.problems
    digest = code_identity().digest
    stale = sorted(r["key"] for r in loaded.records if record_code_digest(r) != digest)
    assert not stale, f"{len(stale)} committed records made by other result-affecting code than {digest}: {REGENERATE}"
    assert {r["key"] for r in loaded.records} == {c.key for c in enumerate_cells(get_profile("default"))}
    assert not any(r["environment"]["dirty"] for r in loaded.records), "records made from an uncommitted tree"


def test_every_committed_score_record_is_made_by_this_code():
    loaded = load_score_records(RESULTS)
    assert not loaded.problems, f"{loaded.problems}: {REGENERATE}"
    digest = code_identity().digest
    assert {r["key"] for r in loaded.records} == {t.key for t in enumerate_transferability(get_profile("default"))}
    assert all(r["identity"][IDENTITY_KEY] == digest for r in loaded.records), REGENERATE


def test_the_committed_leaderboard_is_built_from_these_records():
    provenance = (REPORTS / "leaderboard.md").read_text().split("## Provenance", 1)[-1]
    cells = len(enumerate_cells(get_profile("default")))  # every cell of the profile, all made by this code
    assert f"code digest (cells it made): {code_identity().digest} ({cells})" in provenance, REGENERATE
