"""A classifier is a backbone plus a replaceable head: what the transfer regimes operate on."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

HeadFactory = Callable[[int, int], nn.Module]


class Classifier(nn.Module):
    """``head(backbone(x))``; ``head_factory(in_features, n_classes)`` builds a fresh head of the same design."""

    def __init__(self, backbone: nn.Module, head: nn.Module, head_factory: HeadFactory) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.head_factory = head_factory
        self.feature_dim = backbone.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def replace_head(self, n_classes: int) -> None:
        """A new randomly initialised head for ``n_classes`` (the fine-tune and linear-probe regimes)."""
        self.head = self.head_factory(self.feature_dim, n_classes)

    def freeze_backbone(self) -> None:
        """No gradients into the backbone and BatchNorm statistics fixed: a true linear probe."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()
        self._backbone_frozen = True

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if getattr(self, "_backbone_frozen", False):
            self.backbone.eval()
        return self
