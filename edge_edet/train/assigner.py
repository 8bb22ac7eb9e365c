"""Anchor assignment: which anchor learns which ground-truth box.

An anchor is positive when its best IoU with a box is >= 0.5, negative below 0.4 and ignored in
between (the paper's thresholds).  As in the official matcher (force_match_for_each_row), every
box also claims its single best anchor, so small or oddly shaped boxes are never left unlearned.
Numpy, against the same anchors the exporter bakes into the graph.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..contract.anchors import encode_boxes

POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.4
NEGATIVE = -1  # class target of a background anchor
IGNORE = -2  # class target of an anchor that takes no part in the class loss


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] IoU of xyxy boxes."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def assign(anchors: np.ndarray, boxes: np.ndarray, labels: np.ndarray, positive_iou: float = POSITIVE_IOU,
           negative_iou: float = NEGATIVE_IOU, force_match: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """(class targets [N] int64: class index, NEGATIVE or IGNORE; box targets [N, 4] (ty, tx, th, tw),
    zero for non-positives) for one image's xyxy `boxes` and class `labels`."""
    num = anchors.shape[0]
    cls_target = np.full((num,), NEGATIVE, np.int64)
    box_target = np.zeros((num, 4), np.float32)
    if boxes.shape[0] == 0:
        return cls_target, box_target
    iou = box_iou(anchors, boxes)
    best_box = iou.argmax(axis=1)
    best_iou = iou[np.arange(num), best_box]
    positive = best_iou >= positive_iou
    cls_target[(best_iou >= negative_iou) & ~positive] = IGNORE
    if force_match:
        best_anchor = iou.argmax(axis=0)
        best_box[best_anchor] = np.arange(boxes.shape[0])
        positive[best_anchor] = True
    cls_target[positive] = labels[best_box[positive]]
    box_target[positive] = encode_boxes(boxes[best_box[positive]], anchors[positive])
    return cls_target, box_target
