"""Run one cell of the study: data -> subset -> model (scratch or from a cached upstream) -> fit -> test -> record.

The pytest plugin and the CLI both call ``CellRunner.run``; neither trains anything itself.
"""
from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ecgbench import codeid
from ecgbench.checkpoints import CHECKPOINTS, get_checkpoint, given_checkpoint
from ecgbench.data import DATASETS, PreparedDataset, has_files, has_standin, open_dataset
from ecgbench.data.collections import members
from ecgbench.data.duplicates import dataset_fingerprints
from ecgbench.data.fingerprint import FingerprintSet, load_fingerprints, union
from ecgbench.data.overlap import Overlap, OverlapError, enforce, find_overlap, training_fingerprints
from ecgbench.data.registry import get_manifest
from ecgbench.data.splits import check_every_split
from ecgbench.engine.checkpoint import cached_checkpoint
from ecgbench.engine.config import TrainConfig
from ecgbench.engine.device import default_device, seed_everything
from ecgbench.engine.precision import cpu_has_native_bf16, resolve_precision
from ecgbench.engine.train import ArraySplit, fit, predict
from ecgbench.inputs import DEFAULT_INPUT, InputSpec
from ecgbench.locks import build_once
from ecgbench.metrics import classification_metrics
from ecgbench.models import MODELS, Classifier, build_model, model_input
from ecgbench.provenance import environment, utc_now
from ecgbench.results.configuration import configuration_tag
from ecgbench.results.schema import SCHEMA_VERSION, ResultRecordError
from ecgbench.results.score_records import (
    SCORE_KIND,
    SCORE_SCHEMA_VERSION,
    ScoreRecordError,
    read_score_record,
    score_record_path,
    write_score_record,
)
from ecgbench.results.store import RecordWriteError, read_record, record_path, write_record
from ecgbench.study import (
    RANDOM_UPSTREAM,
    Cell,
    Pretraining,
    Profile,
    Transferability,
    identity_hash,
    is_dataset_upstream,
    stable_seed,
    subset_size,
)
from ecgbench.trained_on import KEY as TRAINED_ON
from ecgbench.trained_on import checkpoint_entry
from ecgbench.transfer.forward import classifier_forward, device_gram, source_outputs
from ecgbench.transfer.scores import all_scores, higher_is_better

RERUN_MODES = ("none", "failed", "all")
RANDOM_OUTPUTS = 5  # outputs of the random control's own head: what transferability scores read as its labels


@dataclass(frozen=True)
class RunOptions:
    """Where results, caches and real data live, and what to re-run. Filled by the plugin or the CLI."""

    results_dir: Path
    cache_dir: Path
    data_root: Path | None = None
    device: str | None = None
    rerun: str = "none"
    keep_stale: bool = False  # reuse a record made by other result-affecting code instead of re-running it

    def __post_init__(self) -> None:
        if self.rerun not in RERUN_MODES:
            raise ValueError(f"rerun must be one of {RERUN_MODES}, got {self.rerun!r}")


def cell_hyperparameters(profile: Profile, cell: Cell) -> dict:
    """The hyper-parameters that change a cell's result: a scratch cell has no upstream (nor head policy)."""
    hyper = profile.hyperparameters()
    return hyper if cell.upstream else {"train": hyper["train"]}


def pretrain_hyperparameters(profile: Profile) -> dict:
    """The hyper-parameters that change an upstream checkpoint (and the scores computed from it)."""
    return {"pretrain": profile.hyperparameters()["pretrain"]}


def checkpoint_file(results_dir: Path, pretraining: Pretraining, profile: Profile) -> Path:
    """Where the upstream checkpoint ``pretraining`` of a results folder lives (shared by every shard using it);
    the name carries the profile's configuration tag, so another profile or pre-training setting never replaces
    it."""
    tag = configuration_tag(profile.name, pretrain_hyperparameters(profile))
    name = f"{pretraining.upstream}-{pretraining.model}-s{pretraining.seed}.{tag}.pt"
    return Path(results_dir) / "checkpoints" / name


