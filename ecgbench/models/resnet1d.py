"""torchvision-style ResNets with 1-D convolutions over a 12-lead ECG (Nguyen & Do, 2024).

Stem conv k=7 s=2 + max-pool, four stages of widths 64-512, global average pooling, and the paper's head
``fc1 -> ReLU -> fc2``. Input is [batch, 1000, 12] like every model here; the model transposes to channels-first.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ecgbench.models.base import Classifier

WIDTHS = (64, 128, 256, 512)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)


def _downsample(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(_conv(in_ch, out_ch, 1, stride), nn.BatchNorm1d(out_ch))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv(in_ch, width, 3, stride), nn.BatchNorm1d(width)
        self.conv2, self.bn2 = _conv(width, width, 3), nn.BatchNorm1d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_ch, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1, self.bn1 = _conv(in_ch, width, 1), nn.BatchNorm1d(width)
        self.conv2, self.bn2 = _conv(width, width, 3, stride), nn.BatchNorm1d(width)
        self.conv3, self.bn3 = _conv(width, out_ch, 1), nn.BatchNorm1d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_ch, out_ch, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet1dBackbone(nn.Module):
    """Stem + four residual stages + global average pool: [B, 1000, 12] -> [B, features]."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, ...], in_leads: int = 12):
        super().__init__()
        self.stem = nn.Sequential(
            _conv(in_leads, WIDTHS[0], 7, 2), nn.BatchNorm1d(WIDTHS[0]), nn.ReLU(inplace=True),
            nn.MaxPool1d(kernel_size=3, stride=2, padding=1),
        )
        stages, in_ch = [], WIDTHS[0]
        for i, (width, depth) in enumerate(zip(WIDTHS, depths)):
            blocks = []
            for j in range(depth):
                blocks.append(block(in_ch, width, 2 if (i > 0 and j == 0) else 1))
                in_ch = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.out_features = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x.transpose(1, 2)))
        return self.pool(x).flatten(1)


def _mlp_head(in_features: int, n_classes: int) -> nn.Module:
    """The paper's head: fc1 -> ReLU -> fc2 (fc1 maps the pooled features to 512; fc2 is the last layer)."""
    return nn.Sequential(OrderedDict(fc1=nn.Linear(in_features, 512), relu=nn.ReLU(inplace=True),
                                     fc2=nn.Linear(512, n_classes)))


def resnet1d(depths: tuple[int, ...], block: type[BasicBlock] | type[Bottleneck], n_classes: int) -> Classifier:
    backbone = ResNet1dBackbone(block, depths)
    return Classifier(backbone, _mlp_head(backbone.out_features, n_classes), head_factory=_mlp_head,
                      last_layer="fc2")
