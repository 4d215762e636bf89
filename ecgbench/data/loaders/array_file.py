"""Loaders whose signals are one array file of [records, samples, channels]: CODE-test's HDF5 and a user's ``array``.

The array is a ``.npy`` file (memory-mapped) or an HDF5 dataset, opened once per loader (one per worker process)
and checked for its shape before any row is read; row i is record i of the labels table. Every fault names the
file: a missing file, one numpy or h5py cannot read, a missing HDF5 dataset, a shape with the wrong number of
channels, a labels table with another number of rows, a row that cannot be read.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ecgbench.data.loaders.base import EcgRecordError, Loader, MissingFileError
from ecgbench.data.manifest import DataError, ManifestError


class ArrayFileLoader(Loader):
    """A ``Loader`` reading record rows from one array file; a subclass says which file through ``array_source``."""

    _array = None

    @classmethod
    def parse_options(cls, options: dict, where: str):
        """The loader's options; ``units_per_mv`` must be a finite number > 0 (a negative one inverts every
        signal, zero makes every sample infinite)."""
        parsed = super().parse_options(options, where)
        if not (math.isfinite(parsed.units_per_mv) and parsed.units_per_mv > 0):
            raise ManifestError(f"{where} units_per_mv: must be a finite number > 0 (stored value per millivolt), "
                                f"got {parsed.units_per_mv}")
        return parsed

    def array_source(self) -> tuple[str, str, int]:
        """(file relative to the dataset folder, HDF5 dataset name or "" for ``.npy``, channels per sample)."""
        raise NotImplementedError

    @property
    def array_path(self) -> Path:
        return self.path(self.array_source()[0])

    def signals(self, record_id: str):
        """The open array; ``record_id`` is the record that asked (named when the file is missing)."""
        if self._array is None:
            _, dataset, channels = self.array_source()
            self._array = open_signal_array(self.array_path, dataset, channels, record_id)
        return self._array

    def check_rows(self, labels_path: Path, rows: int) -> None:
        """Row i of the labels table labels array row i: the two must have as many rows."""
        check_row_count(labels_path, rows, self.array_path, len(self.signals("index")))

    def row(self, record_id: str, index: int) -> np.ndarray:
        """Array row ``index`` in millivolts (float64): the stored values over ``units_per_mv``."""
        signals = self.signals(record_id)
        try:
            stored = np.asarray(signals[index], dtype=np.float64)
        except (OSError, ValueError, IndexError) as e:
            raise EcgRecordError(record_id, f"cannot read row {index} of {self.array_path}: {e}") from None
        return stored / self.options.units_per_mv

    def record_files(self, entry) -> tuple[str, ...]:
        return (self.array_source()[0],)

    def close(self) -> None:
        if self._array is not None:
            close_signal_array(self._array)
        self._array = None


def open_signal_array(path: Path, hdf5_dataset: str, channels: int, record_id: str):
    """The [records, samples, channels] array of ``path``: ``hdf5_dataset`` of an HDF5 file, else a ``.npy``."""
    if not path.is_file():
        raise MissingFileError(record_id, f"missing signals file {path}")
    try:
        if hdf5_dataset:
            import h5py

            array = h5py.File(path, "r")[hdf5_dataset]
        else:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, KeyError, ValueError) as e:
        what = f"HDF5 dataset {hdf5_dataset!r}" if hdf5_dataset else "the signals"
        raise DataError(f"{path}: cannot read {what}: {type(e).__name__}: {e}") from None
    if array.ndim != 3 or array.shape[2] != channels:
        raise DataError(f"{path}: signals of shape {array.shape}, expected (records, samples, {channels}) with "
                        "channels in the manifest's signal.leads + extra_channels order")
    return array


def close_signal_array(array) -> None:
    """Close the file behind an array of ``open_signal_array``: an HDF5 dataset's; a memory map needs none."""
    if hasattr(array, "file"):
        array.file.close()


def check_row_count(labels_path: Path, rows: int, array_path: Path, held: int) -> None:
    """Row i of the labels table labels array row i: an error naming both files when their counts differ."""
    if held != rows:
        raise DataError(f"{labels_path} has {rows} rows but {array_path} holds {held} records: row i must label "
                        "array row i")
