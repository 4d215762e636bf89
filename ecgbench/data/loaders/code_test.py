"""CODE-test (Ribeiro et al. 2020): 827 tracings in one HDF5 array, labels in ``annotations/gold_standard.csv``.

``ecg_tracings.hdf5`` holds dataset ``tracings`` of shape (827, 4096, 12), float32, 400 Hz, each 7-10 s
recording zero-padded to 4096 samples; row i of ``gold_standard.csv`` labels tracing i. Each tracing comes from
a different patient. The source labels of a record are the names of its columns that hold 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgbench.data.loaders.array_file import ArrayFileLoader
from ecgbench.data.loaders.base import Index, RawRecord, RecordEntry
from ecgbench.data.manifest import DataError


def _check_label_columns(table, path) -> None:
    """Every column is a 0/1 label column: an index column (``to_csv`` without ``index=False`` writes one,
    unnamed, holding 0, 1, 2, ...) would be read as a class, or as a table of values other than 0/1."""
    for number, column in enumerate(table.columns, start=1):
        values = table[column].to_numpy()
        unnamed = str(column).startswith("Unnamed:") or not str(column).strip()
        counting = len(values) > 2 and np.array_equal(values, np.arange(values[0], values[0] + len(values)))
        if unnamed or counting:
            name = "unnamed" if unnamed else f"{column!r}, counting rows"
            raise DataError(f"{path}: column {number} ({name}: {values[:3].tolist()}, ...) is an index column, not "
                            "a label; CODE-test's gold_standard.csv holds only the 0/1 label columns "
                            "(drop the index column, or write the table with index=False)")


@dataclass(frozen=True)
class CodeTestOptions:
    tracings_file: str
    tracings_dataset: str
    labels_file: str
    units_per_mv: float  # stored value / units_per_mv = millivolts


class CodeTestLoader(ArrayFileLoader):
    kind = "code_test"
    version = "1"
    Options = CodeTestOptions

    def array_source(self) -> tuple[str, str, int]:
        return self.options.tracings_file, self.options.tracings_dataset, len(self.manifest.signal.leads)

    def index(self) -> Index:
        import pandas as pd

        path = self.path(self.options.labels_file)
        if not path.is_file():
            raise DataError(f"{path}: missing; CODE-test's labels (row i = tracing i)")
        table = pd.read_csv(path)
        _check_label_columns(table, path)
        values = table.to_numpy()
        if not np.isin(values, (0, 1)).all():
            bad_row = int(np.flatnonzero(~np.isin(values, (0, 1)).all(axis=1))[0])
            raise DataError(f"{path}: row {bad_row} holds values other than 0/1: {values[bad_row].tolist()}")
        if self.array_path.is_file():
            self.check_rows(path, len(table))
        columns = np.asarray(table.columns)
        return Index(entries=[RecordEntry(str(i), str(i), tuple(columns[row == 1]), str(i),
                                          origin=f"{path} line {i + 2}")
                              for i, row in enumerate(values)],
                     notes=["each tracing comes from a different patient (Ribeiro et al. 2020)"])

    def read(self, entry: RecordEntry) -> RawRecord:
        return RawRecord(self.row(entry.record_id, int(entry.location)), self.manifest.signal.native_rate_hz,
                         self.manifest.signal.leads)
