"""PTB-XL in its PhysioNet layout: ``ptbxl_database.csv``, ``scp_statements.csv`` and WFDB records under
``records500/`` (500 Hz) and ``records100/`` (100 Hz).

Source labels are the diagnostic superclasses (``scp_statements.csv`` column ``diagnostic_class``) of the
record's diagnostic SCP statements with likelihood >= ``min_likelihood``; statements that are not diagnostic
(form, rhythm) give none; a code missing from ``scp_statements.csv`` is passed on as itself, so the label map
reports it as unknown.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

from ecgbench.data.loaders.base import EcgRecordError, Index, Loader, RawRecord, RecordEntry
from ecgbench.data.loaders.wfdb_format import read_wfdb
from ecgbench.data.manifest import DataError

DATABASE = "ptbxl_database.csv"
STATEMENTS = "scp_statements.csv"
_COLUMNS = ("ecg_id", "patient_id", "scp_codes", "strat_fold", "filename_lr", "filename_hr")


def _whole(value: object, column: str) -> int:
    """A whole number of the table (pandas reads a column with one blank or decimal cell as floats); a
    fractional value is an error, never truncated (``strat_fold`` 9.7 is not fold 9)."""
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{column} {value!r} is not a whole number")
    return int(number)


@dataclass(frozen=True)
class PtbxlOptions:
    rate_hz: Literal[100, 500]  # which copy of the records to read
    min_likelihood: float  # diagnostic statements below this likelihood (0-100) give no label


class PtbxlLoader(Loader):
    kind = "ptbxl"
    version = "1"
    Options = PtbxlOptions

    def _read_csv(self, name: str, **kwargs):
        import pandas as pd

        path = self.path(name)
        if not path.is_file():
            raise DataError(f"{path}: missing; it is PTB-XL's index and comes with the dataset")
        try:
            return pd.read_csv(path, **kwargs)
        except Exception as e:  # pandas raises parser, unicode and value errors for one cause
            raise DataError(f"{path}: cannot read it as CSV: {e}") from None

    def superclasses(self) -> dict[str, str]:
        """Diagnostic SCP code -> superclass, from ``scp_statements.csv``; non-diagnostic codes -> ""."""
        statements = self._read_csv(STATEMENTS, index_col=0)
        missing = {"diagnostic", "diagnostic_class"} - set(statements.columns)
        if missing:
            raise DataError(f"{self.path(STATEMENTS)}: lacks columns {sorted(missing)}")
        return {str(code): (str(row.diagnostic_class) if row.diagnostic == 1 else "")
                for code, row in statements.iterrows()}

    def index(self) -> Index:
        database = self._read_csv(DATABASE)
        missing = set(_COLUMNS) - set(database.columns)
        if missing:
            raise DataError(f"{self.path(DATABASE)}: lacks columns {sorted(missing)}")
        superclass = self.superclasses()
        column = "filename_hr" if self.options.rate_hz == 500 else "filename_lr"
        index = Index(entries=[])
        for line, row in enumerate(database.itertuples(index=False), start=2):  # line 1 is the header
            origin = f"{self.path(DATABASE)} line {line}"
            record_id = str(row.ecg_id)
            try:
                record_id = str(_whole(row.ecg_id, "ecg_id"))
                codes = ast.literal_eval(row.scp_codes)
                labels = {superclass.get(code, code) for code, likelihood in codes.items()
                          if code not in superclass or likelihood >= self.options.min_likelihood}
                patient = str(_whole(row.patient_id, "patient_id"))
                fold = _whole(row.strat_fold, "strat_fold")
            except (ValueError, SyntaxError, AttributeError, TypeError) as e:
                index.problems.append(EcgRecordError(record_id, f"{origin}: unreadable row ({e})"))
                continue
            index.entries.append(RecordEntry(record_id, patient, tuple(sorted(labels - {""})),
                                             getattr(row, column), fold, origin))
        return index

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        return (f"{entry.location}.hea", f"{entry.location}.dat")

    def read(self, entry: RecordEntry) -> RawRecord:
        return read_wfdb(self.path(entry.location), entry.record_id)
