"""Datasets: every source becomes one ``PreparedDataset``; the layers above never branch on the source."""
from __future__ import annotations

from pathlib import Path

from ecgbench.data.classes import DATASET_CLASSES, DOWNSTREAMS, UPSTREAMS
from ecgbench.data.dataset import PreparedDataset
from ecgbench.data.manifest import DATASETS, register_dataset
from ecgbench.data.prepare import load

SYNTHETIC_DATA_SEED = 0  # a dataset is a fixed thing: cell seeds change init, subsets and order, not the data


def open_dataset(name: str, *, synthetic_records: int, cache_dir: Path, data_root: Path | None = None
                 ) -> PreparedDataset:
    """The prepared dataset ``name``: real data when ``data_root/name`` exists, else its synthetic stand-in."""
    if name not in DATASET_CLASSES and name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if data_root is not None and (Path(data_root) / name).exists():
        return load(name, Path(data_root), cache_dir=Path(cache_dir))
    from ecgbench.data.synthetic import load_synthetic

    return load_synthetic(name, synthetic_records, SYNTHETIC_DATA_SEED, Path(cache_dir))


__all__ = ["PreparedDataset", "DATASET_CLASSES", "UPSTREAMS", "DOWNSTREAMS", "open_dataset", "load",
           "register_dataset"]
