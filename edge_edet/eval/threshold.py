"""The F1-optimal score threshold of a detector on a COCO validation set.

AP rates the whole ranking; a live view needs one cut.  Detections are matched to ground truth
greedily per image and category, highest score first, at IoU >= 0.5 (the AP50 rule); a
detection that only covers a crowd region is neither right nor wrong (COCO's rule), and is left
out.  Sweeping the cut down the ranked list gives precision, recall and F1 at every score; the
threshold is the score where F1 peaks.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Sequence

import numpy as np

IOU_MATCH = 0.5


def _xyxy(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)


def _iou(box: np.ndarray, others: np.ndarray, crowd: bool = False) -> np.ndarray:
    """IoU of one xyxy box with many; for crowd regions, the share of the box inside them (COCO)."""
    if len(others) == 0:
        return np.zeros((0,))
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    if crowd:
        return inter / max(area, 1e-9)
    union = area + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def match(detections: Sequence[dict], annotations: Sequence[dict], category_ids: Sequence[int]):
    """(scores, true-positive flags) of the counted detections and the number of ground-truth boxes.

    detections: COCO result rows (image_id, category_id, bbox xywh, score); annotations: COCO
    annotation dicts; only `category_ids` are scored."""
    wanted = set(category_ids)
    truth: Dict[tuple, list] = defaultdict(list)
    crowds: Dict[tuple, list] = defaultdict(list)
    for ann in annotations:
        if ann["category_id"] in wanted:
            (crowds if ann.get("iscrowd", 0) else truth)[(ann["image_id"], ann["category_id"])].append(ann["bbox"])
    found: Dict[tuple, list] = defaultdict(list)
    for row in detections:
        if row["category_id"] in wanted:
            found[(row["image_id"], row["category_id"])].append(row)
    scores: List[float] = []
    hits: List[bool] = []
    for key, rows in found.items():
        gts = _xyxy(truth.get(key, np.zeros((0, 4))))
        crowd = _xyxy(crowds.get(key, np.zeros((0, 4))))
        taken = np.zeros(len(gts), bool)
        for row in sorted(rows, key=lambda r: -r["score"]):
            box = _xyxy(row["bbox"])[0]
            ious = np.where(taken, -1.0, _iou(box, gts))
            if len(ious) and ious.max() >= IOU_MATCH:
                taken[int(ious.argmax())] = True
                hit = True
            elif len(crowd) and _iou(box, crowd, crowd=True).max() >= IOU_MATCH:
                continue  # on a crowd region: not counted either way
            else:
                hit = False
            scores.append(float(row["score"]))
            hits.append(hit)
    total = sum(len(v) for v in truth.values())
    return np.asarray(scores, np.float64), np.asarray(hits, bool), total


def f1_curve(scores: np.ndarray, hits: np.ndarray, total: int) -> dict:
    """Precision, recall and F1 when keeping every detection scoring at least each score."""
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], hits[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(total, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # ties: a cut keeps every detection of equal score, so read the curve at each score's last index
    last = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    return {"score": scores[last], "precision": precision[last], "recall": recall[last], "f1": f1[last]}


def best_threshold(curve: dict) -> dict:
    """The F1 peak: the threshold (scores >= it are kept) and its precision, recall and F1."""
    if len(curve["f1"]) == 0:
        return {"threshold": None, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    i = int(np.argmax(curve["f1"]))
    return {"threshold": float(curve["score"][i]), "precision": float(curve["precision"][i]),
            "recall": float(curve["recall"][i]), "f1": float(curve["f1"][i])}


def at_threshold(curve: dict, threshold: float) -> dict:
    """Precision, recall and F1 when keeping scores >= threshold."""
    kept = np.nonzero(curve["score"] >= threshold)[0]
    if len(kept) == 0:
        return {"threshold": threshold, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    i = int(kept[-1])
    return {"threshold": threshold, "precision": float(curve["precision"][i]),
            "recall": float(curve["recall"][i]), "f1": float(curve["f1"][i])}
