"""The leaderboard's random-feature control: each upstream's linear probe minus the linear probe of the same
model's own frozen initialisation (upstream ``random``), paired by seed on the same test records.

Why: a linear probe on random features can match pre-trained encoders (zackeberger/ecg-fix); only the
difference says what pre-training put into the frozen features.
"""
from __future__ import annotations

from collections import defaultdict

from ecgbench.results.findings import Pair, canonical_order, paired_records
from ecgbench.results.markdown import markdown_table
from ecgbench.results.record_intervals import BootstrapScores, format_interval

RANDOM = "random"  # the study's name of the control upstream (``ecgbench.study.RANDOM_UPSTREAM``)
MISSING = "-"


def random_control_pairs(records: list[dict]) -> list[Pair]:
    """Every ok linear record of a real upstream with the ok linear record from ``random`` of its cell and seed
    (as ``Pair(finetune=upstream's, scratch=random's)``, so the pair's gain is upstream minus random)."""
    return paired_records(records, lambda cell: cell["regime"] == "linear" and cell["upstream"] != RANDOM,
                          lambda cell: cell["regime"] == "linear" and cell["upstream"] == RANDOM)


def random_control_section(records: list[dict], scores: BootstrapScores, metrics: tuple[tuple[str, str], ...],
                           dataset_order: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines of the section; none when the run has no linear probe from ``random``."""
    if not any(r["cell"]["regime"] == "linear" and r["cell"]["upstream"] == RANDOM for r in records):
        return []
    by_cell: dict[tuple, list[Pair]] = defaultdict(list)
    for pair in random_control_pairs(records):
        c = pair.cell
        by_cell[c["downstream"], c["upstream"], float(c["fraction"]), c["model"]].append(pair)
    probes = {(r["cell"]["downstream"], r["cell"]["upstream"], float(r["cell"]["fraction"]), r["cell"]["model"])
              for r in records if r["cell"]["regime"] == "linear" and r["cell"]["upstream"] != RANDOM}
    rows = []
    for downstream in canonical_order({k[0] for k in probes}, dataset_order):
        for upstream in canonical_order({k[1] for k in probes if k[0] == downstream}, dataset_order):
            for key in sorted(k for k in probes if k[:2] == (downstream, upstream)):
                matched = by_cell.get(key, [])
                rows.append([downstream, upstream, f"{key[2]:g}", key[3], len(matched)]
                            + [format_interval(scores.paired_interval(matched, metric), signed=True) if matched
                               else MISSING for metric, _ in metrics])
    lines = ["## Pre-trained vs random features (linear probe)", "",
             "Each upstream's linear probe minus the linear probe of the same model's own frozen initialisation "
             "(upstream `random`), same downstream, fraction and seed; paired bootstrap on the same test records "
             "[95 % CI]. An interval above 0: the pre-trained features carry more than random ones.", ""]
    if not rows:
        return lines + ["No linear probe of another upstream to set beside the random control.", ""]
    headers = ["downstream", "upstream", "fraction", "model", "paired seeds", *(label for _, label in metrics)]
    return lines + [markdown_table(rows, headers), ""]
