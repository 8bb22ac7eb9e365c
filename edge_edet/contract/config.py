"""The EfficientDet compound-scaling table: the single source of truth for every model number.

Every other module reads a `ModelConfig` from here; no size, width, depth or normalisation is
re-typed anywhere else.  This module imports nothing heavier than the standard library, so the
runtime (which never imports torch) can use it too.

The paper (Tan, Pang, Le, "EfficientDet", CVPR 2020, section 4.2) scales with one coefficient phi:

    BiFPN width      W_bifpn = 64 * 1.35 ** phi
    BiFPN depth      D_bifpn = 3 + phi
    head depth       D_head  = 3 + floor(phi / 3)
    input resolution R_input = 512 + 128 * phi

Where the released models depart from the formulas (and so from a naive reading of the paper):
  * widths are hand-rounded: 64, 88, 112, 160, 224, 288, 384 (the formula gives 64, 86.4, 116.6,
    157.5, 212.6, 287.0, 387.4);
  * D5 uses 7 BiFPN layers at 1280 px (formula: 8 layers at 1152 px);
  * D6 uses 8 BiFPN layers (formula: 9), 1280 px, and a plain-sum fusion (training stability);
  * D7 is D6 at 1536 px with anchor scale 5;
  * D7x is an EfficientNet-B7 backbone with an extra pyramid level (P3-P8) at 1536 px;
  * the Lite models (Lite0-Lite4, Lite3x) use EfficientNet-Lite backbones, ReLU6, plain-sum fusion,
    mean = std = 0.5 normalisation and anchor scale 3 (Lite0, Lite1, Lite2, Lite3x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

from .errors import EdgeEdetError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
ASPECT_RATIOS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))

_RELEASES = "https://github.com/rwightman/efficientdet-pytorch/releases/download/v0.1/"


@dataclass(frozen=True)
class BackboneConfig:
    """An EfficientNet (or EfficientNet-Lite) backbone: width/depth multipliers of the B0 stages."""

    name: str
    width: float
    depth: float
    lite: bool = False
    drop_path_rate: float = 0.2


BACKBONES = {
    "efficientnet_b0": BackboneConfig("efficientnet_b0", 1.0, 1.0),
    "efficientnet_b1": BackboneConfig("efficientnet_b1", 1.0, 1.1),
    "efficientnet_b2": BackboneConfig("efficientnet_b2", 1.1, 1.2),
    "efficientnet_b3": BackboneConfig("efficientnet_b3", 1.2, 1.4),
    "efficientnet_b4": BackboneConfig("efficientnet_b4", 1.4, 1.8),
    "efficientnet_b5": BackboneConfig("efficientnet_b5", 1.6, 2.2),
    "efficientnet_b6": BackboneConfig("efficientnet_b6", 1.8, 2.6),
    "efficientnet_b7": BackboneConfig("efficientnet_b7", 2.0, 3.1),
    "efficientnet_lite0": BackboneConfig("efficientnet_lite0", 1.0, 1.0, lite=True, drop_path_rate=0.1),
    "efficientnet_lite1": BackboneConfig("efficientnet_lite1", 1.0, 1.1, lite=True),
    "efficientnet_lite2": BackboneConfig("efficientnet_lite2", 1.1, 1.2, lite=True),
    "efficientnet_lite3": BackboneConfig("efficientnet_lite3", 1.2, 1.4, lite=True),
    "efficientnet_lite4": BackboneConfig("efficientnet_lite4", 1.4, 1.8, lite=True),
}


@dataclass(frozen=True)
class ModelConfig:
    """One row of the table.  `input_size` is (height, width) in pixels."""

    name: str
    backbone: str
    input_size: Tuple[int, int]
    fpn_channels: int
    fpn_repeats: int
    head_repeats: int
    fusion: str = "fastattn"  # 'fastattn' (fast normalised) or 'sum'
    act: str = "swish"  # 'swish' or 'relu6'
    min_level: int = 3
    max_level: int = 7
    anchor_scale: float = 4.0
    num_scales: int = 3
    aspect_ratios: Tuple[Tuple[float, float], ...] = ASPECT_RATIOS
    mean: Tuple[float, float, float] = IMAGENET_MEAN  # RGB, on [0, 1]
    std: Tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 90
    coco_url: str = ""
    # zylo117 checkpoints pad their SAME max-pools with zeros instead of -inf.
    maxpool_zero_pad: bool = False
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01

    @property
    def num_levels(self) -> int:
        return self.max_level - self.min_level + 1

    @property
    def num_anchors(self) -> int:
        """Anchors per location."""
        return self.num_scales * len(self.aspect_ratios)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (the stride of the coarsest level)."""
        return 2 ** self.max_level

    @property
    def backbone_config(self) -> BackboneConfig:
        return BACKBONES[self.backbone]

    @property
    def is_lite(self) -> bool:
        return self.backbone_config.lite

    def feature_sizes(self) -> list:
        """(h, w) of every level from P0 to P{max_level}, TensorFlow 'same' arithmetic (ceil halving)."""
        h, w = self.input_size
        sizes = [(h, w)]
        for _ in range(self.max_level):
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
            sizes.append((h, w))
        return sizes

    def pyramid_sizes(self) -> list:
        """(h, w) of P{min_level}..P{max_level}."""
        return self.feature_sizes()[self.min_level:self.max_level + 1]