@dataclass(frozen=True)
class CellOutcome:
    """A cell's record and where it came from: ``trained`` by this run (ok or failed) or ``reused`` as stored."""

    record: dict
    origin: str


def stored_probabilities(y_prob: np.ndarray) -> np.ndarray:
    """The float32 probabilities as the float64 of their shortest decimals: exactly what a JSON record stores
    and reads back. Ordering and the 0.5 threshold are those of the float32 values, so metrics computed from
    these equal the model's, and anyone recomputing them from the record gets the same numbers."""
    return np.asarray(y_prob, dtype=np.float32).astype(str).astype(np.float64)


def _split(ds: PreparedDataset, idx: np.ndarray) -> ArraySplit:
    return ArraySplit(ds.signals[idx], ds.labels[idx], ds.classes)


def _describe(error: BaseException) -> str:
    """The failure's one-line cause first (reports show it), then the end of the traceback."""
    return f"{type(error).__name__}: {error}\n\n" + "".join(traceback.format_exception(error)[-6:])


def check_same_input(checkpoint: dict, spec: InputSpec, what: str) -> None:
    """A checkpoint's weights were trained on one input; a cell feeding it another (a 250 Hz x 4 s downstream
    into a 100 Hz x 10 s upstream) would run and mean nothing: refused, naming both."""
    trained_on = InputSpec.from_dict(checkpoint["input"]) if "input" in checkpoint else None
    if trained_on != spec:
        raise ValueError(f"{what} was trained on input "
                         f"{trained_on.describe() if trained_on else 'of unknown rate, length and leads'}, but "
                         f"this cell's model receives {spec.describe()}")


def _reuse_or_run(path: Path, stored: Callable[[], dict | None], run: Callable[[], dict],
                  save: Callable[..., dict]) -> tuple[dict, bool]:
    """The stored record at ``path`` if reusable, else ``run``'s outcome saved (its failure saved as one).

    Two processes of one host on one results directory: the second waits for the first's record and reuses it.
    Returns (record, ran_here).
    """
    def run_and_save() -> dict:
        try:
            outcome = run()
        except Exception as error:
            return save(error=error)
        return save(outcome=outcome)

    return build_once(path, stored, run_and_save)


def _write(write: Callable[[], dict], error: BaseException | None) -> dict:
    """``write()`` the record of a task; when it cannot be written, the error keeps why the task had failed."""
    try:
        return write()
    except RecordWriteError as write_error:
        if error is None:
            raise
        raise RecordWriteError(f"{write_error}; the task had failed before: {_describe(error).splitlines()[0]}",
                               write_error.errno) from error


