"""The transferability section from hand-built score and outcome records: correlations, statuses, figure."""
from __future__ import annotations

import numpy as np
import pytest
from record_factory import make_record
from scipy.stats import kendalltau, spearmanr

from ecgbench.results.findings import record_score
from ecgbench.results.rank_correlation import kendall_rows, spearman_rows
from ecgbench.results.transferability import (
    POOLED,
    TOO_FEW,
    ScoreRecordError,
    analyse_transferability,
    transferability_section,
    validate_score_record,
)

DIRECTIONS = {"melep": False, "leep": True, "logme": True}
QUALITY = {"ptbxl": 2.0, "cpsc2018": 1.0, "georgia": 0.3}  # how well each upstream's fine-tune separates


def score_record(upstream, downstream, model, fraction, seed, scores, status="ok"):
    record = {"kind": "transferability", "upstream": upstream, "downstream": downstream, "model": model,
              "fraction": fraction, "seed": seed, "status": status, "n_records": 50}
    if status == "ok":
        return {**record, "scores": scores, "higher_is_better": dict(DIRECTIONS)}
    return {**record, "error": "RuntimeError: boom"}


def grid(upstreams=tuple(QUALITY), downstream="ptb", model="resnet1d18", fraction=0.25, seeds=(0, 1)):
    """Outcome records of one cell, and scores that follow each upstream's measured F1 (MELEP the other way)."""
    outcomes, scores = [], []
    for seed in seeds:
        outcomes.append(make_record(downstream, model, fraction, "scratch", seed, quality=0.5))
        for upstream in upstreams:
            tuned = make_record(downstream, model, fraction, "finetune", seed, upstream, quality=QUALITY[upstream])
            f1 = record_score(tuned)
            outcomes.append(tuned)
            scores.append(score_record(upstream, downstream, model, fraction, seed,
                                       {"melep": 2.0 - f1, "leep": f1 - 2.0, "logme": 10 * f1}))
    return outcomes, scores


def _find(analysis, scope, score, outcome, cell=None):
    (found,) = [c for c in analysis.correlations
                if (c.scope, c.score, c.outcome) == (scope, score, outcome) and (cell is None or c.cell == cell)]
    return found


def test_scores_that_follow_the_outcome_rank_perfectly_with_their_sign():
    outcomes, scores = grid()
    analysis = analyse_transferability(scores, outcomes, n_resamples=200)
    for outcome in ("f1", "gain"):
        for score, sign in (("melep", -1), ("leep", 1), ("logme", 1)):
            found = _find(analysis, "cell", score, outcome)
            assert (found.status, found.n_upstreams, found.n_seeds) == ("ok", 3, 2)
            assert found.kendall.point == pytest.approx(sign) and found.spearman.point == pytest.approx(sign)
            assert found.kendall.low is not None and found.kendall.low <= found.kendall.high
            assert found.kendall.n_resamples > 0


def test_a_score_unrelated_to_the_outcome_does_not_rank_perfectly():
    outcomes, scores = grid()
    by_upstream = {"ptbxl": 1.0, "cpsc2018": 3.0, "georgia": 2.0}  # the middle upstream scores best
    for record in scores:
        record["scores"]["logme"] = by_upstream[record["upstream"]]
    found = _find(analyse_transferability(scores, outcomes, n_resamples=50), "cell", "logme", "f1")
    # F1 ranks ptbxl > cpsc2018 > georgia: of the three pairs only (cpsc2018, georgia) agrees with the score.
    assert found.kendall.point == pytest.approx(-1 / 3)


def test_fewer_than_three_upstreams_is_a_status_not_a_number(tmp_path):
    outcomes, scores = grid(upstreams=("ptbxl", "cpsc2018"))
    analysis = analyse_transferability(scores, outcomes, n_resamples=50)
    found = _find(analysis, "cell", "logme", "gain")
    assert (found.status, found.n_upstreams, found.kendall) == (TOO_FEW, 2, None)
    assert _find(analysis, "mean over cells", "logme", "f1").status == "no cell has 3 or more upstreams"
    assert _find(analysis, POOLED, "logme", "f1").status == "no cell has 3 or more upstreams"
    (tmp_path / "transferability.png").write_bytes(b"stale")
    markdown, paths = transferability_section(scores, outcomes, tmp_path, n_resamples=50,
                                              profile_hint="the packaged profile paper ranks")
    body = markdown.splitlines()[2:]
    assert [line for line in body if line] == [
        "No ranking possible: every cell has at most 2 upstreams, and a ranking needs 3 or more; "
        "the packaged profile paper ranks."]
    assert paths == [] and not (tmp_path / "transferability.png").exists()  # no figure of unrankable points


def test_a_rankable_grid_gets_its_tables_and_a_figure_with_one_line_per_cell(tmp_path):
    outcomes, scores = grid()
    markdown, paths = transferability_section(scores, outcomes, tmp_path, n_resamples=50)
    assert "Per downstream" in markdown and "τ" in markdown and "No ranking possible" not in markdown
    assert paths == [tmp_path / "transferability.png"] and paths[0].read_bytes().startswith(b"\x89PNG")


def test_upstreams_with_equal_scores_are_marked_as_a_tie(tmp_path):
    outcomes, scores = grid()
    for record in scores:
        if record["upstream"] in ("cpsc2018", "georgia"):
            record["scores"]["logme"] = 5.0
    markdown, _ = transferability_section(scores, outcomes, tmp_path, n_resamples=50)
    logme_cells = [line for line in markdown.splitlines() if line.startswith("| ptb ")]
    assert logme_cells and all("(tie: cpsc2018 = georgia)" in line for line in logme_cells)
    assert markdown.count("(tie:") == len(logme_cells)  # MELEP and LEEP still differ: no tie there


