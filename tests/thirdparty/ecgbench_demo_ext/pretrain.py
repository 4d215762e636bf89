"""How ``demo_ssl.pt`` was made, outside ecgbench as a user's own pre-training would be: ``tinycnn250`` trained
with plain torch on demo_up's 60 records (the ones ``write_records(ROOT / "demo_up", ("A", "B", "C"), 60, 1,
with_split=False)`` writes, all of them), multi-label over its three classes.

    python -m ecgbench_demo_ext.pretrain OUT.pt
    ecgbench checkpoint new demo_ssl --model tinycnn250 --weights OUT.pt --pretrained-on demo_up ...
"""
from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from ecgbench_demo_ext import SECONDS, tinycnn250, write_records

CLASSES = ("A", "B", "C")
EPOCHS, BATCH, LR, SEED = 30, 16, 0.003, 0


def read_demo_up(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Signals [records, 2000, 12] in mV and multi-hot labels [records, 3] of a demo_up folder."""
    import wfdb

    with (folder / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    signals = np.stack([wfdb.rdsamp(str(folder / row["record"]))[0] for row in rows]).astype(np.float32)
    labels = np.array([[c in row["labels"].split(";") for c in CLASSES] for row in rows], dtype=np.float32)
    return signals, labels


def pretrain(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        signals, labels = read_demo_up(write_records(Path(tmp) / "demo_up", CLASSES, 60, 1, with_split=False))
    assert signals.shape[1] == 250 * SECONDS
    torch.manual_seed(SEED)
    model = tinycnn250(len(CLASSES))
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = torch.from_numpy(signals), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(BATCH):
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    print(f"final training loss {loss.item():.4f}")
    torch.save(model.state_dict(), out)
    return out


if __name__ == "__main__":
    pretrain(Path(sys.argv[1]))
