"""The four findings decided on constructed results whose answer is known."""
from __future__ import annotations

from record_factory import make_record, paired_records

from ecgbench.models import build_model, register_model
from ecgbench.results.findings import (
    INCONCLUSIVE,
    MIN_UNITS,
    NOT_SUPPORTED,
    SUPPORTED,
    epochs_to_converge,
    evaluate_findings,
    findings_markdown,
    paired_cells,
)

SMALL, LARGE = 0.05, 1.0
MODELS = ("resnet1d18", "resnet1d50", "lstm", "gru")


def _finding(records: list[dict], number: int):
    return evaluate_findings(records)[number - 1]


def _gains(gain_of, fractions=(SMALL, LARGE), seeds=(0, 1), models=MODELS) -> dict:
    return {(m, f, s): gain_of(m, f, s) for m in models for f in fractions for s in seeds}


def test_a_clear_gain_on_small_sets_is_supported():
    records = paired_records(_gains(lambda m, f, s: 0.15 + 0.01 * s + 0.002 * len(m)))
    finding = _finding(records, 1)
    assert finding.verdict == SUPPORTED
    assert finding.low > 0 and finding.n_units == len(MODELS) * 2
    assert all("-f0.05-" in key for key in finding.cell_keys)


def test_no_gain_is_inconclusive_because_the_interval_contains_0():
    records = paired_records(_gains(lambda m, f, s: 0.02 * (-1) ** (s + len(m))))
    finding = _finding(records, 1)
    assert finding.verdict == INCONCLUSIVE and finding.verdict_text == "inconclusive (interval contains 0)"
    assert finding.low < 0 < finding.high


def test_a_loss_from_fine_tuning_is_not_supported():
    records = paired_records(_gains(lambda m, f, s: -0.1 - 0.01 * s))
    assert _finding(records, 1).verdict == NOT_SUPPORTED


def test_too_few_pairs_is_inconclusive_and_says_how_many():
    records = paired_records({("resnet1d18", SMALL, 0): 0.3, ("lstm", SMALL, 0): 0.3})
    finding = _finding(records, 1)
    assert finding.verdict == INCONCLUSIVE and finding.n_units == 2 < MIN_UNITS
    assert finding.verdict_text == "inconclusive (too few cells: 2)"


def test_missing_and_failed_cells_never_count():
    records = paired_records(_gains(lambda m, f, s: 0.2, models=("resnet1d18",), fractions=(SMALL,)))
    records.append(make_record("ptb", "lstm", SMALL, "finetune", 0, "ptbxl", f1=0.9))  # no scratch twin
    records.append(make_record("ptb", "gru", SMALL, "scratch", 0, status="failed"))
    records.append(make_record("ptb", "gru", SMALL, "finetune", 0, "ptbxl", f1=0.9))  # twin failed
    assert len(paired_cells(records)) == 2
    assert _finding(records, 1).verdict_text == "inconclusive (too few cells: 2)"


def test_a_gain_that_shrinks_with_size_supports_finding_2():
    records = paired_records(_gains(lambda m, f, s: (0.2 if f == SMALL else 0.02) + 0.01 * s + 0.001 * len(m)))
    finding = _finding(records, 2)
    assert finding.verdict == SUPPORTED
    assert finding.n_units == len(MODELS) * 2  # one unit per (downstream, upstream, model, seed)


def test_a_constant_gain_does_not_support_finding_2():
    records = paired_records(_gains(lambda m, f, s: 0.1 + 0.01 * (-1) ** (s + len(m) + (f == SMALL))))
    assert _finding(records, 2).verdict == INCONCLUSIVE


def test_one_fraction_only_leaves_finding_2_inconclusive():
    records = paired_records(_gains(lambda m, f, s: 0.2, fractions=(SMALL,)))
    assert _finding(records, 2).verdict_text == "inconclusive (too few cells: 0)"


