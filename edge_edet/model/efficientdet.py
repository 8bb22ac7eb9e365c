"""EfficientDet: backbone -> BiFPN -> shared class/box heads, configured by one table row."""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ..contract.config import ModelConfig
from .backbone import EfficientNetFeatures
from .bifpn import BiFpn
from .head import HeadNet


class EfficientDet(nn.Module):
    """forward(x: normalised float NCHW) -> (class logits per level, box codes per level), NCHW.

    Class channel index is `anchor * num_classes + class`; box channels are (ty, tx, th, tw).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.backbone = EfficientNetFeatures(cfg)
        self.fpn = BiFpn(cfg, self.backbone.feature_channels)
        self.class_net = HeadNet(cfg, cfg.num_classes)
        self.box_net = HeadNet(cfg, 4)

    def forward_features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """BiFPN outputs P{min}..P{max}."""
        return self.fpn(self.backbone(x))

    def forward(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        features = self.forward_features(x)
        return self.class_net(features), self.box_net(features)


def flatten_outputs(class_outputs, box_outputs, num_classes: int):
    """Per-level NCHW outputs -> ([B, N, C] logits, [B, N, 4] codes) in anchor order."""
    batch = class_outputs[0].shape[0]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(batch, -1, num_classes) for c in class_outputs], 1)
    box = torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in box_outputs], 1)
    return cls, box
