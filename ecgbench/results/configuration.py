"""Which configuration (profile and hyper-parameters) made a record, and which records one leaderboard may show.

Records of another configuration are never overwritten: the configuration's tag is part of every record's,
score record's and checkpoint's file name, so a changed ``train.lr`` writes new files beside the old ones. The
old ones are stale, as records of other code are (``ecgbench.codeid``): a leaderboard leaves them out and
counts them, unless asked to keep them; then a cell shows its current configuration's record when there is
one, and never two records of one cell, so a table never averages two configurations as if they were seeds.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any, Callable

TAG_LENGTH = 8
Expected = Callable[[dict], Any]  # a record -> the hyper-parameters its cell has under the current profile


def configuration_tag(profile: str, hyperparameters: Any) -> str:
    """8 hex digits naming a configuration in file names: the profile and the hyper-parameters of a cell."""
    text = json.dumps({"profile": profile, "hyperparameters": hyperparameters}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:TAG_LENGTH]


def record_hyperparameters(record: dict) -> Any:
    """The hyper-parameters a record was made with (None for a record that does not say)."""
    identity = record.get("identity")
    return identity.get("hyperparameters") if isinstance(identity, dict) else None


def record_tag(record: dict) -> str:
    """The configuration tag of a stored record, as its file name carries it."""
    return configuration_tag(record["profile"], record_hyperparameters(record))


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix or "hyperparameters": value}
    flat = {}
    for key, item in value.items():
        flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(old: Any, new: Any) -> list[str]:
    """``train.lr 0.001 (now 0.01)`` for each setting that differs between two hyper-parameter tables."""
    was, now = _flat(old), _flat(new)
    return [f"{key} {was.get(key, 'unset')} (now {now.get(key, 'unset')})"
            for key in sorted(set(was) | set(now)) if was.get(key) != now.get(key)]


def current_configuration(records: list[dict], expected: Expected, keep_stale: bool,
                          include_option: str) -> tuple[list[dict], str | None]:
    """The records a leaderboard may show, and a note when records of another configuration were found.

    ``expected(record)`` gives the hyper-parameters the record's cell has now. Without ``keep_stale`` the
    others are left out and counted; with it, a cell without a current record shows its newest other one.
    """
    current = [r for r in records if record_hyperparameters(r) == expected(r)]
    stale = [r for r in records if record_hyperparameters(r) != expected(r)]
    if not stale:
        return records, None
    changed = Counter("; ".join(differences(record_hyperparameters(r), expected(r))) for r in stale)
    what = ", ".join(f"{change} ({n})" for change, n in sorted(changed.items()))
    if not keep_stale:
        return current, (f"excluded {len(stale)} record(s) of another configuration than the profile's current "
                         f"one: {what}; re-run those cells, or include them with {include_option}")
    shown = {(r["profile"], r["key"]) for r in current}
    newest: dict[tuple[str, str], dict] = {}
    for record in sorted(stale, key=lambda r: (r.get("created") or "", record_tag(r))):
        if (record["profile"], record["key"]) not in shown:
            newest[(record["profile"], record["key"])] = record
    kept = sorted([*current, *newest.values()], key=lambda r: r["key"])
    return kept, (f"included {len(newest)} record(s) of another configuration than the profile's current one "
                  f"({include_option}; {len(stale) - len(newest)} more left out: their cells have a current "
                  f"record): {what}")
