"""``ecgbench models`` and ``ecgbench datasets``: what the registries hold and who registered each name (ecgbench
itself, a distribution's entry point, a ``--ecg-manifest`` file), so a user sees whether their package loaded."""
from __future__ import annotations

import argparse

from tabulate import tabulate


def _models(args: argparse.Namespace) -> int:
    from ecgbench.models import MODELS, model_family, model_input

    rows = [(name, model_family(name), model_input(name).describe(), MODELS.origin(name)) for name in MODELS.names()]
    print(tabulate(rows, headers=["model", "family", "input", "registered by"], tablefmt="github"))
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from ecgbench.data import DATASETS, get_manifest, has_standin

    rows = []
    for name in DATASETS.names():
        manifest = get_manifest(name)
        rows.append((name, len(manifest.classes), " ".join(manifest.classes), manifest.format.kind,
                     "yes" if has_standin(name) else "no", DATASETS.origin(name), DATASETS.get(name)))
    print(tabulate(rows, headers=["dataset", "classes", "class names", "format", "synthetic stand-in",
                                  "registered by", "manifest"], tablefmt="github"))
    return 0


def add_registry_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("models", help="list the registered models, their family and who registered them"
                   ).set_defaults(func=_models)
    sub.add_parser("datasets", help="list the registered datasets, their classes and who registered them"
                   ).set_defaults(func=_datasets)
