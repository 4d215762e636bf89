"""Result records, their store, saved runs, comparisons, reports; ``to_frame`` for analysis in pandas."""
from __future__ import annotations

__all__ = ["to_frame"]


def __getattr__(name: str):
    """``to_frame`` is imported on first use: pandas and the report stack stay out of every other import."""
    if name == "to_frame":
        from ecgbench.results.frame import to_frame
        return to_frame
    raise AttributeError(f"module 'ecgbench.results' has no attribute {name!r}")
