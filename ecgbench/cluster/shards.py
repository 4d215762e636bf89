"""Cost-balanced, deterministic shards: the same partition on every host, whatever the collection order.

Why our own rather than pytest-split: the partition is needed outside pytest too (``ecgbench grid --shards``
shows it, ``ecgbench submit`` sizes the phases with it) and its costs come from the live cost model, so there
is no durations file to regenerate whenever the profile, the seeds or the selection change. The algorithm is
pytest-split's ``least_duration`` (greedy longest-processing-time-first), with ties broken by key.
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Mapping

_SPEC = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` (1-based, as ``--ecg-shard 2/8`` reads) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "ShardSpec":
        match = _SPEC.match(text.strip())
        if not match or not 1 <= int(match[1]) <= int(match[2]):
            raise ValueError(f"shard must read K/N with 1 <= K <= N (e.g. 2/8), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def partition(costs: Mapping[str, float], count: int) -> list[list[str]]:
    """Split task keys into ``count`` shards of near-equal total cost; each shard lists its keys sorted.

    The most expensive task goes first to the least-loaded shard (lowest index on ties); keys order equal
    costs, so the result depends only on the keys and costs, never on the order they came in.
    """
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    shards: list[list[str]] = [[] for _ in range(count)]
    loads = [(0.0, i) for i in range(count)]
    for key in sorted(costs, key=lambda k: (-costs[k], k)):
        load, i = heapq.heappop(loads)
        shards[i].append(key)
        heapq.heappush(loads, (load + costs[key], i))
    return [sorted(shard) for shard in shards]


def shard_loads(costs: Mapping[str, float], shards: list[list[str]]) -> list[float]:
    return [sum(costs[key] for key in shard) for shard in shards]