def test_pooled_rows_use_every_rankable_cell_and_never_compare_cells():
    three, scores_three = grid()
    two, scores_two = grid(upstreams=("ptbxl", "georgia"), model="gru")
    analysis = analyse_transferability(scores_three + scores_two, three + two, n_resamples=100)
    pooled = _find(analysis, POOLED, "logme", "gain")
    assert pooled.status == "ok" and pooled.n_upstreams == 3  # the gru cell has 2 upstreams: no ranking, left out
    assert pooled.kendall.low is not None
    per_cell = _find(analysis, "mean over cells", "melep", "f1")
    assert per_cell.n_upstreams == 1 and per_cell.kendall.point == pytest.approx(-1)
    assert {p.cell[1] for p in analysis.points} == {"resnet1d18", "gru"} and len(analysis.points) == 5


def test_pooled_ranks_compare_upstreams_only_within_their_cell():
    """The score ranks the upstreams backwards in both cells, and one cell's scores live on another scale (+10,
    as LogME on another model's features): the pooled row says -1, as each cell does, whatever the scales."""
    easy, easy_scores = grid()
    hard, hard_scores = grid(model="gru")
    for outcomes, scores, offset in ((easy, easy_scores, 10.0), (hard, hard_scores, 0.0)):
        f1 = {r["cell"]["upstream"]: record_score(r) for r in outcomes if r["cell"]["regime"] == "finetune"}
        for record in scores:  # within the cell: the best F1 gets the lowest LogME
            record["scores"]["logme"] = offset - f1[record["upstream"]]
    analysis = analyse_transferability(easy_scores + hard_scores, easy + hard, n_resamples=50)
    assert _find(analysis, POOLED, "logme", "f1").kendall.point == pytest.approx(-1)
    assert _find(analysis, "mean over cells", "logme", "f1").kendall.point == pytest.approx(-1)


def test_only_seeds_every_upstream_has_are_used():
    outcomes, scores = grid(seeds=(0, 1))
    scores = [r for r in scores if not (r["upstream"] == "georgia" and r["seed"] == 1)]
    found = _find(analyse_transferability(scores, outcomes, n_resamples=50), "cell", "leep", "f1")
    assert (found.n_upstreams, found.n_seeds) == (3, 1)


def test_failed_score_records_are_left_out_and_listed(tmp_path):
    outcomes, scores = grid(seeds=(0,))
    scores.append(score_record("ptbxl", "ptb", "lstm", 0.25, 0, None, status="failed"))
    markdown, _ = transferability_section(scores, outcomes, tmp_path, n_resamples=50)
    assert "Failed score records (1, left out): ptbxl->ptb-lstm-f0.25-s0" in markdown
    assert "− (lower = more transferable)" in markdown  # MELEP's sign, stated


def test_rank_correlations_of_rows_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(40, 6)).astype(float)  # ties on purpose
    y = rng.normal(size=(40, 6))
    y[:, 2] = y[:, 3]
    x[0] = 1.0  # a constant row: undefined
    expected_tau = [kendalltau(a, b).statistic for a, b in zip(x, y)]
    expected_rho = [spearmanr(a, b).statistic if a.std() else np.nan for a, b in zip(x, y)]
    np.testing.assert_allclose(kendall_rows(x, y), expected_tau, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(spearman_rows(x, y), expected_rho, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("change, message", [
    ({"kind": "study"}, "kind 'study', expected 'transferability'"),
    ({"status": "maybe"}, "status 'maybe'"),
    ({"scores": {"melep": float("nan"), "leep": 0.0, "logme": 0.0}}, "non-finite scores \\['melep'\\]"),
    ({"higher_is_better": {"melep": False}}, "must name the same scores"),
])
def test_malformed_score_records_are_rejected(change, message):
    record = {**grid(seeds=(0,))[1][0], **change}
    with pytest.raises(ScoreRecordError, match=message):
        validate_score_record(record, "score record 7")


def test_missing_keys_and_conflicting_directions_are_rejected():
    outcomes, scores = grid(seeds=(0,))
    incomplete = {k: v for k, v in scores[0].items() if k != "seed"}
    with pytest.raises(ScoreRecordError, match=r"score record 0: missing keys \['seed'\]"):
        analyse_transferability([incomplete], outcomes)
    scores[1]["higher_is_better"] = {**DIRECTIONS, "melep": True}
    with pytest.raises(ScoreRecordError, match="melep higher_is_better=True, other records say False"):
        analyse_transferability(scores, outcomes)


def test_records_without_predictions_give_the_point_alone():
    outcomes, scores = grid(seeds=(0,))
    outcomes[1] = {**outcomes[1], "predictions": None}
    found = _find(analyse_transferability(scores, outcomes, n_resamples=50), "cell", "logme", "f1")
    assert found.kendall.point == pytest.approx(1) and (found.kendall.low, found.kendall.n_resamples) == (None, 0)


def test_the_no_ranking_hint_counts_only_upstreams_with_fine_tune_cells(monkeypatch, smoke_profile):
    """The random control has no fine-tune cells: a profile of two datasets and random cannot rank by gains."""
    import dataclasses

    import ecgbench.study
    from ecgbench.transfer_ranking import ranking_profiles_hint

    profiles = {"two_and_random": dataclasses.replace(smoke_profile, upstreams=("ptbxl", "cpsc2018", "random")),
                "three": smoke_profile}
    monkeypatch.setattr(ecgbench.study, "load_profiles", lambda: profiles)
    assert ranking_profiles_hint("two_and_random") == ("profile two_and_random fine-tunes from fewer upstreams; the "
                                                       "packaged profiles three fine-tune from 3 or more and rank them")
    assert ranking_profiles_hint("three") == ""
