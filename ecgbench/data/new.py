"""``ecgbench data new NAME --root DIR --labels FILE``: a complete, editable manifest for a researcher's own data.

It reads what the files say (with ``wfdb``: rates, lead names, lengths; from the CSV: classes, patients, splits)
instead of asking, checks what would later fail (missing or unknown leads, labels naming absent records,
records without labels), and writes a manifest that ``checked_manifest`` accepts as it is.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ecgbench.data.dataset import LEADS
from ecgbench.data.loaders.array_file import check_row_count, close_signal_array, open_signal_array
from ecgbench.data.loaders.labelled import check_rows_match_records, read_label_table
from ecgbench.data.manifest import DataError

STANDARD = {lead.lower(): lead for lead in LEADS}


@dataclass(frozen=True)
class Survey:
    native_rate_hz: float  # the most common rate
    rates_hz: tuple[float, ...]
    leads: tuple[str, ...]  # the records' own spelling of the 12 standard leads, in standard order
    durations_s: tuple[float, float]
    classes: dict[str, int]  # class -> records, most frequent first
    records: int
    has_patients: bool
    has_split: bool


def _leads(names: list[str], where: str) -> tuple[str, ...]:
    unknown = [n for n in names if n.lower() not in STANDARD]
    missing = [lead for lead in LEADS if lead.lower() not in {n.lower() for n in names}]
    if unknown or missing:
        raise DataError(f"{where}: signals {names}: unknown lead names {unknown}, missing leads {missing} "
                        f"(ecgbench needs the 12 standard leads {list(LEADS)}, named so)")
    by_key = {n.lower(): n for n in names}
    return tuple(by_key[lead.lower()] for lead in LEADS)


def survey_wfdb(folder: Path, labels_file: Path) -> Survey:
    """What the records and the labels CSV hold; the first problem found is an error naming its file or row."""
    import wfdb

    rows, _ = read_label_table(labels_file)
    check_rows_match_records(folder, rows, labels_file)
    rates, lengths, spellings = Counter(), [], set()
    for row in rows:
        header = folder / row.record
        try:
            record = wfdb.rdheader(str(header))
        except Exception as e:  # wfdb raises many types for an unreadable header
            raise DataError(f"{header}.hea ({row.origin}): wfdb cannot read the header: {e}") from None
        spellings.add(_leads(list(record.sig_name or []), f"{header}.hea"))
        rates[float(record.fs)] += 1
        lengths.append(record.sig_len / record.fs)
    if len(spellings) > 1:
        raise DataError(f"{folder}: records spell the leads in different ways {sorted(spellings)}: rename them alike")
    return Survey(rates.most_common(1)[0][0], tuple(sorted(rates)), spellings.pop(), (min(lengths), max(lengths)),
                  _classes(rows), len(rows),
                  any(r.patient != r.record for r in rows), rows[0].fold is not None)


def survey_array(folder: Path, labels_file: Path, signals_file: Path, hdf5_dataset: str, rate_hz: float) -> Survey:
    rows, _ = read_label_table(labels_file)
    array = open_signal_array(signals_file, hdf5_dataset, len(LEADS), "index")
    shape = array.shape
    close_signal_array(array)
    check_row_count(labels_file, len(rows), signals_file, shape[0])
    return Survey(rate_hz, (rate_hz,), LEADS, (shape[1] / rate_hz,) * 2, _classes(rows), len(rows),
                  any(r.patient != r.record for r in rows), rows[0].fold is not None)


def _classes(rows) -> dict[str, int]:
    counts = Counter(label for row in rows for label in set(row.labels))
    if not counts:
        raise DataError("the labels CSV names no class at all")
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _toml(value) -> str:
    return json.dumps(value)  # TOML strings, numbers and arrays of them are JSON's


def manifest_text(name: str, survey: Survey, fmt: dict[str, object]) -> str:
    """A complete manifest; comments say what each choice means, so the user can edit it."""
    split = ('rule = "folds"  # the CSV\'s split column: train = 1, val = 2, test = 3\ntrain = [1]\nval = [2]\n'
             'test = [3]') if survey.has_split else (
        f'rule = "stratified"  # seeded multi-label stratified split\nseed = 0\ntrain = 0.7\nval = 0.15\n'
        f'test = 0.15\ngroup_by_patient = {_toml(survey.has_patients)}  # records of one patient share a split')
    options = "\n".join(f"{k} = {_toml(v)}" for k, v in fmt["options"].items())
    classes = list(survey.classes)
    label_map = "\n".join(f"{_toml(c) if not c.isidentifier() else c} = [{_toml(c)}]  # {n} records"
                          for c, n in survey.classes.items())
    low, high = survey.durations_s
    return f"""# {name}: written by `ecgbench data new`; edit freely (schema: ecgbench/data/manifest.py).
name = {_toml(name)}
title = {_toml(name)}
version = "1"
licence = "unknown"
citation = ""
record_count = {survey.records}
bad_records = "error"  # "skip": leave out (and count) records that cannot be read
classes = {_toml(classes)}

[source]
homepage = ""
downloads = []
layout = "{name}/: the records and {fmt['labels_file']}, as listed in it"

[[files]]
path = {_toml(fmt['labels_file'])}
sha256 = "unknown"

[format]
kind = {_toml(fmt['kind'])}

[format.options]
{options}

[signal]
native_rate_hz = {float(survey.native_rate_hz)}
rates_hz = {_toml([float(r) for r in survey.rates_hz])}
leads = {_toml(list(survey.leads))}
extra_channels = []
duration_s = [{max(0.0, round(low * 0.9, 3))}, {round(high * 1.1, 3)}]  # found {low:g}-{high:g} s, with a margin
plausible_peak_mv = [0.05, 50.0]  # the largest deviation from baseline a record may have (catches wrong gains)

[labels]
unmapped = "keep"  # a record with no class: an all-zero row ("drop" leaves it out)
unknown = "error"
none_class = ""
ignore = []

[labels.map]  # class = [labels in the CSV]; list several labels to merge them into one class
{label_map}

[split]
{split}

[preprocess]  # the study's input: 12 leads, 100 Hz, 10 s
resample = "polyphase"
rate_hz = 100.0
window_s = 10.0
crop = "start"
pad = "end"
scaling = "none"

[quality]  # keep / drop / error for records that read cleanly but are suspect
flat_lead = "keep"
clipped = "keep"
padded = "keep"
cropped = "keep"
"""


def usage(name: str, root: Path, out: Path) -> str:
    return f"""wrote {out}. Use it:
  ecgbench data info {name} --root {root} --ecg-manifest {out}      # counts per class and split
  pytest --pyargs ecgbench.grid --ecg-manifest {out} --ecg-data {root} --ecg-profiles my_profiles.toml
with my_profiles.toml naming {name} as a downstream (or upstream), e.g. downstreams = ["{name}"]. To share it,
ship the manifest in your package and declare it: [project.entry-points."ecgbench.datasets"] {name} = "pkg.module:MANIFEST"
(MANIFEST: the manifest's path)."""  # noqa: E501 (the entry-point line is copied as one line)
