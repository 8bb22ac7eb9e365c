"""Numpy/OpenCV post-processing: the reference for the PyTorch model and the path for `--nms none`
graphs.  Top-k candidates by logit over all (anchor, class) pairs, decode, sigmoid, per-class NMS
(OpenCV's NMSBoxesBatched), keep the best `max_detections`.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from .anchors import decode_boxes


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def top_k_candidates(class_logits: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """(anchor indices, class indices) of the k largest logits of a [N, C] array, best first."""
    flat = class_logits.reshape(-1)
    k = min(k, flat.shape[0])
    index = np.argpartition(-flat, k - 1)[:k]
    index = index[np.argsort(-flat[index], kind="stable")]
    num_classes = class_logits.shape[1]
    return index // num_classes, index % num_classes


def batched_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
                max_detections: int, score_threshold: float = 0.0) -> np.ndarray:
    """Indices kept by per-class NMS, best score first (OpenCV; boxes x1, y1, x2, y2)."""
    if boxes.shape[0] == 0:
        return np.zeros((0,), np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.astype(np.float32).tolist(),
                                   classes.astype(np.int32).tolist(), float(score_threshold),
                                   float(iou_threshold))
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return keep[:max_detections]


def postprocess_raw(class_logits: np.ndarray, box_codes: np.ndarray, anchors: np.ndarray,
                    pre_nms_top_k: int = 5000, iou_threshold: float = 0.5, max_detections: int = 100,
                    score_threshold: float = 0.0):
    """One image: [N, C] logits and [N, 4] (ty, tx, th, tw) codes -> (boxes xyxy, scores, classes)."""
    anchor_idx, class_idx = top_k_candidates(class_logits, pre_nms_top_k)
    boxes = decode_boxes(box_codes[anchor_idx], anchors[anchor_idx])
    scores = sigmoid(class_logits[anchor_idx, class_idx].astype(np.float32))
    keep = batched_nms(boxes, scores, class_idx, iou_threshold, max_detections, score_threshold)
    return boxes[keep], scores[keep].astype(np.float32), class_idx[keep].astype(np.int32)


def postprocess_decoded(boxes: np.ndarray, scores: np.ndarray, pre_nms_top_k: int = 5000,
                        iou_threshold: float = 0.5, max_detections: int = 100, score_threshold: float = 0.0):
    """One image of a `--nms none` graph: decoded [N, 4] boxes and [N, C] probabilities."""
    anchor_idx, class_idx = top_k_candidates(scores, pre_nms_top_k)
    cand_scores = scores[anchor_idx, class_idx].astype(np.float32)
    cand_boxes = boxes[anchor_idx]
    keep = batched_nms(cand_boxes, cand_scores, class_idx, iou_threshold, max_detections, score_threshold)
    return cand_boxes[keep], cand_scores[keep], class_idx[keep].astype(np.int32)
