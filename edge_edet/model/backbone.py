"""EfficientNet B0-B7 and EfficientNet-Lite0-4 feature extractors (C3, C4, C5).

Parameter names follow timm (`conv_stem`, `bn1`, `blocks.{stage}.{block}.conv_pw` ...) so effdet
checkpoints load with strict key matching.  Lite variants: no squeeze-excite, ReLU6, stem fixed
at 32 channels and the first/last stage depths not scaled (as TensorFlow's EfficientNet-Lite).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ..contract.config import ModelConfig, round_channels, scale_depth
from .layers import DropPath, SameConv2d, batch_norm, make_act

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, output channels)
B0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
FEATURE_STAGES = (2, 4, 6)  # stage ends giving C3 (stride 8), C4 (16), C5 (32)
SE_RATIO = 0.25


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, act: str):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = make_act(act)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        scale = x.mean((2, 3), keepdim=True)
        scale = self.conv_expand(self.act(self.conv_reduce(scale)))
        return x * scale.sigmoid()


class DepthwiseSeparableBlock(nn.Module):
    """Stage 0 block: dw conv, BN+act, SE, pw conv, BN (expand ratio 1)."""

    def __init__(self, in_ch, out_ch, kernel, stride, use_se, act, cfg, size, drop_path):
        super().__init__()
        self.conv_dw = SameConv2d(in_ch, in_ch, kernel, stride, groups=in_ch, bias=False, input_size=size)
        self.bn1 = batch_norm(in_ch, cfg)
        self.act = make_act(act)
        self.se = SqueezeExcite(in_ch, max(1, int(in_ch * SE_RATIO)), act) if use_se else nn.Identity()
        out_size = ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)
        self.conv_pw = SameConv2d(in_ch, out_ch, 1, bias=False, input_size=out_size)
        self.bn2 = batch_norm(out_ch, cfg)
        self.has_skip = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path) if self.has_skip else nn.Identity()

    def forward(self, x):
        out = self.act(self.bn1(self.conv_dw(x)))
        out = self.bn2(self.conv_pw(self.se(out)))
        return x + self.drop_path(out) if self.has_skip else out


class InvertedResidualBlock(nn.Module):
    """MBConv: pw expand, BN+act, dw conv, BN+act, SE, pw project, BN, residual."""

    def __init__(self, in_ch, out_ch, kernel, stride, expand, use_se, act, cfg, size, drop_path):
        super().__init__()
        mid = in_ch * expand
        self.conv_pw = SameConv2d(in_ch, mid, 1, bias=False, input_size=size)
        self.bn1 = batch_norm(mid, cfg)
        self.act = make_act(act)
        self.conv_dw = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False, input_size=size)
        self.bn2 = batch_norm(mid, cfg)
        self.se = SqueezeExcite(mid, max(1, int(in_ch * SE_RATIO)), act) if use_se else nn.Identity()
        out_size = ((size[0] - 1) // stride + 1, (size[1] - 1) // stride + 1)
        self.conv_pwl = SameConv2d(mid, out_ch, 1, bias=False, input_size=out_size)
        self.bn3 = batch_norm(out_ch, cfg)
        self.has_skip = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path) if self.has_skip else nn.Identity()

    def forward(self, x):
        out = self.act(self.bn1(self.conv_pw(x)))
        out = self.act(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(self.se(out)))
        return x + self.drop_path(out) if self.has_skip else out


def stage_plan(cfg: ModelConfig) -> List[Tuple[int, int, int, int, int]]:
    """The backbone's stages after width/depth scaling: (repeats, kernel, stride, expand, channels)."""
    bb = cfg.backbone_config
    plan = []
    for index, (repeats, kernel, stride, expand, channels) in enumerate(B0_STAGES):
        fixed = bb.lite and index in (0, len(B0_STAGES) - 1)
        plan.append((repeats if fixed else scale_depth(repeats, bb.depth), kernel, stride, expand,
                     round_channels(channels, bb.width)))
    return plan


class EfficientNetFeatures(nn.Module):
    """Stem + 7 stages; forward returns [C3, C4, C5]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        bb = cfg.backbone_config
        act = "relu6" if bb.lite else "swish"
        use_se = not bb.lite
        stem_ch = 32 if bb.lite else round_channels(32, bb.width)
        size = cfg.input_size
        self.conv_stem = SameConv2d(3, stem_ch, 3, 2, bias=False, input_size=size)
        self.bn1 = batch_norm(stem_ch, cfg)
        self.act = make_act(act)
        size = ((size[0] - 1) // 2 + 1, (size[1] - 1) // 2 + 1)

        plan = stage_plan(cfg)
        total_blocks = sum(p[0] for p in plan)
        block_index = 0
        in_ch = stem_ch
        stages = []
        self.feature_channels = []
        for stage_index, (repeats, kernel, stride, expand, out_ch) in enumerate(plan):
            blocks = []
            for i in range(repeats):
                s = stride if i == 0 else 1
                rate = bb.drop_path_rate * block_index / total_blocks
                if expand == 1:
                    blocks.append(DepthwiseSeparableBlock(in_ch, out_ch, kernel, s, use_se, act, cfg, size, rate))
                else:
                    blocks.append(InvertedResidualBlock(in_ch, out_ch, kernel, s, expand, use_se, act, cfg, size, rate))
                size = ((size[0] - 1) // s + 1, (size[1] - 1) // s + 1)
                in_ch = out_ch
                block_index += 1
            stages.append(nn.Sequential(*blocks))
            if stage_index in FEATURE_STAGES:
                self.feature_channels.append(out_ch)
        self.blocks = nn.Sequential(*stages)

    def forward(self, x) -> List[torch.Tensor]:
        x = self.act(self.bn1(self.conv_stem(x)))
        features = []
        for index, stage in enumerate(self.blocks):
            x = stage(x)
            if index in FEATURE_STAGES:
                features.append(x)
        return features