def _convergence_records(scratch_epochs: tuple[int, int], finetune_epochs: tuple[int, int]) -> list[dict]:
    """Pairs whose validation curves first reach 95 % of their best at the given epoch, per seed."""
    records = []
    for model in MODELS:
        for seed in (0, 1):
            records.append(make_record("ptb", model, SMALL, "scratch", seed, converge_epoch=scratch_epochs[seed]))
            records.append(make_record("ptb", model, SMALL, "finetune", seed, "ptbxl",
                                       converge_epoch=finetune_epochs[seed]))
    return records


def test_earlier_convergence_of_fine_tuning_supports_finding_3():
    finding = _finding(_convergence_records(scratch_epochs=(5, 6), finetune_epochs=(2, 2)), 3)
    assert finding.verdict == SUPPORTED
    assert finding.mean == 3.5


def test_equal_convergence_does_not_support_finding_3():
    finding = _finding(_convergence_records(scratch_epochs=(3, 2), finetune_epochs=(2, 3)), 3)
    assert finding.verdict == INCONCLUSIVE
    assert finding.mean == 0


def test_one_epoch_runs_leave_finding_3_inconclusive():
    records = [make_record("ptb", model, SMALL, regime, seed, epochs=1, converge_epoch=1)
               for model in MODELS for seed in (0, 1) for regime in ("scratch", "finetune")]
    assert _finding(records, 3).verdict_text == "inconclusive (too few cells: 0)"


def test_epochs_to_converge_reads_scores_up_and_losses_down():
    assert epochs_to_converge([0.1, 0.5, 0.96, 1.0], "val_f1_weighted") == 3
    assert epochs_to_converge([2.0, 1.2, 1.04, 1.0], "val_loss") == 3


def test_cnns_gaining_more_than_rnns_supports_finding_4():
    def gain(model, fraction, seed):
        return (0.2 if model.startswith("resnet") else 0.05) + 0.01 * seed + 0.01 * fraction

    assert _finding(paired_records(_gains(gain)), 4).verdict == SUPPORTED
    assert _finding(paired_records(_gains(lambda m, f, s: 0.3 - gain(m, f, s))), 4).verdict == NOT_SUPPORTED


def test_finding_4_groups_a_users_models_by_their_registered_family():
    """Names say nothing: ``deepwave`` registered as a CNN and ``ecgformer`` as an RNN count as such, and a model of
    another family (``mixer``) counts in neither."""
    for name, family in (("deepwave", "cnn"), ("ecgformer", "rnn"), ("mixer", "other")):
        register_model(name, lambda n: build_model("gru", n), family)

    def gain(model, fraction, seed):
        return {"deepwave": 0.2, "ecgformer": 0.05, "mixer": 0.9}[model] + 0.01 * seed + 0.01 * fraction

    finding = _finding(paired_records(_gains(gain, models=("deepwave", "ecgformer", "mixer"))), 4)
    assert finding.verdict == SUPPORTED and 0.14 < finding.mean < 0.16  # mixer's 0.9 never enters the mean
    assert not any("mixer" in key for key in finding.cell_keys)
    swapped = paired_records(_gains(lambda m, f, s: 0.25 - gain(m, f, s), models=("deepwave", "ecgformer")))
    assert _finding(swapped, 4).verdict == NOT_SUPPORTED


def test_finding_4_needs_both_families():
    records = paired_records(_gains(lambda m, f, s: 0.2, models=("resnet1d18", "resnet1d50")))
    assert _finding(records, 4).verdict_text == "inconclusive (too few cells: 0)"


def test_markdown_states_every_verdict_and_the_keys_it_rests_on():
    records = paired_records(_gains(lambda m, f, s: 0.2 + 0.01 * s))
    findings = evaluate_findings(records)
    markdown = findings_markdown(findings)
    for finding in findings:
        assert finding.verdict_text in markdown
        assert all(key in markdown for key in finding.cell_keys)
    assert "ptbxl->ptb-resnet1d18-f0.05-finetune-s0" in markdown
