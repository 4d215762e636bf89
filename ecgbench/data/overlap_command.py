"""``ecgbench overlap A B [--root DIR]``: the recordings two datasets share, per split of B, found by content
fingerprint, so a user can check before training anything; exit 1 when B's test split shares any with A."""
from __future__ import annotations

import argparse
from pathlib import Path

from ecgbench.data.dataset import SPLITS

_LISTED = 10  # pairs printed per split


def _overlap(args: argparse.Namespace) -> int:
    from ecgbench.data import open_dataset
    from ecgbench.data.duplicates import dataset_fingerprints
    from ecgbench.data.fingerprint import find_matches
    from ecgbench.data.overlap import one_per_record
    from ecgbench.data.prepare import default_cache_dir

    cache = args.cache or default_cache_dir()
    a, b = (open_dataset(name, synthetic_records=args.synthetic_records, cache_dir=cache, data_root=args.root)
            for name in (args.a, args.b))
    prints_a, prints_b = dataset_fingerprints(a), dataset_fingerprints(b)
    print(f"{a.name} ({a.source}, {len(a.split)} records) vs {b.name} ({b.source}, {len(b.split)} records):")
    test_shared = 0
    for split in SPLITS:
        idx = b.indices(split)
        matches = one_per_record(find_matches(prints_a, prints_b.subset(idx)))
        test_shared += len(matches) if split == "test" else 0
        print(f"  {b.name} {split}: {len(matches)} of {len(idx)} records shared with {a.name}")
        for m in matches[:_LISTED]:
            print(f"    {a.name} {a.record_ids[m.i]} ({a.split[m.i]}) = {b.name} {b.record_ids[idx[m.j]]} "
                  f"(similarity {m.score:.3f})")
        if len(matches) > _LISTED:
            print(f"    ... {len(matches) - _LISTED} more")
    return 1 if test_shared else 0


def add_overlap_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("overlap", help="recordings two datasets share, per split (exit 1: B's test split shares any)")
    p.add_argument("a", help="a dataset (e.g. the upstream)")
    p.add_argument("b", help="another dataset (e.g. the downstream, whose test split must share nothing)")
    p.add_argument("--root", type=Path, default=None,
                   help="folder with one sub-folder per real dataset; a dataset absent there is its synthetic stand-in")
    p.add_argument("--cache", type=Path, default=None, help="data cache (default $ECGBENCH_CACHE or ~/.cache/ecgbench)")
    p.add_argument("--synthetic-records", type=int, default=1000, help="records of a synthetic stand-in")
    p.set_defaults(func=_overlap)
