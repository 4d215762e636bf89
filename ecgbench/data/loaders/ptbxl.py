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

from ecgbench.data.folder_files import inside_path
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


def _scp_codes(text: object) -> dict[str, float]:
    """``scp_codes``: a dict of SCP code -> likelihood (0-100), as PTB-XL writes it (``{'NORM': 100.0}``)."""
    codes = ast.literal_eval(text) if isinstance(text, str) else text
    if not isinstance(codes, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in codes.items()):
        raise ValueError(f"scp_codes {text!r} is not a dict of SCP code -> likelihood number, such as "
                         "{'NORM': 100.0}")
    return codes


@dataclass(frozen=True)
class PtbxlOptions:
    rate_hz: Literal[100, 500]  # which copy of the records to read
    min_likelihood: float  # diagnostic statements below this likelihood (0-100) give no label


class PtbxlLoader(Loader):
    kind = "ptbxl"
    version = "1"
    Options = PtbxlOptions

    def _read_csv(self, name: str, columns: set[str], **kwargs):
        """The table ``name`` with at least ``columns``; a missing, unreadable or ';'-separated file, or one
        lacking a column, is an error naming it."""
        import pandas as pd

        path = self.path(name)
        if not path.is_file():
            raise DataError(f"{path}: missing; it is PTB-XL's index and comes with the dataset")
        try:
            table = pd.read_csv(path, **kwargs)
        except Exception as e:  # pandas raises parser, unicode and value errors for one cause
            raise DataError(f"{path}: cannot read it as CSV: {e}") from None
        missing = columns - set(table.columns) - {table.index.name}
        if missing:
            names = [str(table.index.name), *map(str, table.columns)]
            hint = (" (the file is ';'-separated; PhysioNet's release separates columns with ',')"
                    if len(table.columns) <= 1 and any(";" in name for name in names) else "")
            raise DataError(f"{path}: lacks columns {sorted(missing)}{hint}")
        return table

    def superclasses(self) -> dict[str, str]:
        """Diagnostic SCP code -> superclass, from ``scp_statements.csv``; non-diagnostic codes -> "". A
        diagnostic statement with a blank class is an error: its records would get a class named "nan"."""
        statements = self._read_csv(STATEMENTS, {"diagnostic", "diagnostic_class"}, index_col=0)
        classes = {}
        for line, (code, row) in enumerate(statements.iterrows(), start=2):
            if row.diagnostic != 1:
                classes[str(code)] = ""
                continue
            if not (isinstance(row.diagnostic_class, str) and row.diagnostic_class.strip()):
                raise DataError(f"{self.path(STATEMENTS)} line {line}: diagnostic statement {code!r} has a blank "
                                "diagnostic_class (every statement with diagnostic = 1 needs its superclass)")
            classes[str(code)] = row.diagnostic_class.strip()
        return classes

    def index(self) -> Index:
        database = self._read_csv(DATABASE, set(_COLUMNS))
        superclass = self.superclasses()
        column = "filename_hr" if self.options.rate_hz == 500 else "filename_lr"
        index = Index(entries=[])
        for line, row in enumerate(database.itertuples(index=False), start=2):  # line 1 is the header
            origin = f"{self.path(DATABASE)} line {line}"
            record_id = str(row.ecg_id)
            try:
                record_id = str(_whole(row.ecg_id, "ecg_id"))
                codes = _scp_codes(row.scp_codes)
                labels = {superclass.get(code, code) for code, likelihood in codes.items()
                          if code not in superclass or likelihood >= self.options.min_likelihood}
                patient = str(_whole(row.patient_id, "patient_id"))
                fold = _whole(row.strat_fold, "strat_fold")
            except (ValueError, SyntaxError, AttributeError, TypeError) as e:
                index.problems.append(EcgRecordError(record_id, f"{origin}: unreadable row ({e})"))
                continue
            location = inside_path(str(getattr(row, column)), f"{origin}: {column}")
            index.entries.append(RecordEntry(record_id, patient, tuple(sorted(labels - {""})), location, fold,
                                             origin))
        return index

    def record_files(self, entry: RecordEntry) -> tuple[str, ...]:
        return (f"{entry.location}.hea", f"{entry.location}.dat")

    def read(self, entry: RecordEntry) -> RawRecord:
        return read_wfdb(self.path(entry.location), entry.record_id)
