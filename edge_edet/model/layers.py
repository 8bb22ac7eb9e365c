"""Building blocks with TensorFlow 'same' padding resolved statically from the configured size.

Padding is computed once at construction from the input size the layer will see, so the
exported graph holds a constant Pad (fused into the Conv by onnx-simplifier) or nothing at all;
no shape arithmetic runs at inference time.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch.nn.functional as F
from torch import nn


def same_pads(size: Tuple[int, int], kernel: int, stride: int) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) that TensorFlow's 'same' adds for this input size."""
    pads = []
    for side in (size[1], size[0]):
        out = math.ceil(side / stride)
        total = max((out - 1) * stride + kernel - side, 0)
        pads.append((total // 2, total - total // 2))
    (left, right), (top, bottom) = pads
    return left, right, top, bottom


class SameConv2d(nn.Conv2d):
    """nn.Conv2d with TF 'same' padding for a known input size (symmetric pads go into the conv)."""

    def __init__(self, in_ch, out_ch, kernel, stride=1, groups=1, bias=True, input_size=(0, 0)):
        left, right, top, bottom = same_pads(input_size, kernel, stride)
        symmetric = left == right and top == bottom
        super().__init__(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=bias,
                         padding=(top, left) if symmetric else 0)
        self.extra_pad = None if symmetric else (left, right, top, bottom)

    def forward(self, x):
        if self.extra_pad is not None:
            x = F.pad(x, self.extra_pad)
        return super().forward(x)


class SameMaxPool2d(nn.Module):
    """3x3/2 max-pool with TF 'same' padding: -inf fill (TensorFlow) or zero fill (zylo117)."""

    def __init__(self, kernel: int, stride: int, input_size: Tuple[int, int], zero_pad: bool = False):
        super().__init__()
        left, right, top, bottom = same_pads(input_size, kernel, stride)
        self.pads = (left, right, top, bottom)
        self.zero_pad = zero_pad
        # -inf padding needs no Pad node: bottom/right only is ceil_mode pooling, symmetric is the
        # pool's own (implicit -inf) padding.  Only zero fill or odd asymmetric pads need F.pad.
        self.ceil_mode = not zero_pad and left == 0 and top == 0 and right < kernel and bottom < kernel
        symmetric = not zero_pad and left == right and top == bottom and 2 * max(left, top) <= kernel
        self.explicit_pad = not (self.ceil_mode or symmetric) and any(self.pads)
        padding = (top, left) if symmetric else 0
        self.pool = nn.MaxPool2d(kernel, stride, padding=padding, ceil_mode=self.ceil_mode)

    def forward(self, x):
        if self.explicit_pad:
            x = F.pad(x, self.pads, value=0.0 if self.zero_pad else float("-inf"))
        return self.pool(x)


def make_act(name: str) -> nn.Module:
    if name == "swish":
        return nn.SiLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    raise ValueError(f"unknown activation {name}")


def batch_norm(channels: int, cfg) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=cfg.bn_eps, momentum=cfg.bn_momentum)


class SeparableConv(nn.Module):
    """Depthwise 3x3 (no bias) then pointwise 1x1 (bias), optional BatchNorm: effdet's names."""

    def __init__(self, in_ch, out_ch, input_size, cfg, with_bn=True, bias=True):
        super().__init__()
        self.conv_dw = SameConv2d(in_ch, in_ch, 3, groups=in_ch, bias=False, input_size=input_size)
        self.conv_pw = SameConv2d(in_ch, out_ch, 1, bias=bias, input_size=input_size)
        self.bn = batch_norm(out_ch, cfg) if with_bn else None

    def forward(self, x):
        x = self.conv_pw(self.conv_dw(x))
        return self.bn(x) if self.bn is not None else x


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (training only)."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0], 1, 1, 1)).bernoulli_(keep)
        return x * mask / keep
