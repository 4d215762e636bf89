"""``ecgbench checkpoint new`` (inspect weights, write their manifest) and ``ecgbench checkpoints`` (list them)."""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from tabulate import tabulate

from ecgbench.atomic import atomic_write_bytes
from ecgbench.checkpoints.manifest import UNKNOWN, CheckpointManifest, check_pretrained_on, parse_manifest
from ecgbench.checkpoints.registry import CHECKPOINTS, get_checkpoint
from ecgbench.checkpoints.weights import CheckpointError, check_fit, read_state_dict
from ecgbench.digests import file_sha256
from ecgbench.models import MODELS, model_input


def _new(args: argparse.Namespace) -> int:
    """Load the weights into the registered model (weights_only), then write the manifest naming them."""
    if args.model not in MODELS:
        raise CheckpointError(f"--model {args.model!r} is not registered (registered: {', '.join(MODELS)})")
    weights = Path(args.weights)
    state = read_state_dict(weights)
    fit = check_fit(state, args.model, weights)
    out = Path(args.out or f"{args.name}.toml")
    pretrained_on = check_pretrained_on(args.pretrained_on or [UNKNOWN], "--pretrained-on")
    manifest = CheckpointManifest(
        name=args.name, model=args.model, weights_path=weights.resolve(), sha256=file_sha256(weights),
        outputs=fit.outputs, pretrained_on=pretrained_on, input=model_input(args.model),
        fingerprints_path=Path(args.fingerprints).resolve() if args.fingerprints else None,
        licence=args.licence, citation=args.citation, description=args.description)
    text = manifest.to_toml(out.resolve().parent)
    parse_manifest(tomllib.loads(text), str(out), out.resolve().parent)  # what is written must load as written
    atomic_write_bytes(out, text.encode())
    print(f"{weights}: {fit.parameters:,} parameters load into {args.model} exactly (no missing or unexpected key); "
          f"transfer replaces {fit.last_layer} ({fit.outputs} outputs); input {manifest.input.describe()}; "
          f"pre-trained on {', '.join(pretrained_on)}")
    print(f"wrote {out}\nuse it: --ecg-checkpoint {out} and upstreams = [\"{args.name}\", ...] in your profile")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = []
    for name in CHECKPOINTS.names():
        m = get_checkpoint(name)
        rows.append((name, m.model, m.input.describe(), ", ".join(m.pretrained_on), m.sha256[:12],
                     CHECKPOINTS.origin(name)))
    print(tabulate(rows, headers=["checkpoint", "model", "input", "pre-trained on", "sha256", "registered by"],
                   tablefmt="github"))
    return 0


def add_checkpoint_commands(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("checkpoint", help="a given pre-trained checkpoint as an upstream")
    commands = group.add_subparsers(dest="checkpoint_command", required=True)
    new = commands.add_parser("new", help="inspect a registered model's weights and write their manifest")
    new.add_argument("name", help="the upstream's name in profiles and cell ids (letters, digits, _ and .)")
    new.add_argument("--model", required=True, help="the registered model the weights belong to")
    new.add_argument("--weights", required=True, type=Path, help="a torch state dict (torch.save(model.state_dict()))")
    new.add_argument("--pretrained-on", action="append", default=[], metavar="DATASET",
                     help="a dataset the weights were trained on (repeatable; default: unknown)")
    new.add_argument("--fingerprints", type=Path, default=None, help="fingerprints of the records it was trained on")
    new.add_argument("--licence", default="", help="the weights' licence")
    new.add_argument("--citation", default="", help="how to cite the weights")
    new.add_argument("--description", default="",
                     help="one line on what the weights are (shown by ecgbench checkpoints)")
    new.add_argument("--out", type=Path, default=None, help="manifest path (default NAME.toml)")
    new.set_defaults(func=_new)
    sub.add_parser("checkpoints", help="list the registered checkpoints").set_defaults(func=_list)
