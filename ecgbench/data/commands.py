"""``ecgbench data fetch|verify|prepare|info NAME --root DIR``: the real datasets from the command line.

``--root`` is the folder with one sub-folder per dataset (the same folder pytest's ``--ecg-data`` takes).
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from ecgbench.data.dataset import SPLITS
from ecgbench.data.manifest import DataError
from ecgbench.data.root import DataRootError, check_folder

_MAX_LISTED = 5  # record ids shown per drop reason


def _manifest(args: argparse.Namespace):
    from ecgbench.data.registry import get_manifest

    return get_manifest(args.name)


def _fetch(args: argparse.Namespace) -> int:
    from ecgbench.data.fetch import fetch

    result = fetch(_manifest(args), args.root / args.name, timeout=args.timeout)
    print(result.report())
    return 0 if result.ok else 1


def _verify(args: argparse.Namespace) -> int:
    from ecgbench.data.fetch import verify_copy

    result = verify_copy(_manifest(args), args.root / args.name)
    print(result.report())
    return 0 if result.ok else 1


def _prepared(args: argparse.Namespace):
    from ecgbench.data.prepare import prepare

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare(args.name, args.root, cache_dir=args.cache, limit=args.limit, workers=args.workers,
                           allow_missing=args.allow_missing)
    for warning in caught:
        print(f"warning: {warning.message}")
    return prepared


def _prepare(args: argparse.Namespace) -> int:
    prepared = _prepared(args)
    info = prepared.info
    if prepared.built:
        print(f"prepared {info['records']} records of {args.name} in {info['seconds']:.1f} s "
              f"({info['records_per_second']:.1f} records/s, {info['workers']} workers)")
    else:
        print(f"already prepared: nothing to do ({info['records']} records)")
    print(f"{prepared.folder}\ndigest {info['digest']}")
    return 0


def class_split_table(labels: np.ndarray, split: np.ndarray, classes: tuple[str, ...]) -> list[list]:
    """Rows ``class, train, val, test, all`` of positive counts, then a ``records`` row."""
    rows = [[name, *(int(labels[split == s, c].sum()) for s in SPLITS), int(labels[:, c].sum())]
            for c, name in enumerate(classes)]
    return rows + [["records", *(int((split == s).sum()) for s in SPLITS), len(split)]]


def _info(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    prepared = _prepared(args)
    info, ds = prepared.info, prepared.dataset
    print(f"{info['name']}: {info['title']} {info['version']}, from {info['source']}")
    print(f"prepared: {prepared.folder}")
    print(f"digest {info['digest']} (manifest {info['manifest_digest']}, loader {info['loader']}, scaling "
          f"{info['scaling']}{', limit ' + str(info['limit']) if info['limit'] else ''})\n")
    print(tabulate(class_split_table(np.asarray(ds.labels), ds.split, ds.classes),
                   headers=["class", *SPLITS, "all"], tablefmt="github"))
    print(f"\n{info['records']} records kept of {info['indexed']} indexed; {info['without_class']} kept without "
          f"a class; {len(info['dropped'])} dropped")
    for reason, count in info["dropped_by_reason"].items():
        ids = [d["record_id"] for d in info["dropped"] if d["reason"] == reason]
        print(f"  dropped {count}: {reason} ({', '.join(ids[:_MAX_LISTED])}{', ...' if count > _MAX_LISTED else ''})")
    for flag, found in info["quality"].items():
        ids = found["record_ids"]
        print(f"  quality {flag}: {found['records']} records (rule {found['rule']})"
              + (f" ({', '.join(ids[:_MAX_LISTED])}{', ...' if len(ids) > _MAX_LISTED else ''})" if ids else ""))
    for line in info["copy_problems"]:
        print(f"copy: {line}")
    for note in info["notes"]:
        print(f"note: {note}")
    return 0


def _inside(path: Path, folder: Path, what: str) -> str:
    """``path`` relative to the dataset folder (manifests name files so, to stay valid when the folder moves)."""
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        raise DataError(f"{path}: the {what} must be inside the dataset folder {folder}: move it there") from None


LOWEST_USEFUL_RATE_HZ = 50


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (a rate of 0 or nan, a negative scale are usage errors)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _new(args: argparse.Namespace) -> int:
    from ecgbench.data.new import manifest_text, merged_spellings, survey_array, survey_wfdb, usage
    from ecgbench.data.registry import checked_manifest

    folder = args.root / args.name
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; put the records of {args.name} there (--root is the folder "
                        "holding one sub-folder per dataset)")
    labels = _inside(args.labels, folder, "labels CSV")
    if args.format == "wfdb":
        survey = survey_wfdb(folder, folder / labels)
        fmt = {"kind": "wfdb", "labels_file": labels, "options": {"labels_file": labels}}
    else:
        if args.signals is None or args.rate is None:
            raise DataError("--format array needs --signals FILE (.npy or HDF5) and --rate HZ")
        signals = _inside(args.signals, folder, "signals file")
        survey = survey_array(folder, folder / labels, folder / signals, args.hdf5_dataset, args.rate)
        fmt = {"kind": "array", "labels_file": labels,
               "options": {"signals_file": signals, "hdf5_dataset": args.hdf5_dataset,
                           "units_per_mv": args.units_per_mv, "labels_file": labels}}
    out = args.out or Path(f"{args.name}.toml")
    if out.exists() and not args.force:
        raise DataError(f"{out} exists: choose another --out or pass --force")
    staged = out.with_name(f".{out.name}.new")  # checked before it replaces anything: no broken manifest is left
    staged.write_text(manifest_text(args.name, survey, fmt))
    try:
        model_rate = checked_manifest(staged).preprocess.rate_hz
    except DataError as e:
        staged.unlink()
        raise DataError(f"the manifest for {out} would not load: {e}") from None
    staged.replace(out)
    lowest = min(survey.rates_hz)
    if lowest < model_rate:
        print(f"warning: {args.name}: records at {lowest:g} Hz are upsampled to the models' {model_rate:g} Hz"
              + (f"; under about {LOWEST_USEFUL_RATE_HZ} Hz a QRS complex is not resolved: check the rate (--rate, "
                 "or the headers' sampling frequency)" if lowest < LOWEST_USEFUL_RATE_HZ else ""), file=sys.stderr)
    print(f"{args.name}: {survey.records} records, rates {list(survey.rates_hz)} Hz, "
          f"{survey.durations_s[0]:g}-{survey.durations_s[1]:g} s, leads {list(survey.leads)}")
    print("classes: " + ", ".join(f"{c} {n}" for c, n in survey.classes.items()))
    for line in merged_spellings(survey):
        print(f"note: {line}")
    print(usage(args.name, args.root, out))
    return 0


def _root_option(must_exist: bool):
    """``--root``: a folder; a file is a usage error saying so, and so is a missing root where it must exist
    (``fetch`` creates it; ``prepare``/``info`` name the missing dataset folder and how to fetch it)."""
    def parse(text: str) -> Path:
        root = Path(text)
        if must_exist or root.exists():
            try:
                check_folder(root)
            except DataRootError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        return root
    return parse


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``ecgbench data ...`` on the top-level sub-parsers."""
    data = sub.add_parser("data", help="fetch, verify, prepare and describe the real datasets")
    commands = data.add_subparsers(dest="data_command", required=True)

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("name", help="dataset name (ptbxl, cpsc2018, georgia, ptb, code_test, or a registered one)")
        parser.add_argument("--root", type=_root_option(must_exist=name == "verify"), required=True,
                            help="folder holding one sub-folder per dataset")
        parser.set_defaults(func=func)
        return parser

    fetch = command("fetch", _fetch, "download the official release into ROOT/NAME (resumes, checks sha256)")
    fetch.add_argument("--timeout", type=float, default=15.0, help="seconds before a silent server is given up")
    command("verify", _verify, "report files missing or differing from the manifest (exit 1 if any)")
    for name, func, help_text in (("prepare", _prepare, "read every record once into the prepared cache"),
                                  ("info", _info, "counts per class and split, dropped and flagged records, digest")):
        parser = command(name, func, help_text)
        parser.add_argument("--cache", type=Path, default=None,
                            help="cache folder (default: $ECGBENCH_CACHE or ~/.cache/ecgbench)")
        parser.add_argument("--limit", type=int, default=None, help="only the first N usable records")
        parser.add_argument("--workers", type=int, default=None, help="reader processes (default: CPU count, <= 8)")
        parser.add_argument("--allow-missing", action="store_true",
                            help="skip (and count) records whose files are absent instead of failing")
    new = commands.add_parser("new", help="write a manifest for your own records (WFDB or an array) and a labels CSV")
    new.add_argument("name", help="the new dataset's name (its files are in ROOT/NAME)")
    new.add_argument("--root", type=Path, required=True, help="folder holding one sub-folder per dataset")
    new.add_argument("--labels", type=Path, required=True,
                     help="labels CSV inside ROOT/NAME: record, labels (class;class), optional patient, split")
    new.add_argument("--format", choices=("wfdb", "array"), default="wfdb",
                     help="wfdb: WFDB records below ROOT/NAME; array: one .npy/HDF5 array [n, samples, 12]")
    new.add_argument("--signals", type=Path, help="array: the .npy or HDF5 file")
    new.add_argument("--hdf5-dataset", default="", help="array: the HDF5 dataset's name (empty for .npy)")
    new.add_argument("--rate", type=positive_number, help="array: the sampling rate in Hz")
    new.add_argument("--units-per-mv", type=positive_number, default=1.0,
                     help="array: stored value per millivolt (> 0: a negative one would invert every signal)")
    new.add_argument("--out", type=Path, default=None, help="manifest file to write (default: ./NAME.toml)")
    new.add_argument("--force", action="store_true", help="overwrite --out")
    new.set_defaults(func=_new)
