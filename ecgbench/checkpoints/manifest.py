"""A checkpoint manifest: a TOML file naming a registered model's weights, their sha256, what they were trained
on and under which licence, so that a given checkpoint is an upstream like a dataset the grid pre-trains on.

Strict, like the dataset manifests: unknown or missing keys are errors naming the file. ``pretrained_on`` lists
dataset names (any, not only registered ones: "CinC2021") or is ``["unknown"]``; the overlap guard reads it
(and the optional fingerprint file) to compare with downstream test records, and shows "unknown" as such.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ecgbench.checkpoints.weights import CheckpointError
from ecgbench.inputs import InputSpec, InputSpecError
from ecgbench.models import MODELS, model_input

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*")  # no '-' or '>': the name is part of cell ids (``NAME->ptb``)
UNKNOWN = "unknown"
REQUIRED = ("name", "model", "weights", "sha256", "outputs", "pretrained_on", "input")
OPTIONAL = ("fingerprints", "licence", "citation", "description")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class CheckpointManifest:
    name: str
    model: str
    weights_path: Path  # absolute; the manifest's ``weights`` is relative to the manifest's folder
    sha256: str
    outputs: int  # rows of the last layer: the upstream's class count
    pretrained_on: tuple[str, ...]  # dataset names, or ("unknown",)
    input: InputSpec
    fingerprints_path: Path | None = None
    licence: str = ""
    citation: str = ""
    description: str = ""
    source: Path | None = None  # the manifest file

    @property
    def pretrained_on_known(self) -> bool:
        return self.pretrained_on != (UNKNOWN,)

    def to_toml(self, folder: Path) -> str:
        """The manifest's text, with paths relative to ``folder`` (where it will be written) when below it."""
        def rel(path: Path) -> str:
            try:
                return str(path.resolve().relative_to(Path(folder).resolve()))
            except ValueError:
                return str(path.resolve())

        def quote(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

        lines = [f"name = {quote(self.name)}", f"model = {quote(self.model)}",
                 f"weights = {quote(rel(self.weights_path))}", f"sha256 = {quote(self.sha256)}",
                 f"outputs = {self.outputs}",
                 "pretrained_on = [" + ", ".join(quote(d) for d in self.pretrained_on) + "]",
                 f"input = {{ rate_hz = {self.input.rate_hz:g}, seconds = {self.input.seconds:g}, leads = ["
                 + ", ".join(quote(lead) for lead in self.input.leads) + "] }"]
        if self.fingerprints_path is not None:
            lines.append(f"fingerprints = {quote(rel(self.fingerprints_path))}")
        lines += [f"{key} = {quote(getattr(self, key))}" for key in ("licence", "citation", "description")]
        return "\n".join(lines) + "\n"


def _text(table: dict, key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise CheckpointError(f"{where}: {key} must be a string, got {value!r}")
    return value


def check_pretrained_on(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise CheckpointError(f"{where}: pretrained_on must be a non-empty list of dataset names, or [\"unknown\"], "
                              f"got {value!r}")
    if UNKNOWN in value and len(value) > 1:
        raise CheckpointError(f"{where}: pretrained_on names datasets and \"unknown\" together: {value!r}")
    if len(set(value)) != len(value):
        raise CheckpointError(f"{where}: pretrained_on names a dataset twice: {value!r}")
    return tuple(value)


def parse_manifest(table: Any, where: str, folder: Path) -> CheckpointManifest:
    """A manifest from its parsed TOML; every refusal names ``where`` and the key."""
    if not isinstance(table, dict):
        raise CheckpointError(f"{where}: expected a table")
    unknown = sorted(set(table) - set(REQUIRED) - set(OPTIONAL))
    missing = [key for key in REQUIRED if key not in table]
    if unknown or missing:
        raise CheckpointError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    name, model = table["name"], table["model"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise CheckpointError(f"{where}: name {name!r}: letters, digits, '_' and '.' (it is part of cell ids)")
    if not isinstance(model, str) or model not in MODELS:
        raise CheckpointError(f"{where}: model {model!r} is not registered (registered: {', '.join(MODELS)})")
    sha = table["sha256"]
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise CheckpointError(f"{where}: sha256 must be 64 lower-case hex digits, got {sha!r}")
    outputs = table["outputs"]
    if isinstance(outputs, bool) or not isinstance(outputs, int) or outputs < 1:
        raise CheckpointError(f"{where}: outputs must be a positive integer (the upstream's class count), got "
                              f"{outputs!r}")
    spec_table = table["input"]
    try:
        if not isinstance(spec_table, dict) or set(spec_table) != {"rate_hz", "seconds", "leads"}:
            raise InputSpecError(f"must be a table with rate_hz, seconds and leads, got {spec_table!r}")
        spec = InputSpec(spec_table["rate_hz"], spec_table["seconds"], spec_table["leads"])
    except InputSpecError as e:
        raise CheckpointError(f"{where}: input: {e}") from None
    if spec != model_input(model):
        raise CheckpointError(f"{where}: input {spec.describe()} differs from model {model!r}'s "
                              f"{model_input(model).describe()}: the weights were trained for another input")
    for key in ("weights", "fingerprints"):
        if key in table and (not isinstance(table[key], str) or not table[key]):
            raise CheckpointError(f"{where}: {key} must be a path, got {table[key]!r}")
    fingerprints = (folder / table["fingerprints"]).resolve() if "fingerprints" in table else None
    if fingerprints is not None and not fingerprints.is_file():
        raise CheckpointError(f"{where}: fingerprints file {fingerprints} does not exist")
    return CheckpointManifest(name=name, model=model, weights_path=(folder / table["weights"]).resolve(),
                              sha256=sha, outputs=outputs,
                              pretrained_on=check_pretrained_on(table["pretrained_on"], f"{where}"), input=spec,
                              fingerprints_path=fingerprints, licence=_text(table, "licence", where),
                              citation=_text(table, "citation", where),
                              description=_text(table, "description", where), source=None)


def load_manifest(path: Path) -> CheckpointManifest:
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint manifest: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid TOML: {e}") from None
    manifest = parse_manifest(table, str(path), path.resolve().parent)
    return replace(manifest, source=path.resolve())
