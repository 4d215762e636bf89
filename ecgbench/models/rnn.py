"""The paper's recurrent baselines: one layer, hidden 100, head on the flattened output sequence."""
from __future__ import annotations

import torch
from torch import nn

from ecgbench.models.base import Classifier

HIDDEN = 100
SEQ_LEN = 1000


class RNNBackbone(nn.Module):
    """[B, 1000, 12] -> [B, 1000 * hidden * directions]: every time step's output, flattened (as the paper)."""

    def __init__(self, cell: type[nn.RNNBase], bidirectional: bool, in_leads: int = 12) -> None:
        super().__init__()
        self.rnn = cell(in_leads, HIDDEN, num_layers=1, batch_first=True, bidirectional=bidirectional)
        self.out_features = SEQ_LEN * HIDDEN * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out.flatten(1)


def _linear_head(in_features: int, n_classes: int) -> nn.Module:
    return nn.Linear(in_features, n_classes)


def rnn(cell: type[nn.RNNBase], bidirectional: bool, n_classes: int) -> Classifier:
    backbone = RNNBackbone(cell, bidirectional)
    return Classifier(backbone, _linear_head(backbone.out_features, n_classes), head_factory=_linear_head)
