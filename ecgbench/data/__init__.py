"""Datasets: every source becomes one ``PreparedDataset``; the layers above never branch on the source."""
from __future__ import annotations

from pathlib import Path

from ecgbench.data.classes import DATASET_CLASSES, DOWNSTREAMS, UPSTREAMS
from ecgbench.data.dataset import PreparedDataset

SYNTHETIC_DATA_SEED = 0  # a dataset is a fixed thing: cell seeds change init, subsets and order, not the data


def open_dataset(name: str, *, synthetic_records: int, cache_dir: Path, data_root: Path | None = None
                 ) -> PreparedDataset:
    """The prepared dataset ``name``: real data when ``data_root/name`` exists, else its synthetic stand-in."""
    if name not in DATASET_CLASSES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASET_CLASSES)}")
    if data_root is not None and (Path(data_root) / name).exists():
        raise NotImplementedError(
            f"{Path(data_root) / name}: reading real {name} data is not supported by this version of ecgbench; "
            "remove the folder or the --ecg-data option to use the synthetic stand-in")
    from ecgbench.data.synthetic import load_synthetic

    return load_synthetic(name, synthetic_records, SYNTHETIC_DATA_SEED, Path(cache_dir))


__all__ = ["PreparedDataset", "DATASET_CLASSES", "UPSTREAMS", "DOWNSTREAMS", "open_dataset"]
