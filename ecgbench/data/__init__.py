"""Datasets: every source becomes one ``PreparedDataset``; the layers above never branch on the source."""
from __future__ import annotations

from pathlib import Path

from ecgbench.data.classes import DATASET_CLASSES, DOWNSTREAMS, UPSTREAMS
from ecgbench.data.dataset import PreparedDataset
from ecgbench.data.prepare import load
from ecgbench.data.prepare_spec import prepare_at
from ecgbench.data.registry import (
    DATASETS,
    DatasetFilesMissing,
    get_manifest,
    has_files,
    has_standin,
    missing_files,
    register_dataset,
    register_manifest_file,
)
from ecgbench.inputs import DEFAULT_INPUT, InputSpec

SYNTHETIC_DATA_SEED = 0  # a dataset is a fixed thing: cell seeds change init, subsets and order, not the data


def open_dataset(name: str, *, synthetic_records: int | None, cache_dir: Path, data_root: Path | None = None,
                 spec: InputSpec = DEFAULT_INPUT) -> PreparedDataset:
    """The prepared dataset ``name`` at the input ``spec``: real data when ``data_root/name`` exists, else its
    synthetic stand-in (``synthetic_records`` of them); ``DatasetFilesMissing`` for a dataset with neither.
    Records, labels and split are the same at every spec."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if has_files(name, data_root):
        return prepare_at(name, Path(data_root), spec, cache_dir=Path(cache_dir)).dataset
    if (reason := missing_files(name, data_root)) is not None:
        raise DatasetFilesMissing(reason)
    if synthetic_records is None:
        raise ValueError(f"dataset {name}: its synthetic stand-in needs a record count (the profile's "
                         "synthetic_records)")
    from ecgbench.data.synthetic import load_synthetic

    return load_synthetic(name, synthetic_records, SYNTHETIC_DATA_SEED, Path(cache_dir), spec)


__all__ = ["DATASETS", "DATASET_CLASSES", "DOWNSTREAMS", "DatasetFilesMissing", "PreparedDataset", "UPSTREAMS",
           "get_manifest", "has_files", "has_standin", "load", "missing_files", "open_dataset", "prepare_at",
           "register_dataset", "register_manifest_file"]
