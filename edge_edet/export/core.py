"""The network core of the deploy graph, as a torch module traced to ONNX.

images uint8 [B,H,W,3] BGR -> cast, BGR->RGB, normalise, NHWC->NCHW -> EfficientDet ->
(boxes [B,N,4] x1,y1,x2,y2 in input pixels, class_logits [B,N,C]).  Anchors are constants.
Every NMS variant (ONNX NonMaxSuppression, EfficientNMS_TRT, none) starts from this same core.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..contract.anchors import anchors_to_centre_size, generate_anchors


class DeployCore(nn.Module):
    def __init__(self, model):
        super().__init__()
        cfg = model.config
        self.model = model
        self.num_classes = cfg.num_classes
        mean = torch.tensor(cfg.mean, dtype=torch.float32) * 255.0
        std = torch.tensor(cfg.std, dtype=torch.float32) * 255.0
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("inv_std", (1.0 / std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("bgr_to_rgb", torch.tensor([2, 1, 0]), persistent=False)
        centre_size = anchors_to_centre_size(generate_anchors(cfg))  # yc, xc, h, w
        self.register_buffer("anchor_yx", torch.from_numpy(np.ascontiguousarray(centre_size[:, :2])), persistent=False)
        self.register_buffer("anchor_hw", torch.from_numpy(np.ascontiguousarray(centre_size[:, 2:])), persistent=False)
        self.level_sizes = [h * w * cfg.num_anchors for h, w in cfg.pyramid_sizes()]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        # Transpose first: swapping and normalising whole channel planes is far cheaper than
        # working on an innermost axis of size 3 (measured ~14% of d0's CPU time).
        x = images.float().permute(0, 3, 1, 2).index_select(1, self.bgr_to_rgb)
        return (x - self.mean) * self.inv_std

    def forward(self, images: torch.Tensor):
        class_out, box_out = self.model(self.preprocess(images))
        # Flatten with constant sizes (batch as -1): no Shape ops, dynamic batch stays clean.
        logits = torch.cat([c.permute(0, 2, 3, 1).reshape(-1, n, self.num_classes)
                            for c, n in zip(class_out, self.level_sizes)], 1)
        codes = torch.cat([b.permute(0, 2, 3, 1).reshape(-1, n, 4) for b, n in zip(box_out, self.level_sizes)], 1)
        centre = codes[..., 0:2] * self.anchor_hw + self.anchor_yx  # yc, xc
        size = torch.exp(codes[..., 2:4]) * self.anchor_hw  # h, w
        top_left = centre - size * 0.5
        bottom_right = centre + size * 0.5
        # (y, x) -> (x, y) corner order
        boxes = torch.cat([top_left[..., 1:2], top_left[..., 0:1], bottom_right[..., 1:2], bottom_right[..., 0:1]], -1)
        return boxes, logits
