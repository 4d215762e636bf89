"""The leaderboard: deterministic bytes, honest missing and failed cells, figures, provenance, literature."""
from __future__ import annotations

from pathlib import Path

import pytest
from record_factory import make_record

from ecgbench.results.report import REPORT_NAME, build_report, terminal_summary

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RESAMPLES = 100  # enough to exercise the intervals, fast enough for a unit test


def _study(downstream: str = "ptb", data_source: str = "synthetic") -> list[dict]:
    """Two models x two fractions x two seeds, all regimes from ptbxl, except the cells the tests take out."""
    records = []
    for model in ("resnet1d18", "lstm"):
        for fraction in (0.05, 1.0):
            for seed in (0, 1):
                cell = dict(downstream=downstream, model=model, fraction=fraction, seed=seed, data_source=data_source)
                records.append(make_record(regime="scratch", quality=0.5 + fraction, **cell))
                records.append(make_record(regime="finetune", upstream="ptbxl", quality=1.5, pretrain_s=20.0,
                                           converge_epoch=2, **cell))
                if (model, fraction) != ("lstm", 1.0):  # the missing cell
                    records.append(make_record(regime="linear", upstream="ptbxl", quality=1.0, **cell))
    failed = make_record(downstream, "resnet1d50", 0.05, "scratch", 0, status="failed",
                         error="RuntimeError: CUDA out of memory | tried 2 GiB\nTraceback (most recent call last):")
    return records + [failed]


@pytest.fixture(scope="module")
def study() -> list[dict]:
    return _study()


@pytest.fixture(scope="module")
def report(study, tmp_path_factory) -> tuple[list[Path], str]:
    paths = build_report(study, tmp_path_factory.mktemp("report"), n_resamples=RESAMPLES)
    return paths, paths[0].read_text()


