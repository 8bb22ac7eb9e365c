"""Reference post-processing of the PyTorch model (the effdet recipe), via the runtime's numpy path."""
from __future__ import annotations

import torch

from ..contract.anchors import generate_anchors
from ..contract.postprocess import postprocess_raw
from .efficientdet import flatten_outputs


@torch.no_grad()
def reference_detect(model, images_nchw: torch.Tensor, pre_nms_top_k: int = 5000, iou_threshold: float = 0.5,
                     max_detections: int = 100, score_threshold: float = 0.0):
    """[(boxes xyxy in input pixels, scores, class indices)] per image."""
    cfg = model.config
    cls, box = flatten_outputs(*model(images_nchw), cfg.num_classes)
    anchors = generate_anchors(cfg)
    return [postprocess_raw(cls[i].numpy(), box[i].numpy(), anchors, pre_nms_top_k, iou_threshold,
                            max_detections, score_threshold) for i in range(cls.shape[0])]
