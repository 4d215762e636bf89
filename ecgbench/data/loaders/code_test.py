"""CODE-test (Ribeiro et al. 2020): 827 tracings in one HDF5 array, labels in ``annotations/gold_standard.csv``.

``ecg_tracings.hdf5`` holds dataset ``tracings`` of shape (827, 4096, 12), float32, 400 Hz, each 7-10 s
recording zero-padded to 4096 samples; row i of ``gold_standard.csv`` labels tracing i. Each tracing comes from
a different patient. The source labels of a record are the names of its columns that hold 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgbench.data.loaders.base import Index, Loader, MissingFileError, RawRecord, RecordEntry, EcgRecordError
from ecgbench.data.manifest import DataError


@dataclass(frozen=True)
class CodeTestOptions:
    tracings_file: str
    tracings_dataset: str
    labels_file: str
    units_per_mv: float  # stored value / units_per_mv = millivolts


class CodeTestLoader(Loader):
    kind = "code_test"
    version = "1"
    Options = CodeTestOptions

    _tracings = None  # the open HDF5 dataset, per loader (one per worker process)

    def _open(self, record_id: str):
        if self._tracings is None:
            import h5py

            path = self.path(self.options.tracings_file)
            if not path.is_file():
                raise MissingFileError(record_id, f"missing {path}: CODE-test's signals ({self.options.tracings_dataset})")
            try:
                tracings = h5py.File(path, "r")[self.options.tracings_dataset]
            except (OSError, KeyError) as e:
                raise DataError(f"{path}: cannot open dataset {self.options.tracings_dataset!r}: {e}") from None
            leads = len(self.manifest.signal.leads)
            if tracings.ndim != 3 or tracings.shape[2] != leads:
                raise DataError(f"{path}: {self.options.tracings_dataset} has shape {tracings.shape}, expected "
                                f"(records, samples, {leads})")
            self._tracings = tracings
        return self._tracings

    def index(self) -> Index:
        import pandas as pd

        path = self.path(self.options.labels_file)
        if not path.is_file():
            raise DataError(f"{path}: missing; CODE-test's labels (row i = tracing i)")
        table = pd.read_csv(path)
        values = table.to_numpy()
        if not np.isin(values, (0, 1)).all():
            bad_row = int(np.flatnonzero(~np.isin(values, (0, 1)).all(axis=1))[0])
            raise DataError(f"{path}: row {bad_row} holds values other than 0/1: {values[bad_row].tolist()}")
        if self.path(self.options.tracings_file).is_file() and len(self._open("index")) != len(table):
            raise DataError(f"{path} has {len(table)} rows but {self.path(self.options.tracings_file)} holds "
                            f"{len(self._open('index'))} tracings: row i must label tracing i")
        columns = np.asarray(table.columns)
        return Index(entries=[RecordEntry(str(i), str(i), tuple(columns[row == 1]), str(i),
                                          origin=f"{path} line {i + 2}")
                              for i, row in enumerate(values)],
                     notes=["each tracing comes from a different patient (Ribeiro et al. 2020)"])

    def close(self) -> None:
        if self._tracings is not None:
            self._tracings.file.close()
            self._tracings = None

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        return (self.options.tracings_file,)

    def read(self, entry: RecordEntry) -> RawRecord:
        tracings = self._open(entry.record_id)
        try:
            signal = np.asarray(tracings[int(entry.location)], dtype=np.float64)
        except (OSError, ValueError, IndexError) as e:
            raise EcgRecordError(entry.record_id, f"cannot read tracing {entry.location} of "
                                               f"{self.path(self.options.tracings_file)}: {e}") from None
        return RawRecord(signal / self.options.units_per_mv, self.manifest.signal.native_rate_hz,
                         self.manifest.signal.leads)