def _row(name, backbone, size, width, bifpn, head, **kw) -> ModelConfig:
    return ModelConfig(name=name, backbone=backbone, input_size=(size, size), fpn_channels=width,
                       fpn_repeats=bifpn, head_repeats=head, **kw)


_LITE = dict(fusion="sum", act="relu6", mean=LITE_MEAN, std=LITE_STD)

#  name             backbone              R     W_bifpn D_bifpn D_head
MODELS = {
    "d0": _row("d0", "efficientnet_b0", 512, 64, 3, 3, coco_url=_RELEASES + "tf_efficientdet_d0_34-f153e0cf.pth"),
    "d1": _row("d1", "efficientnet_b1", 640, 88, 4, 3, coco_url=_RELEASES + "tf_efficientdet_d1_40-a30f94af.pth"),
    "d2": _row("d2", "efficientnet_b2", 768, 112, 5, 3, coco_url=_RELEASES + "tf_efficientdet_d2_43-8107aa99.pth"),
    "d3": _row("d3", "efficientnet_b3", 896, 160, 6, 4, coco_url=_RELEASES + "tf_efficientdet_d3_47-0b525f35.pth"),
    "d4": _row("d4", "efficientnet_b4", 1024, 224, 7, 4, coco_url=_RELEASES + "tf_efficientdet_d4_49-f56376d9.pth"),
    "d5": _row("d5", "efficientnet_b5", 1280, 288, 7, 4, coco_url=_RELEASES + "tf_efficientdet_d5_51-c79f9be6.pth"),
    "d6": _row("d6", "efficientnet_b6", 1280, 384, 8, 5, fusion="sum",
               coco_url=_RELEASES + "tf_efficientdet_d6_52-4eda3773.pth"),
    "d7": _row("d7", "efficientnet_b6", 1536, 384, 8, 5, fusion="sum", anchor_scale=5.0,
               coco_url=_RELEASES + "tf_efficientdet_d7_53-6d1d7a95.pth"),
    "d7x": _row("d7x", "efficientnet_b7", 1536, 384, 8, 5, fusion="sum", max_level=8,
                coco_url=_RELEASES + "tf_efficientdet_d7x-f390b87c.pth"),
    "lite0": _row("lite0", "efficientnet_lite0", 320, 64, 3, 3, anchor_scale=3.0, **_LITE,
                  coco_url=_RELEASES + "tf_efficientdet_lite0-dfacfc78.pth"),
    "lite1": _row("lite1", "efficientnet_lite1", 384, 88, 4, 3, anchor_scale=3.0, **_LITE,
                  coco_url=_RELEASES + "tf_efficientdet_lite1-6dc7ab30.pth"),
    "lite2": _row("lite2", "efficientnet_lite2", 448, 112, 5, 3, anchor_scale=3.0, **_LITE,
                  coco_url=_RELEASES + "tf_efficientdet_lite2-86c5d55b.pth"),
    "lite3": _row("lite3", "efficientnet_lite3", 512, 160, 6, 4, **_LITE,
                  coco_url=_RELEASES + "tf_efficientdet_lite3-506852cb.pth"),
    "lite3x": _row("lite3x", "efficientnet_lite3", 640, 200, 6, 4, anchor_scale=3.0, **_LITE,
                   coco_url=_RELEASES + "tf_efficientdet_lite3x-8404c57b.pth"),
    "lite4": _row("lite4", "efficientnet_lite4", 640, 224, 7, 4, **_LITE,
                  coco_url=_RELEASES + "tf_efficientdet_lite4-391ddabc.pth"),
}