def _table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, as stripped cell texts."""
    lines = markdown[markdown.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _row(rows: list[list[str]], fraction: str, model: str) -> list[str]:
    return next(r for r in rows if r[:2] == [fraction, model])


def test_two_runs_give_byte_identical_markdown_and_figures(study, report, tmp_path):
    paths, _ = report
    again = build_report(list(reversed(study)), tmp_path, n_resamples=RESAMPLES)
    assert [p.name for p in again] == [p.name for p in paths]
    for first, second in zip(paths, again):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_missing_cell_prints_a_dash_never_zero(report):
    _, markdown = report
    for heading in ("**Weighted F1", "**Macro AUROC"):
        rows = _table_rows(markdown, heading)
        header = _table_header(markdown, heading)
        linear = header.index("linear ← ptbxl")
        assert _row(rows, "1", "lstm")[linear] == "-"
        assert _row(rows, "1", "resnet1d18")[linear] != "-"
        assert not any(cell.startswith("0.000") for row in rows for cell in row)


def _table_header(markdown: str, heading: str) -> list[str]:
    line = next(line for line in markdown[markdown.index(heading):].splitlines() if line.startswith("|"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_failed_cell_prints_failed_and_its_first_error_line(report):
    _, markdown = report
    rows = _table_rows(markdown, "**Weighted F1")
    failed_row = _row(rows, "0.05", "resnet1d50")
    assert failed_row[2] == "failed"
    assert set(failed_row[3:]) == {"-"}
    assert "RuntimeError: CUDA out of memory \\| tried 2 GiB" in markdown
    assert "Traceback" not in markdown


def test_cells_show_mean_and_interval_over_seeds(report, study):
    _, markdown = report
    scratch = _row(_table_rows(markdown, "**Weighted F1"), "1", "resnet1d18")[2]
    seeds = [r["test"]["f1_weighted"] for r in study if r["status"] == "ok" and r["cell"]["fraction"] == 1.0
             and (r["cell"]["model"], r["cell"]["regime"]) == ("resnet1d18", "scratch")]
    assert len(seeds) == 2
    point, interval = scratch.split(" ", 1)
    assert point == f"{sum(seeds) / 2:.3f}"
    low, high = (float(x) for x in interval.strip("[]").split(", "))
    assert low <= float(point) <= high


def test_fine_tune_minus_scratch_is_paired_per_seed(report):
    _, markdown = report
    rows = _table_rows(markdown, "**Fine-tune minus scratch")
    small = next(r for r in rows if r[:3] == ["ptbxl", "0.05", "resnet1d18"])
    assert small[3] == "2"
    assert small[4].startswith("+") and float(small[4].split(" [")[1].split(",")[0]) > 0


def test_figures_are_valid_png_files_linked_from_the_markdown(report):
    paths, markdown = report
    figures = paths[1:]
    assert paths[0].name == REPORT_NAME and len(figures) == 4
    for figure in figures:
        data = figure.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
        assert f"]({figure.name})" in markdown


def test_figures_the_records_cannot_support_are_skipped_and_said_so(tmp_path):
    scratch_only = [make_record("ptb", "lstm", 1.0, "scratch", 0)]
    paths = build_report(scratch_only, tmp_path, n_resamples=RESAMPLES)
    markdown = paths[0].read_text()
    assert paths == [tmp_path / REPORT_NAME]
    assert markdown.count("_skipped:") == 4
    assert "inconclusive (too few cells: 0)" in markdown


def test_provenance_section_names_sources_commits_devices_and_counts(report):
    _, markdown = report
    header = markdown[markdown.index("## Provenance"):]
    for expected in ("profile: test", "ptb: synthetic", "abc123def456", "cpu (x86_64)", "torch: 2.3.0",
                     "2024-05-01T12:00:00+00:00 to 2024-05-02T12:00:00+00:00", "cells: 22 ok, 1 failed"):
        assert expected in header


def test_provenance_names_the_transfer_head_policy_of_the_records(study, tmp_path):
    def with_policy(record: dict, policy: str) -> dict:
        identity = {**record["identity"], "hyperparameters": {"head_policy": policy}}
        return {**record, "identity": identity}

    def header(records: list[dict]) -> str:
        markdown = build_report(records, tmp_path, n_resamples=RESAMPLES)[0].read_text()
        return markdown[markdown.index("## Provenance"):]

    assert "- transfer head policy: head (last_layer: the paper's" in header([with_policy(r, "head") for r in study])
    mixed = [with_policy(r, "head" if i % 2 else "last_layer") for i, r in enumerate(study)]
    assert "- transfer head policy: head, last_layer (" in header(mixed)


def test_literature_says_when_no_real_data_row_exists(report):
    _, markdown = report
    literature = markdown[markdown.index("## Literature"):]
    assert literature.count("published, not re-run") == 4
    assert "0.930" in literature and "No real-data scratch row" in literature


def test_literature_sets_real_ptbxl_scratch_rows_beside_the_published_ones(tmp_path):
    real = [r for r in _study("ptbxl", "real") if r["cell"]["regime"] == "scratch" and r["status"] == "ok"]
    markdown = build_report(real, tmp_path, n_resamples=RESAMPLES)[0].read_text()
    literature = markdown[markdown.index("## Literature"):]
    rows = _table_rows(literature, "## Literature")
    ours = [r for r in rows if r[0] == "this run (real data)"]
    assert [r[2] for r in ours] == ["resnet1d18", "lstm"]
    assert all("fraction 1" in r[1] for r in ours)


def test_terminal_summary_is_a_short_table_with_dashes_for_missing_regimes(study):
    summary = terminal_summary(study)
    lines = summary.splitlines()
    assert "22 cells ok, 1 failed" in lines[0]
    resnet50 = next(line for line in lines if "resnet1d50" in line)
    assert resnet50.split()[2:] == ["-", "-", "-"]
    assert len(lines) == 3 + 3  # title, header, rule, three models


def test_the_leaderboard_leads_with_findings_and_headlines_and_folds_the_cell_lists_at_the_end(report):
    _, markdown = report
    order = [markdown.index(heading) for heading in (
        "## Findings", "## When does fine-tuning beat scratch?", "## Figures", "## Downstream: ptb",
        "## How the findings were decided", "## Provenance")]
    assert order == sorted(order)
    first_screen = markdown[:markdown.index("## Summary over models")]
    assert "<details>" not in first_screen and "-finetune-s0" not in first_screen
    assert "**ptbxl → ptb, resnet1d18**: fine-tuning beats scratch at fraction" in first_screen


def test_figure_one_writes_out_a_missing_regime_and_outlines_every_bar(study):
    from ecgbench.results.figures import FigureInputs, transfer_summary_figure
    from ecgbench.results.findings import paired_cells
    from ecgbench.results.record_intervals import BootstrapScores

    records = [r for r in study if not (r["cell"]["regime"] == "linear" and r["cell"]["fraction"] == 1.0)]
    figure = transfer_summary_figure(FigureInputs(records, paired_cells(records), BootstrapScores(RESAMPLES)))
    (axes,) = figure.axes  # one panel: ptbxl -> ptb
    assert [t.get_text() for t in axes.texts] == ["no cell"]  # linear at fraction 1: missing, not a zero
    bars = axes.patches
    assert len(bars) == 5 and all(tuple(bar.get_edgecolor()[:3]) == (0.0, 0.0, 0.0) for bar in bars)
    assert len(axes.lines) > 0 and axes.containers  # error bars of the intervals are drawn


def test_the_compute_figure_charges_each_transfer_cell_its_share_of_the_pretraining():
    from ecgbench.results.figures import amortised_pretrain_seconds

    records = [make_record("ptb", "lstm", f, regime, upstream="ptbxl", pretrain_s=30.0)
               for f in (0.05, 1.0) for regime in ("finetune", "linear")]
    records.append(make_record("ptb", "lstm", 1.0, "finetune", seed=1, upstream="ptbxl", pretrain_s=12.0))
    assert amortised_pretrain_seconds(records) == {("ptbxl", "lstm", 0): 7.5, ("ptbxl", "lstm", 1): 12.0}


def test_a_learning_curve_mean_is_marked_where_runs_stop():
    from ecgbench.results.figures import _mean_curve

    average, shared = _mean_curve([[0.1, 0.2, 0.3], [0.3, 0.4]])
    assert average.tolist() == pytest.approx([0.2, 0.3, 0.3]) and shared == 2
