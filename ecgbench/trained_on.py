"""What a pre-trained checkpoint has seen, carried inside the checkpoint itself (``trained_on``: the content
fingerprints of its training and validation records, with their digest), so the overlap guard works for a
checkpoint copied to another results folder or host. A checkpoint without it (one given by a user whose
training data are unknown) reads as None: "unknown", never "none found".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ecgbench.data.fingerprint import FingerprintError, FingerprintSet

KEY = "trained_on"


def checkpoint_entry(prints: FingerprintSet) -> dict:
    """The checkpoint's ``trained_on`` value: tensors and plain values only (``torch.load(weights_only=True)``)."""
    return {"dataset": prints.dataset, "record_ids": [str(r) for r in prints.record_ids],
            "exact": torch.from_numpy(np.ascontiguousarray(prints.exact)),
            "embedding": torch.from_numpy(np.ascontiguousarray(prints.embedding)), "digest": prints.digest()}


def trained_on(checkpoint: dict | Path) -> FingerprintSet | None:
    """The fingerprints a checkpoint (loaded, or its file) was trained on; None when it does not say.

    Raises ``FingerprintError`` when it carries a set that does not match its own digest."""
    if not isinstance(checkpoint, dict):
        checkpoint = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
    entry = checkpoint.get(KEY)
    if entry is None:
        return None
    prints = FingerprintSet(entry["dataset"], np.array(entry["record_ids"], dtype=str),
                            entry["exact"].numpy(), entry["embedding"].numpy())
    if prints.digest() != entry["digest"]:
        raise FingerprintError(f"checkpoint's {KEY} does not match its digest {entry['digest']} (damaged or "
                               "edited): not trusted")
    return prints
