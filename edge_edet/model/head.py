"""Class and box heads, shared across levels, with a BatchNorm per level (effdet's `bn_rep`)."""
from __future__ import annotations

from typing import List

import torch
from torch import nn

from ..contract.config import ModelConfig
from .layers import SeparableConv, batch_norm, make_act


class _BnHolder(nn.Module):
    """Keeps effdet's key layout `bn_rep.{repeat}.{level}.bn.*`."""

    def __init__(self, channels, cfg):
        super().__init__()
        self.bn = batch_norm(channels, cfg)

    def forward(self, x):
        return self.bn(x)


class HeadNet(nn.Module):
    def __init__(self, cfg: ModelConfig, num_outputs: int):
        super().__init__()
        ch = cfg.fpn_channels
        # Separable convs are shape-agnostic; the size only matters for asymmetric SAME pads (none at stride 1).
        size = cfg.input_size
        self.conv_rep = nn.ModuleList([SeparableConv(ch, ch, size, cfg, with_bn=False) for _ in range(cfg.head_repeats)])
        self.bn_rep = nn.ModuleList([
            nn.ModuleList([_BnHolder(ch, cfg) for _ in range(cfg.num_levels)]) for _ in range(cfg.head_repeats)])
        self.act = make_act(cfg.act)
        self.predict = SeparableConv(ch, num_outputs * cfg.num_anchors, size, cfg, with_bn=False)

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        outputs = []
        for level, x in enumerate(features):
            for conv, bns in zip(self.conv_rep, self.bn_rep):
                x = self.act(bns[level](conv(x)))
            outputs.append(self.predict(x))
        return outputs