def paper_formula(phi: int) -> dict:
    """The paper's compound-scaling formulas for coefficient phi (for `edge-edet info`)."""
    return {
        "fpn_channels": 64 * 1.35 ** phi,
        "fpn_repeats": 3 + phi,
        "head_repeats": 3 + phi // 3,
        "input_size": 512 + 128 * phi,
    }


class ConfigError(EdgeEdetError, ValueError):
    """A user-facing configuration mistake (unknown model, bad input size)."""


def canonical_name(name: str) -> str:
    """'efficientdet-d0', 'tf_efficientdet_d0', 'EfficientDet_D0' -> 'd0'."""
    key = name.strip().lower().replace("-", "_")
    for prefix in ("tf_efficientdet_", "efficientdet_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    if key not in MODELS:
        raise ConfigError(f"unknown model '{name}'; valid names: {', '.join(MODELS)} "
                          "(aliases like efficientdet-d0 and tf_efficientdet_d0 work too)")
    return key


def parse_input_size(text) -> Optional[Tuple[int, int]]:
    """'512' -> (512, 512); '384x640' -> (384, 640) as (height, width); None stays None."""
    if text is None:
        return None
    if isinstance(text, int):
        return (text, text)
    if isinstance(text, (tuple, list)):
        return (int(text[0]), int(text[1]))
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"input size '{text}' is not a number or HEIGHTxWIDTH (e.g. 512 or 384x640)") from None
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise ConfigError(f"input size '{text}' is not a number or HEIGHTxWIDTH (e.g. 512 or 384x640)")


MAX_INPUT_SIDE = 4096  # 2.7x D7's 1536: beyond it one image needs tens of GiB, never what a user meant


def _check_side(side: int, multiple: int, native: Sequence[int], name: str) -> None:
    if side in native:
        return
    if side > MAX_INPUT_SIDE:
        raise ConfigError(f"input side {side} is larger than the {MAX_INPUT_SIDE} pixels edge_edet accepts "
                          f"(the native sizes run from 320 to 1536)")
    if side <= 0 or side % multiple:
        lower = side // multiple * multiple
        nearest = [v for v in (lower, lower + multiple) if v >= multiple]
        native_note = f" (or its native {native[0]}x{native[1]})" if any(v % multiple for v in native) else ""
        raise ConfigError(f"input side {side} is not a multiple of {multiple} for {name}; "
                          f"nearest valid sizes: {' or '.join(map(str, nearest))}{native_note}")


def get_config(name: str, num_classes: Optional[int] = None, input_size=None, **overrides) -> ModelConfig:
    """The table row for `name`, optionally at another input size / class count.

    Valid input sides are multiples of the coarsest stride (128; 256 for d7x), plus the model's
    own native size (lite0's 320 and lite2's 448 are not multiples of 128 but are what was trained).
    """
    cfg = MODELS[canonical_name(name)]
    size = parse_input_size(input_size)
    if size is not None:
        for side in size:
            _check_side(side, cfg.size_multiple, cfg.input_size, cfg.name)
        cfg = replace(cfg, input_size=size)
    if num_classes is not None:
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes must be at least 1, got {num_classes}")
        cfg = replace(cfg, num_classes=int(num_classes))
    if overrides:
        cfg = replace(cfg, **overrides)
    return cfg


def round_channels(channels: float, multiplier: float = 1.0, divisor: int = 8) -> int:
    """EfficientNet's channel rounding (round to a multiple of 8, never drop more than 10%)."""
    value = channels * multiplier
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def scale_depth(repeats: int, multiplier: float) -> int:
    return int(math.ceil(repeats * multiplier))
