"""A classifier is a backbone plus a head; the transfer regimes re-create part of it, chosen by a head policy.

Head policies (a profile picks one; the cell id and the record state it):
  ``last_layer``  the paper's transfer: only the last layer is new (ResNets: ``fc2``; RNNs: ``fc``); every other
                  pre-trained weight, the ResNets' ``fc1`` included, is transferred.
  ``head``        the whole head is new (ResNets: ``fc1 -> ReLU -> fc2``): an ablation, and what ecgbench did
                  before it followed the paper.
The part a policy re-creates is also what the linear probe trains; everything else is frozen, BatchNorm
statistics included.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

HeadFactory = Callable[[int, int], nn.Module]
HEAD_POLICIES = ("last_layer", "head")
PAPER_HEAD_POLICY = "last_layer"


class Classifier(nn.Module):
    """``head(backbone(x))``.

    ``head_factory(in_features, n_classes)`` builds a fresh head of the same design. ``last_layer`` names the
    head's last layer inside ``head`` (``"fc2"``), or is ``""`` when the head is that single layer: a user's model
    says here which module the paper's transfer replaces.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, head_factory: HeadFactory, last_layer: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.head_factory = head_factory
        self.feature_dim = backbone.out_features
        self.last_layer = last_layer
        if not isinstance(self.get_submodule(self.new_part_name(PAPER_HEAD_POLICY)), nn.Linear):
            raise TypeError(f"the last layer {self.new_part_name(PAPER_HEAD_POLICY)!r} must be an nn.Linear")
        self._trainable: str | None = None

    @property
    def last_linear(self) -> nn.Linear:
        """The layer the paper's transfer replaces; its input is what transferability scores read as features."""
        return self.get_submodule(self.new_part_name(PAPER_HEAD_POLICY))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def new_part_name(self, policy: str) -> str:
        """The qualified name of the module that ``policy`` re-creates: ``head.fc2`` or ``head``."""
        if policy not in HEAD_POLICIES:
            raise ValueError(f"unknown head policy {policy!r}; known: {', '.join(HEAD_POLICIES)}")
        return f"head.{self.last_layer}" if policy == "last_layer" and self.last_layer else "head"

    def reset_for_transfer(self, n_classes: int, policy: str) -> nn.Module:
        """Re-create (randomly initialised, for ``n_classes``) the part ``policy`` names; return it."""
        if policy == "head" or not self.last_layer:
            self.head = self.head_factory(self.feature_dim, n_classes)
            return self.head
        old = self.head.get_submodule(self.last_layer)
        new = nn.Linear(old.in_features, n_classes, bias=old.bias is not None)
        self.head.set_submodule(self.last_layer, new)
        return new

    def freeze_all_but(self, name: str) -> None:
        """Train only the module ``name``: no gradients elsewhere, and everything else stays in eval mode
        (its BatchNorm running statistics do not move): a true linear probe when ``name`` is the last layer."""
        trainable = self.get_submodule(name)
        keep = {id(p) for p in trainable.parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        self._trainable = name
        self.train(self.training)

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if self._trainable is not None:
            for module in self.modules():
                module.training = False
            self.get_submodule(self._trainable).train(mode)
        return self
