"""BiFPN (the paper's weighted bi-directional feature pyramid), in the official node graph.

Nodes, for levels P3..P7: a top-down path P6'..P3' (each fusing its level with the upsampled
coarser node) then a bottom-up path P4''..P7'' (each fusing the level's input, its top-down node
and the downsampled finer output).  Fusion is fast normalised
    sum_i relu(w_i) * x_i / (1e-4 + sum_j relu(w_j))
or a plain sum; then swish (or relu6) and a separable conv with BatchNorm.  Names follow effdet
(`fpn.resample`, `fpn.cell.{i}.fnode.{j}.combine/after_combine`) for strict checkpoint loading.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..contract.config import ModelConfig
from .layers import SameConv2d, SameMaxPool2d, SeparableConv, batch_norm, make_act

FUSION_EPS = 1e-4


def bifpn_nodes(min_level: int, max_level: int) -> List[Tuple[int, Tuple[int, ...]]]:
    """[(level, input offsets)] of one BiFPN cell; offsets index the growing list of nodes."""
    num_levels = max_level - min_level + 1
    node_ids = {min_level + i: [i] for i in range(num_levels)}
    next_id = num_levels
    nodes = []
    for level in range(max_level - 1, min_level - 1, -1):  # top-down
        nodes.append((level, (node_ids[level][-1], node_ids[level + 1][-1])))
        node_ids[level].append(next_id)
        next_id += 1
    for level in range(min_level + 1, max_level + 1):  # bottom-up
        nodes.append((level, tuple(node_ids[level]) + (node_ids[level - 1][-1],)))
        node_ids[level].append(next_id)
        next_id += 1
    return nodes


class ConvBn(nn.Module):
    """1x1 channel-matching conv (with bias, as effdet's redundant_bias) + BatchNorm."""

    def __init__(self, in_ch, out_ch, cfg, size):
        super().__init__()
        self.conv = SameConv2d(in_ch, out_ch, 1, bias=True, input_size=size)
        self.bn = batch_norm(out_ch, cfg)

    def forward(self, x):
        return self.bn(self.conv(x))


class Resample(nn.Module):
    """Match a feature map to a node: 1x1 conv+BN if channels differ, then max-pool or nearest upsample."""

    def __init__(self, in_ch, out_ch, in_size, out_size, cfg: ModelConfig):
        super().__init__()
        if in_ch != out_ch:
            self.conv = ConvBn(in_ch, out_ch, cfg, in_size)
        self.out_size = tuple(out_size)
        self.mode = "same"
        if in_size[0] > out_size[0]:
            stride = (in_size[0] - 1) // out_size[0] + 1
            self.downsample = SameMaxPool2d(stride + 1, stride, in_size, zero_pad=cfg.maxpool_zero_pad)
            self.mode = "down"
        elif in_size[0] < out_size[0]:
            self.mode = "up_x2" if (out_size[0] == 2 * in_size[0] and out_size[1] == 2 * in_size[1]) else "up"
            # Nearest upsampling to a non-double size (lite0 at 320: 3 -> 5) as constant-index
            # gathers: exact PyTorch 'nearest' (floor(i * in / out)) and no shape arithmetic in ONNX.
            self.register_buffer("rows", torch.tensor([i * in_size[0] // out_size[0] for i in range(out_size[0])]),
                                 persistent=False)
            self.register_buffer("cols", torch.tensor([i * in_size[1] // out_size[1] for i in range(out_size[1])]),
                                 persistent=False)

    def forward(self, x):
        if hasattr(self, "conv"):
            x = self.conv(x)
        if self.mode == "down":
            return self.downsample(x)
        if self.mode == "up_x2":  # constant scales in the exported Resize
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.mode == "up":
            return x.index_select(2, self.rows).index_select(3, self.cols)
        return x


class FpnCombine(nn.Module):
    def __init__(self, channels, offsets, out_size, cfg, feature_channels, feature_sizes):
        super().__init__()
        self.offsets = offsets
        self.resample = nn.ModuleDict({
            str(o): Resample(feature_channels[o], channels, feature_sizes[o], out_size, cfg) for o in offsets})
        self.fusion = cfg.fusion
        if cfg.fusion == "fastattn":
            self.edge_weights = nn.Parameter(torch.ones(len(offsets)))

    def forward(self, nodes: List[torch.Tensor]) -> torch.Tensor:
        inputs = [self.resample[str(o)](nodes[o]) for o in self.offsets]
        if self.fusion == "fastattn":
            weights = F.relu(self.edge_weights)
            norm = weights.sum() + FUSION_EPS
            out = inputs[0] * (weights[0] / norm)
            for i in range(1, len(inputs)):
                out = out + inputs[i] * (weights[i] / norm)
            return out
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class AfterCombine(nn.Module):
    def __init__(self, channels, size, cfg):
        super().__init__()
        self.act = make_act(cfg.act)
        self.conv = SeparableConv(channels, channels, size, cfg)

    def forward(self, x):
        return self.conv(self.act(x))


class FNode(nn.Module):
    def __init__(self, combine, after_combine):
        super().__init__()
        self.combine = combine
        self.after_combine = after_combine

    def forward(self, nodes):
        return self.after_combine(self.combine(nodes))


class BiFpnCell(nn.Module):
    def __init__(self, cfg: ModelConfig, feature_channels: List[int], feature_sizes: List[tuple]):
        super().__init__()
        channels = cfg.fpn_channels
        sizes = cfg.feature_sizes()
        feature_channels = list(feature_channels)
        feature_sizes = list(feature_sizes)
        self.fnode = nn.ModuleList()
        for level, offsets in bifpn_nodes(cfg.min_level, cfg.max_level):
            combine = FpnCombine(channels, offsets, sizes[level], cfg, feature_channels, feature_sizes)
            self.fnode.append(FNode(combine, AfterCombine(channels, sizes[level], cfg)))
            feature_channels.append(channels)
            feature_sizes.append(sizes[level])
        self.num_levels = cfg.num_levels

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        nodes = list(x)
        for fnode in self.fnode:
            nodes.append(fnode(nodes))
        return nodes[-self.num_levels:]


class BiFpn(nn.Module):
    """Extra levels from C5 (1x1 conv + BN + max-pool for P6, max-pool for P7..), then the cells."""

    def __init__(self, cfg: ModelConfig, backbone_channels: List[int]):
        super().__init__()
        sizes = cfg.feature_sizes()
        channels = list(backbone_channels)
        level_sizes = [sizes[level] for level in range(cfg.min_level, cfg.min_level + len(channels))]
        self.resample = nn.ModuleDict()
        for index in range(len(channels), cfg.num_levels):
            level = cfg.min_level + index
            self.resample[str(index)] = Resample(channels[-1], cfg.fpn_channels, sizes[level - 1], sizes[level], cfg)
            channels.append(cfg.fpn_channels)
            level_sizes.append(sizes[level])
        self.cell = nn.Sequential(*[BiFpnCell(cfg, channels if i == 0 else [cfg.fpn_channels] * cfg.num_levels,
                                              level_sizes) for i in range(cfg.fpn_repeats)])

    def forward(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        features = list(features)
        for resample in self.resample.values():
            features.append(resample(features[-1]))
        for cell in self.cell:
            features = cell(features)
        return features
