"""Anchor boxes and box coding, as DESIGN.md fixes them: per level, per location (row-major), 9 anchors
(3 octave scales outer, 3 aspect ratios inner), base size anchor_scale * stride * 2**(octave/3).

Numpy only: the exporter bakes these into the ONNX graph as constants and training assigns
targets against them; both must see exactly the same boxes.
"""
from __future__ import annotations

import numpy as np

from .config import ModelConfig


def level_anchors(cfg: ModelConfig, level: int) -> np.ndarray:
    """[H*W*A, 4] anchors (x1, y1, x2, y2, input pixels) of one pyramid level."""
    img_h, img_w = cfg.input_size
    feat_h, feat_w = cfg.feature_sizes()[level]
    stride_y, stride_x = img_h / feat_h, img_w / feat_w
    ys = np.arange(stride_y / 2, img_h, stride_y)
    xs = np.arange(stride_x / 2, img_w, stride_x)
    xv, yv = np.meshgrid(xs, ys)  # row-major locations
    centres = np.stack([xv.reshape(-1), yv.reshape(-1)], axis=1)  # [L, 2]
    half_sizes = []
    for octave in range(cfg.num_scales):
        for aspect_x, aspect_y in cfg.aspect_ratios:
            base_x = cfg.anchor_scale * stride_x * 2 ** (octave / cfg.num_scales)
            base_y = cfg.anchor_scale * stride_y * 2 ** (octave / cfg.num_scales)
            half_sizes.append((base_x * aspect_x / 2.0, base_y * aspect_y / 2.0))
    half = np.asarray(half_sizes)  # [A, 2]
    lo = centres[:, None, :] - half[None, :, :]
    hi = centres[:, None, :] + half[None, :, :]
    return np.concatenate([lo, hi], axis=2).reshape(-1, 4)


def generate_anchors(cfg: ModelConfig) -> np.ndarray:
    """[N, 4] float32 anchors (x1, y1, x2, y2) for all levels, P{min} first."""
    boxes = [level_anchors(cfg, level) for level in range(cfg.min_level, cfg.max_level + 1)]
    return np.concatenate(boxes, axis=0).astype(np.float32)


def anchors_to_centre_size(anchors: np.ndarray) -> np.ndarray:
    """[N, 4] xyxy -> [N, 4] (yc, xc, h, w): the form box decoding works in."""
    x1, y1, x2, y2 = anchors.T
    return np.stack([(y1 + y2) / 2, (x1 + x2) / 2, y2 - y1, x2 - x1], axis=1).astype(np.float32)


def decode_boxes(box_codes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(ty, tx, th, tw) codes [..., N, 4] -> boxes (x1, y1, x2, y2) [..., N, 4].

    yc = ty*ha + yca, xc = tx*wa + xca, h = exp(th)*ha, w = exp(tw)*wa.
    """
    yca, xca, ha, wa = anchors_to_centre_size(anchors).T
    ty, tx, th, tw = np.moveaxis(box_codes, -1, 0)
    yc = ty * ha + yca
    xc = tx * wa + xca
    h = np.exp(th) * ha
    w = np.exp(tw) * wa
    return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=-1).astype(np.float32)


def encode_boxes(boxes: np.ndarray, anchors: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Inverse of `decode_boxes`: xyxy boxes matched to anchors -> (ty, tx, th, tw) targets."""
    yca, xca, ha, wa = anchors_to_centre_size(anchors).T
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    h = np.maximum(y2 - y1, eps)
    w = np.maximum(x2 - x1, eps)
    yc, xc = (y1 + y2) / 2, (x1 + x2) / 2
    return np.stack([(yc - yca) / ha, (xc - xca) / wa, np.log(h / ha), np.log(w / wa)], axis=-1).astype(np.float32)
