"""The leaderboard's overlap section: per upstream and downstream, the recordings the upstream was trained on
that the downstream's validation/test splits hold (found by content fingerprint), and what the guard did. It
says "none found" only where the guard checked and found none; an upstream whose training data are unknown, or
could only partly be compared, reads "unknown" (naming what was not compared); transfer records made before the
guard read "not checked"; the random-feature control has seen no recording."""
from __future__ import annotations

from collections import defaultdict

from ecgbench.results.markdown import markdown_table
from ecgbench.results.random_control import RANDOM

NOT_CHECKED = "not checked"
NOTHING_SEEN = "none: random features saw no recording"


def overlap_section(records: list[dict]) -> list[str]:
    """Markdown lines of the section (none without transfer records)."""
    pairs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        if record["cell"]["upstream"] is not None:
            pairs[(record["cell"]["upstream"], record["cell"]["downstream"])].append(record)
    if not pairs:
        return []
    rows = []
    for (upstream, downstream), group in sorted(pairs.items()):
        found = [r["overlap"] for r in group if r.get("overlap")]
        unguarded = NOTHING_SEEN if upstream == RANDOM else NOT_CHECKED
        decisions = sorted({_decision(o) for o in found}) + ([unguarded] if len(found) < len(group) else [])
        shared = {split: max((o["shared"].get(split, 0) for o in found if o["checked"]), default=None)
                  for split in ("val", "test")}
        counts = " / ".join("-" if n is None else str(n) for n in shared.values())
        modes = ", ".join(sorted({o["mode"] for o in found})) or "-"
        rows.append([upstream, downstream, modes, counts, ", ".join(decisions), str(len(group))])
    table = markdown_table(rows, ["upstream", "downstream", "guard", "shared val / test", "decision", "cells"])
    return ["## Overlap between upstream training data and downstream evaluation data", "",
            ("Recordings an upstream checkpoint was trained on (its training and validation splits) that the "
             "downstream's validation or test split holds, found by content fingerprint (README: what counts as "
             "the same recording)."), "", table, ""]


def _decision(overlap: dict) -> str:
    """A record's decision; an "unknown" one names the datasets that could not be compared."""
    not_compared = overlap.get("not_compared", [])
    if overlap["decision"] == "unknown" and not_compared:
        return f"unknown (not compared: {', '.join(not_compared)})"
    return overlap["decision"]
