"""A stored record's test metrics, recomputed from its own stored predictions when it is read.

The content digest catches an edit that was not resealed; this catches one that was: a hand-changed metric
with ``content_sha256`` recomputed would print a point its own interval (bootstrapped from the predictions)
does not contain. The runner computes the metrics from exactly the stored values (``stored_probabilities``),
so a true record agrees to rounding; the intervals need no check of their own, as every report draws them
from the same predictions. The ranking metrics are recomputed without sklearn's per-call checks (the same values
to rounding), so a record costs about a millisecond to check (see the README).
"""
from __future__ import annotations

import math
from typing import Any

from ecgbench.metrics import classification_metrics, rank_auroc, step_average_precision
from ecgbench.results.schema import ResultRecordError

TOLERANCE = 1e-9  # relative: the metrics are recomputed from the same float64 values, in the same order
LISTED = 3  # disagreeing values named in the error


def _disagreements(stored: Any, computed: Any, path: str) -> list[str]:
    if isinstance(computed, dict):
        if not isinstance(stored, dict) or set(stored) != set(computed):
            return [f"{path} has keys {sorted(stored) if isinstance(stored, dict) else stored!r}, "
                    f"expected {sorted(computed)}"]
        return [line for key in sorted(computed)
                for line in _disagreements(stored[key], computed[key], f"{path}.{key}")]
    if computed is None or stored is None or isinstance(stored, bool) or not isinstance(stored, (int, float)):
        return [] if stored == computed else [f"{path} is {stored!r}, its predictions give {computed!r}"]
    if math.isclose(stored, computed, rel_tol=TOLERANCE, abs_tol=1e-12):
        return []
    return [f"{path} is {stored!r}, its predictions give {computed!r}"]


def check_metrics(record: dict, where: str) -> None:
    """Raise ``ResultRecordError`` naming ``where`` when an ok record's ``test`` metrics are not those of its
    stored predictions (or the predictions cannot give any)."""
    predictions = record.get("predictions")
    if record["status"] != "ok" or not predictions:
        return
    classes = (record.get("identity") or {}).get("classes")
    try:
        computed = classification_metrics(predictions["y_true"], predictions["y_prob"], tuple(classes or ()),
                                          auroc=rank_auroc, auprc=step_average_precision)
    except (KeyError, TypeError, ValueError) as e:
        raise ResultRecordError(f"{where}: its test metrics cannot be recomputed from its stored predictions "
                                f"({type(e).__name__}: {e}): not trusted") from None
    wrong = _disagreements(record["test"], computed, "test")
    if wrong:
        more = f" (and {len(wrong) - LISTED} more)" if len(wrong) > LISTED else ""
        raise ResultRecordError(f"{where}: {'; '.join(wrong[:LISTED])}{more}: its metrics are not those of its own "
                                "stored predictions (edited after it was made?): not trusted")
