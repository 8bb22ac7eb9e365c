"""Label lists.  The official COCO checkpoints predict 90 classes indexed by COCO id - 1, with
'N/A' where COCO has no category; evaluation maps labels to dataset ids by name."""
from __future__ import annotations

from typing import List, Optional

from .errors import EdgeEdetError

COCO90_LABELS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table",
    "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave",
    "oven", "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
]


def read_labels(path: str) -> List[str]:
    """One label per line (blank lines ignored)."""
    try:
        with open(path, encoding="utf-8") as handle:
            labels = [line.strip() for line in handle if line.strip()]
    except OSError:
        raise EdgeEdetError(f"labels file {path} cannot be read") from None
    if not labels:
        raise EdgeEdetError(f"labels file {path} is empty")
    return labels


def default_labels(num_classes: int, bundled: Optional[List[str]] = None) -> List[str]:
    if bundled is not None and len(bundled) == num_classes:
        return list(bundled)
    if num_classes == len(COCO90_LABELS):
        return list(COCO90_LABELS)
    return [f"class{i}" for i in range(num_classes)]
