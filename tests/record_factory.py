"""Schema-valid result records with synthetic predictions whose quality the test controls."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgbench.data.classes import DATASET_CLASSES
from ecgbench.metrics import classification_metrics
from ecgbench.results.schema import SCHEMA_VERSION, validate_record
from ecgbench.study import Cell, stable_seed

ENVIRONMENT = {"ecgbench": "0.1.0", "commit": "abc123def456", "python": "3.11.2", "torch": "2.3.0",
               "device": "cpu", "device_name": "cpu (x86_64)", "torch_threads": 2, "peak_rss_mb": 512.0}


def labels_of(downstream: str, n_test: int) -> np.ndarray:
    """The test labels of a downstream: the same records for every cell of it, as in a real run."""
    rng = np.random.default_rng(stable_seed("labels", downstream, n_test))
    n_classes = len(DATASET_CLASSES[downstream])
    labels = rng.random((n_test, n_classes)) < 0.25
    labels[np.arange(n_classes) % n_test, np.arange(n_classes)] = True  # every class occurs
    return labels


def predictions(labels: np.ndarray, quality: float, key: str) -> np.ndarray:
    """Probabilities separating positives from negatives by ``quality`` logits (0: chance)."""
    rng = np.random.default_rng(stable_seed("probabilities", key))
    logits = quality * (2 * labels - 1) + rng.normal(size=labels.shape) - 0.5
    return np.round(1 / (1 + np.exp(-logits)), 5)


def history(epochs: int, converge_epoch: int, best: float) -> list[dict]:
    """A validation curve that first gets within 5 % of its best at epoch ``converge_epoch`` (1-based)."""
    tail = max(1, epochs - converge_epoch)
    curve = [best * (0.9 * k / converge_epoch if k < converge_epoch else 0.96 + 0.04 * (k - converge_epoch) / tail)
             for k in range(1, epochs + 1)]
    return [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.0 / (e + 1), "val_f1_weighted": value,
             "val_auroc_macro": value, "seconds": 1.0} for e, value in enumerate(curve)]


def make_record(downstream: str = "ptb", model: str = "resnet1d18", fraction: float = 1.0,
                regime: str = "scratch", seed: int = 0, upstream: str | None = None, *, quality: float = 1.0,
                f1: float | None = None, status: str = "ok", error: str = "RuntimeError: boom\ntraceback ...",
                data_source: str = "synthetic", n_test: int = 120, epochs: int = 6, converge_epoch: int = 3,
                train_size: int | None = None, wall_s: float = 10.0, pretrain_s: float = 0.0) -> dict:
    """One schema-valid record; ``f1`` overrides the test weighted F1 that findings decide on."""
    if regime != "scratch" and upstream is None:
        upstream = "ptbxl"
    cell = Cell(downstream, model, fraction, regime, seed, upstream)
    classes = DATASET_CLASSES[downstream]
    record = {
        "schema_version": SCHEMA_VERSION, "key": cell.key, "cell": cell.to_dict(), "cell_id": f"id-{cell.key}",
        "identity": {"classes": list(classes), "profile": "test"}, "profile": "test", "data_source": data_source,
        "status": status, "error": None, "history": [], "best_epoch": None, "stop_reason": None, "test": None,
        "predictions": None, "sizes": None, "timing": {"wall_s": wall_s, "train_s": None, "pretrain_s": None},
        "environment": ENVIRONMENT, "created": f"2024-05-0{1 + seed}T12:00:00+00:00",
    }
    if status == "failed":
        return validate_record({**record, "error": error})
    labels = labels_of(downstream, n_test)
    probabilities = predictions(labels, quality, cell.key)
    test = classification_metrics(labels, probabilities, classes)
    if f1 is not None:
        test["f1_weighted"] = f1
    curve = history(epochs, converge_epoch, max(test["f1_weighted"] or 0.0, 0.1))
    return validate_record({
        **record, "history": curve, "best_epoch": epochs - 1, "stop_reason": "max_epochs", "test": test,
        "predictions": {"record_ids": [f"{downstream}-{i}" for i in range(n_test)],
                        "y_true": labels.astype(int).tolist(), "y_prob": probabilities.tolist()},
        "sizes": {"train": train_size or int(1000 * fraction), "val": 100, "test": n_test,
                  "train_full": 1000},
        "timing": {"wall_s": wall_s, "train_s": wall_s * 0.9, "pretrain_s": pretrain_s},
    })


def paired_records(gains: dict[tuple[str, float, int], float], downstream: str = "ptb",
                   upstream: str = "ptbxl", scratch_f1: float = 0.6, **options) -> list[dict]:
    """A scratch and a fine-tune record per (model, fraction, seed), fine-tune scoring ``gain`` higher."""
    records = []
    for (model, fraction, seed), gain in gains.items():
        records.append(make_record(downstream, model, fraction, "scratch", seed, f1=scratch_f1, **options))
        records.append(make_record(downstream, model, fraction, "finetune", seed, upstream,
                                   f1=scratch_f1 + gain, **options))
    return records


def untagged(path: Path) -> str:
    """A record's, score record's or checkpoint's file name without its configuration tag and suffix:
    ``ptb-gru-f0.05-scratch-s0.1a2b3c4d.json`` -> ``ptb-gru-f0.05-scratch-s0``."""
    return Path(path).name.rsplit(".", 2)[0]