class CellRunner:
    """A profile bound to run options: loads datasets once per process and runs cells."""

    def __init__(self, profile: Profile, options: RunOptions,
                 update_record: Callable[..., object] | None = None,
                 on_epoch: Callable[[str, int, int], None] | None = None) -> None:
        """``update_record(record=..., cell=...)`` may add to a cell record's ``environment`` before it is written
        (the plugin's ``pytest_ecgbench_update_record`` hook); ``on_epoch(task key, epoch, max epochs)`` is told
        each finished epoch (the terminal's progress)."""
        self.profile = profile
        self.options = options
        self.update_record = update_record
        self.on_epoch = on_epoch
        self._datasets: dict[tuple[str, InputSpec], PreparedDataset] = {}
        self._overlaps: dict[tuple[str, str], Overlap] = {}

    def _epoch_callback(self, key: str, config: TrainConfig) -> Callable[[dict], None] | None:
        if self.on_epoch is None:
            return None
        return lambda log: self.on_epoch(key, log["epoch"] + 1, config.epochs)

    @cached_property
    def device(self) -> torch.device:
        return torch.device(self.options.device) if self.options.device else default_device()

    @cached_property
    def cpu_native_bf16(self) -> bool:
        return cpu_has_native_bf16()

    def precision(self, model: str) -> str:
        """The precision ``model`` trains and predicts in here: the profile's policy for this device and model."""
        return resolve_precision(self.profile.precision, self.device, cpu_native_bf16=self.cpu_native_bf16,
                                 bf16_faster_on_cpu=MODELS.get(model).bf16_faster_on_cpu)

    def _config(self, config: TrainConfig, model: str) -> TrainConfig:
        return replace(config, precision=self.precision(model))

    def dataset(self, name: str, spec: InputSpec = DEFAULT_INPUT) -> PreparedDataset:
        """The prepared dataset ``name`` at input ``spec``, refused when a split is empty (its cells could not
        be evaluated) or when its signals are not at ``spec``."""
        if (name, spec) not in self._datasets:
            ds = open_dataset(name, synthetic_records=self.profile.synthetic_records.get(name),
                              cache_dir=self.options.cache_dir, data_root=self.options.data_root, spec=spec)
            check_every_split(ds.split, f"dataset {name} ({ds.source}, {len(ds.split)} records)")
            if ds.input != spec:
                raise ValueError(f"dataset {name} was prepared at {ds.input.describe()}, not the {spec.describe()} "
                                 "its model reads")
            self._datasets[name, spec] = ds
        return self._datasets[name, spec]

    def model_data(self, name: str, model: str) -> PreparedDataset:
        """Dataset ``name`` as ``model`` reads it (its declared input spec)."""
        return self.dataset(name, model_input(model))

    def dataset_summary(self, name: str) -> dict:
        """What the provenance says of a dataset: its source, the records used and those its manifest expects
        (a partial real copy has fewer; a synthetic stand-in has the profile's size)."""
        ds = self.dataset(name)
        expected = len(ds.split) if ds.source == "synthetic" else get_manifest(name).record_count
        return {"source": ds.source, "records": len(ds.split), "expected": expected}

    def record_stem(self, cell: Cell) -> str:
        """The record file name of ``cell`` (no suffix): its key and configuration tag, so another profile's or
        configuration's record of the same cell is never overwritten."""
        return f"{cell.file_stem}.{configuration_tag(self.profile.name, cell_hyperparameters(self.profile, cell))}"

    def record_file(self, cell: Cell) -> Path:
        return record_path(self.options.results_dir, self.record_stem(cell))

    def score_stem(self, task: Transferability) -> str:
        return f"{task.file_stem}.{configuration_tag(self.profile.name, pretrain_hyperparameters(self.profile))}"

    def score_file(self, task: Transferability) -> Path:
        return score_record_path(self.options.results_dir, self.score_stem(task))

    # -- identity ---------------------------------------------------------------------------------------
    def train_subset(self, cell: Cell) -> np.ndarray:
        """A random, nested subset of the training split: the 5 % subset lies inside the 25 % one (per seed)."""
        train = self.model_data(cell.downstream, cell.model).indices("train")
        order = np.random.default_rng(stable_seed("subset", cell.downstream, cell.seed)).permutation(train)
        return np.sort(order[:subset_size(len(train), cell.fraction)])

    def checkpoint_id(self, upstream: str, model: str, seed: int, code_digest: str | None = None) -> str:
        """The id of an upstream checkpoint; ``code_digest`` defaults to this process's code (``ecgbench.codeid``)."""
        if upstream in CHECKPOINTS:  # given weights: the same for every seed; changed weights, a new id
            given = get_checkpoint(upstream)
            return identity_hash({"upstream": upstream, "model": given.model, "sha256": given.sha256,
                                  "input": given.input.to_dict()})
        if upstream == RANDOM_UPSTREAM:  # the model's own initialisation: its code, seed and input
            return identity_hash({"upstream": upstream, "model": model, "seed": seed,
                                  "input": model_input(model).to_dict(),
                                  codeid.IDENTITY_KEY: code_digest or codeid.code_identity().digest})
        ds = self.model_data(upstream, model)
        return identity_hash({"upstream": upstream, "model": model, "seed": seed, "classes": ds.classes,
                              "data_digest": ds.digest, "input": ds.input.to_dict(),
                              **pretrain_hyperparameters(self.profile), "precision": self.precision(model),
                              codeid.IDENTITY_KEY: code_digest or codeid.code_identity().digest})

    def identity(self, cell: Cell, code_digest: str | None = None) -> dict:
        """Everything that changes the cell's result; its hash is the cell id used for resume.

        ``code_digest`` defaults to this process's code; another digest gives the identity the cell had
        under that code (how a stale record is recognised, see ``made_by_other_code``).
        """
        code_digest = code_digest or codeid.code_identity().digest
        ds = self.model_data(cell.downstream, cell.model)
        val_idx, test_idx, overlap = self.evaluation_splits(cell)
        record_ids = ds.record_ids[np.concatenate([self.train_subset(cell), val_idx, test_idx])]
        used = (cell.downstream, *([cell.upstream] if is_dataset_upstream(cell.upstream) else []))
        return {
            "cell": cell.key, "profile": self.profile.name, "classes": list(ds.classes),
            "hyperparameters": cell_hyperparameters(self.profile, cell),
            "datasets": {name: self.dataset_summary(name) for name in used},
            "data_source": ds.source, "downstream_digest": ds.digest, "input": ds.input.to_dict(),
            "split_digest": identity_hash({"ids": record_ids.tolist()}),
            "checkpoint_id": (self.checkpoint_id(cell.upstream, cell.model, cell.seed, code_digest)
                              if cell.upstream else None),
            "precision": self.precision(cell.model),
            codeid.IDENTITY_KEY: code_digest, "schema_version": SCHEMA_VERSION,
            **({"upstream_weights_sha256": get_checkpoint(cell.upstream).sha256} if cell.upstream in CHECKPOINTS
               else {}),
            **(overlap.identity() if overlap else {}),
        }

    def overlap(self, upstream: str, downstream: str) -> Overlap:
        """The overlap guard of a transfer pair (``ecgbench.data.overlap``); raises ``OverlapError`` under the
        default mode when the upstream was trained on downstream validation/test recordings."""
        if (upstream, downstream) not in self._overlaps:  # a search per pair and process, not per identity
            down = self.dataset(downstream)
            prints, not_compared = self.trained_on(upstream, down.source)
            self._overlaps[(upstream, downstream)] = find_overlap(
                self.profile.overlap, upstream, prints, down, dataset_fingerprints(down), not_compared)
        return enforce(self._overlaps[(upstream, downstream)])

    def guard(self, upstream: str, downstream: str) -> Overlap | None:
        """``overlap`` of a transfer pair; None for the random-feature control, which has seen no recording."""
        return None if upstream == RANDOM_UPSTREAM else self.overlap(upstream, downstream)

    def trained_on(self, upstream: str, downstream_source: str) -> tuple[FingerprintSet | None, tuple[str, ...]]:
        """The recordings ``upstream`` was trained on that can be compared here (None: none, or unknown), and the
        datasets it was trained on that cannot. A given checkpoint names a fingerprint file or the datasets it
        was trained on (all their records count: which ones it used is not known; a collection such as CinC2021
        stands for its members); a named dataset that is not at hand as the downstream's kind of data (real or
        synthetic) is not compared against a stand-in."""
        if is_dataset_upstream(upstream):
            up = self.dataset(upstream)
            return training_fingerprints(up, dataset_fingerprints(up)), ()
        given = get_checkpoint(upstream)
        if given.fingerprints_path is not None:
            return load_fingerprints(given.fingerprints_path), ()
        if not given.pretrained_on_known:
            return None, ()
        named = dict.fromkeys(member for name in given.pretrained_on for member in members(name))
        at_hand = [name for name in named if self._at_hand(name, downstream_source)]
        not_compared = tuple(name for name in named if name not in at_hand)
        if not at_hand:
            return None, not_compared
        return union(upstream, [dataset_fingerprints(self.dataset(name)) for name in at_hand]), not_compared

    def _at_hand(self, name: str, source: str) -> bool:
        """Whether dataset ``name`` can be opened as ``source`` data here: a registered dataset with its files
        under the data folder (real), or with a stand-in size in the profile (synthetic). "INCART" named by a
        checkpoint but not registered is not."""
        if name not in DATASETS:
            return False
        real = has_files(name, self.options.data_root)
        if source == "real":
            return real
        return not real and name in self.profile.synthetic_records and has_standin(name)

    def evaluation_splits(self, cell: Cell) -> tuple[np.ndarray, np.ndarray, Overlap | None]:
        """The validation and test positions a cell uses, after the overlap guard for a transfer cell (the
        random-feature control has seen no recording: nothing to guard)."""
        ds = self.dataset(cell.downstream)
        overlap = self.guard(cell.upstream, cell.downstream) if cell.upstream else None
        if overlap is None:
            return ds.indices("val"), ds.indices("test"), None
        return overlap.kept(ds, "val"), overlap.kept(ds, "test"), overlap

    def made_by_other_code(self, cell: Cell, record: dict) -> bool:
        """Whether ``record`` is stale: this cell as other result-affecting code made it, all else identical.

        Records from before code digests existed cannot be told apart from other changes: never stale, re-run.
        """
        digest = codeid.record_code_digest(record)
        return (digest is not None and digest != codeid.code_identity().digest
                and identity_hash(self.identity(cell, digest)) == record["cell_id"])

    def mixed_sources(self, cell: Cell) -> str | None:
        """Why ``cell`` cannot run without mixing real and synthetic data, or None when it can."""
        if not is_dataset_upstream(cell.upstream):
            return None
        up = self.model_data(cell.upstream, cell.model).source
        down = self.model_data(cell.downstream, cell.model).source
        if up == down:
            return None
        return (f"{cell.key}: upstream {cell.upstream} is {up} data but downstream {cell.downstream} is {down}; "
                "a cell never mixes real and synthetic data (put both under --ecg-data, or neither)")

    def will_train(self, task: Cell | Transferability) -> bool:
        """Whether running ``task`` would compute it (no reusable stored record): only such a task needs its
        upstream checkpoint. A task whose identity cannot be computed counts as one that runs."""
        try:
            if isinstance(task, Transferability):
                return self.stored_scores(task, identity_hash(self.score_identity(task))) is None
            return self.stored(task, identity_hash(self.identity(task))) is None
        except Exception:
            return True

    # -- pre-training -----------------------------------------------------------------------------------
    def upstream_checkpoint(self, upstream: str, model: str, seed: int) -> tuple[dict, bool]:
        """The pre-trained checkpoint of (upstream, model, seed): trained once, shared by every cell and worker;
        ``random``'s is the model's initialisation, built here (as cheap as reading it)."""
        if upstream == RANDOM_UPSTREAM:
            return self._random_init(model, seed), False
        if upstream in CHECKPOINTS:
            given = given_checkpoint(upstream)
            if given["model"] != model:
                raise ValueError(f"checkpoint {upstream} holds weights of model {given['model']!r}, not {model!r}")
            return given, False
        ckpt_id = self.checkpoint_id(upstream, model, seed)
        path = checkpoint_file(self.options.results_dir, Pretraining(upstream, model, seed), self.profile)
        return cached_checkpoint(path, ckpt_id, lambda: self._pretrain(upstream, model, seed))

    def _pretrain(self, upstream: str, model_name: str, seed: int) -> dict:
        ds, key = self.model_data(upstream, model_name), Pretraining(upstream, model_name, seed).key
        seed_everything(stable_seed("pretrain-init", upstream, model_name, seed))
        model = build_model(model_name, len(ds.classes))
        config = self._config(self.profile.pretrain, model_name)
        result = fit(model, _split(ds, ds.indices("train")), _split(ds, ds.indices("val")), config,
                     seed=stable_seed("pretrain-fit", upstream, model_name, seed), device=self.device,
                     on_epoch=self._epoch_callback(key, config))
        return {"state_dict": result.best_state, "classes": list(ds.classes), "model": model_name,
                "upstream": upstream, "seed": seed, "config": self.profile.hyperparameters()["pretrain"],
                "precision": config.precision,
                "data_digest": ds.digest, "input": ds.input.to_dict(), "best_epoch": result.best_epoch,
                "history": result.history,
                "train_seconds": result.train_seconds,
                TRAINED_ON: checkpoint_entry(training_fingerprints(ds, dataset_fingerprints(ds)))}

    def _random_init(self, model_name: str, seed: int) -> dict:
        """The random-feature control: the weights a pre-training of this model and seed would start from."""
        seed_everything(stable_seed("pretrain-init", RANDOM_UPSTREAM, model_name, seed))
        classes = [f"{RANDOM_UPSTREAM}{i}" for i in range(RANDOM_OUTPUTS)]
        model = build_model(model_name, len(classes))
        return {"state_dict": model.state_dict(), "classes": classes, "model": model_name,
                "upstream": RANDOM_UPSTREAM, "seed": seed, "input": model_input(model_name).to_dict(),
                "train_seconds": 0.0}

    def initial_model(self, cell: Cell) -> tuple[Classifier, dict]:
        """The model a regime starts from, and the cost of its upstream checkpoint (seconds, trained here?)."""
        downstream = self.model_data(cell.downstream, cell.model)
        n_classes = len(downstream.classes)
        seed_everything(stable_seed("init", cell.key))
        if cell.regime == "scratch":
            return build_model(cell.model, n_classes), {"pretrain_s": 0.0, "pretrain_built_here": False}
        ckpt, built_here = self.upstream_checkpoint(cell.upstream, cell.model, cell.seed)
        check_same_input(ckpt, downstream.input, f"{cell.key}: the upstream checkpoint")
        model = build_model(cell.model, len(ckpt["classes"]))
        model.load_state_dict(ckpt["state_dict"])
        seed_everything(stable_seed("head", cell.key))
        model.reset_for_transfer(n_classes, self.profile.head_policy)
        if cell.regime == "linear":
            model.freeze_all_but(model.new_part_name(self.profile.head_policy))
        return model, {"pretrain_s": float(ckpt["train_seconds"]), "pretrain_built_here": built_here}

    # -- one cell ---------------------------------------------------------------------------------------
    def stored(self, cell: Cell, cell_id: str) -> dict | None:
        """The stored record of ``cell`` if it may be reused under the re-run mode; a corrupt file, one whose
        content no longer matches its digest, or one of an older schema is reported and its cell re-run."""
        record = self._readable(self.record_file(cell), read_record,
                                ResultRecordError, f"re-running {cell.key}")
        if record is None or (record["cell_id"] != cell_id
                              and not (self.options.keep_stale and self.made_by_other_code(cell, record))):
            return None
        return self._reusable(record)

    def _readable(self, path: Path, read: Callable[[Path], dict], error: type[Exception], what: str) -> dict | None:
        """The record at ``path`` unless everything re-runs or there is none; an untrusted one is reported."""
        if self.options.rerun == "all" or not path.exists():
            return None
        try:
            return read(path)
        except error as e:
            warnings.warn(f"{what}: {e}", stacklevel=3)
            return None

    def _reusable(self, record: dict) -> dict | None:
        """``record`` unless it failed and ``--ecg-rerun failed`` asks for failed ones again."""
        return None if record["status"] == "failed" and self.options.rerun == "failed" else record

    def run(self, cell: Cell) -> dict:
        """The record of ``cell``: reused when stored with the same id, else trained; failures are recorded too."""
        return self.execute(cell).record

    def execute(self, cell: Cell) -> CellOutcome:
        """``run``, also saying whether the record was trained here or reused (the plugin's summary counts it).

        A record that cannot be written (full or read-only disk) raises ``RecordWriteError`` naming its path.
        """
        started = time.perf_counter()
        try:
            identity = self.identity(cell)
        except Exception as error:  # the data could not be read: still record the failure
            identity = {"cell": cell.key, "profile": self.profile.name,
                        "hyperparameters": cell_hyperparameters(self.profile, cell),
                        codeid.IDENTITY_KEY: codeid.code_identity().digest}
            return CellOutcome(self._save(cell, identity, started, error=error), "trained")
        cell_id = identity_hash(identity)
        record, trained = _reuse_or_run(self.record_file(cell),
                                        lambda: self.stored(cell, cell_id),
                                        lambda: self._train_and_test(cell, identity),
                                        lambda **result: self._save(cell, identity, started, **result))
        return CellOutcome(record, "trained" if trained else "reused")

    def _train_and_test(self, cell: Cell, identity: dict) -> dict:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)  # the record's peak_gpu_mb is this cell's alone
        ds = self.model_data(cell.downstream, cell.model)
        model, pretrain_cost = self.initial_model(cell)
        (val_idx, test_idx, overlap), train_idx = self.evaluation_splits(cell), self.train_subset(cell)
        config = self._config(self.profile.train, cell.model)
        result = fit(model, _split(ds, train_idx), _split(ds, val_idx), config,
                     seed=stable_seed("fit", cell.key), device=self.device,
                     on_epoch=self._epoch_callback(cell.key, config))
        model.load_state_dict(result.best_state)
        y_prob = stored_probabilities(predict(model, ds.signals[test_idx], config.batch_size, self.device,
                                                   precision=config.precision))
        y_true = np.asarray(ds.labels[test_idx])
        return {
            "history": result.history, "best_epoch": result.best_epoch, "stop_reason": result.stop_reason,
            "test": classification_metrics(y_true, y_prob, ds.classes),  # from exactly the stored values
            "predictions": {"record_ids": ds.record_ids[test_idx].tolist(), "y_true": y_true.astype(int).tolist(),
                            "y_prob": y_prob.tolist()},
            "sizes": {"train": len(train_idx), "train_full": len(ds.indices("train")), "val": len(val_idx),
                      "test": len(test_idx)},
            "timing": {"train_s": result.train_seconds, **pretrain_cost},
            **({"overlap": overlap.info()} if overlap else {}),
        }

    def _save(self, cell: Cell, identity: dict, started: float, outcome: dict | None = None,
              error: BaseException | None = None) -> dict:
        outcome = outcome or {"history": [], "best_epoch": None, "stop_reason": None, "test": None,
                              "predictions": None, "sizes": None,
                              "timing": {"train_s": None, "pretrain_s": None, "pretrain_built_here": None}}
        record = {
            "schema_version": SCHEMA_VERSION, "key": cell.key, "cell": cell.to_dict(),
            "cell_id": identity_hash(identity), "identity": identity, "profile": self.profile.name,
            "data_source": identity.get("data_source"), "status": "failed" if error else "ok",
            "error": _describe(error) if error else None,
            **outcome,
            "timing": {**outcome["timing"], "wall_s": time.perf_counter() - started},
            "environment": environment(self.device), "created": utc_now(),
        }
        if isinstance(error, OverlapError):
            record["overlap"] = error.overlap.info()
        if self.update_record is not None:
            self.update_record(record=record, cell=cell)
        return _write(lambda: write_record(self.options.results_dir, self.record_stem(cell), record), error)

    # -- transferability scores -------------------------------------------------------------------------
    def score_identity(self, task: Transferability) -> dict:
        """Everything that changes a score task's result; its hash is the score id used for resume."""
        ds = self.model_data(task.downstream, task.model)
        subset_ids = ds.record_ids[self.train_subset(task.finetune_cell)]
        return {"task": task.key, "profile": self.profile.name, "classes": list(ds.classes),
                "hyperparameters": pretrain_hyperparameters(self.profile),
                "data_source": ds.source, "downstream_digest": ds.digest, "input": ds.input.to_dict(),
                "subset_digest": identity_hash({"ids": subset_ids.tolist()}),
                "checkpoint_id": self.checkpoint_id(task.upstream, task.model, task.seed),
                codeid.IDENTITY_KEY: codeid.code_identity().digest, "schema_version": SCORE_SCHEMA_VERSION,
                **(guarded.identity() if (guarded := self.guard(task.upstream, task.downstream)) else {})}

    def stored_scores(self, task: Transferability, score_id: str) -> dict | None:
        """The stored score record of ``task`` if reusable under the re-run mode; a corrupt file is re-run."""
        record = self._readable(self.score_file(task), read_score_record,
                                ScoreRecordError, f"re-scoring {task.key}")
        return self._reusable(record) if record is not None and record["score_id"] == score_id else None

    def transferability(self, task: Transferability) -> dict:
        """The score record of ``task``: reused when stored with the same id, else computed (the upstream
        checkpoint trained first if missing); failures are recorded too."""
        started = time.perf_counter()
        try:
            identity = self.score_identity(task)
        except Exception as error:  # the data could not be read: still record the failure
            identity = {"task": task.key, "profile": self.profile.name,
                        "hyperparameters": pretrain_hyperparameters(self.profile)}
            return self._save_scores(task, identity, started, error=error)
        score_id = identity_hash(identity)
        return _reuse_or_run(self.score_file(task),
                             lambda: self.stored_scores(task, score_id), lambda: self._score(task),
                             lambda **result: self._save_scores(task, identity, started, **result))[0]

    def _score(self, task: Transferability) -> dict:
        """One forward pass of the upstream checkpoint over the fine-tune cell's training subset, then scores."""
        ckpt, built_here = self.upstream_checkpoint(task.upstream, task.model, task.seed)
        ds = self.model_data(task.downstream, task.model)
        check_same_input(ckpt, ds.input, f"{task.key}: the upstream checkpoint")
        model = build_model(task.model, len(ckpt["classes"]))
        model.load_state_dict(ckpt["state_dict"])
        model.to(self.device)
        subset = self.train_subset(task.finetune_cell)
        forward_started = time.perf_counter()
        probabilities, features = source_outputs(classifier_forward(model), ds.signals[subset],
                                                 self.profile.train.batch_size)
        scores_started = time.perf_counter()
        scores = all_scores(probabilities, features, ds.labels[subset], device_gram(self.device))
        finished = time.perf_counter()
        undefined = sorted(name for name, value in scores.items() if not np.isfinite(value))
        if undefined:
            raise ValueError(f"{task.key}: scores {undefined} are not finite on these {len(subset)} records")
        return {"scores": scores, "higher_is_better": higher_is_better(),
                "n_records": len(subset),
                "timing": {"forward_s": scores_started - forward_started, "scores_s": finished - scores_started,
                           "pretrain_s": float(ckpt["train_seconds"]), "pretrain_built_here": built_here}}

    def _save_scores(self, task: Transferability, identity: dict, started: float, outcome: dict | None = None,
                     error: BaseException | None = None) -> dict:
        outcome = outcome or {"scores": None, "higher_is_better": None, "n_records": None,
                              "timing": {"forward_s": None, "scores_s": None, "pretrain_s": None,
                                         "pretrain_built_here": None}}
        record = {
            "schema_version": SCORE_SCHEMA_VERSION, "kind": SCORE_KIND, "key": task.key, **asdict(task),
            "score_id": identity_hash(identity), "identity": identity, "profile": self.profile.name,
            "data_source": identity.get("data_source"), "status": "failed" if error else "ok",
            "error": _describe(error) if error else None, **outcome,
            "timing": {**outcome["timing"], "wall_s": time.perf_counter() - started},
            "environment": environment(self.device), "created": utc_now(),
        }
        return _write(lambda: write_score_record(self.options.results_dir, self.score_stem(task), record), error)
