"""The runtime's display filter: a score floor and a class list, applied once after post-processing
so every sink (window, video, JSON lines, MJPEG, analytics) sees the same detections.

The floor defaults to the model's own `default_threshold` (picked on validation data and stored
in the artifact's metadata); it can only raise the graph's floor, never lower it.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ..contract.errors import EdgeEdetError
from .detections import Detections


class DetectionFilter:
    def __init__(self, threshold: float = 0.0, class_ids: Optional[Sequence[int]] = None):
        self.threshold = float(threshold)
        self.class_ids = None if class_ids is None else np.asarray(sorted(set(class_ids)), np.int32)

    def __call__(self, found: Detections) -> Detections:
        keep = found.scores >= self.threshold
        if self.class_ids is not None:
            keep &= np.isin(found.class_ids, self.class_ids)
        if keep.all():
            return found
        return Detections(found.boxes[keep], found.scores[keep], found.class_ids[keep],
                          [label for label, kept in zip(found.labels, keep) if kept])


def check_threshold(value: float) -> float:
    """A score threshold from 0 to 1 (NaN and 1.5 refused in one sentence)."""
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise EdgeEdetError(f"--threshold must be a number from 0 to 1, got {value:g}")
    return value


def class_ids_for(names: Sequence[str], labels: Sequence[str]) -> list:
    """Label names -> indices into the model's label list; an unknown name names the known ones."""
    index = {}
    for position, label in enumerate(labels):
        index.setdefault(label.strip().lower(), []).append(position)
    unknown = [name for name in names if name.strip().lower() not in index]
    if unknown:
        known = [label for label in dict.fromkeys(labels) if label.upper() != "N/A"]
        shown = ", ".join(known[:20]) + (f" (and {len(known) - 20} more)" if len(known) > 20 else "")
        raise EdgeEdetError(f"--classes {', '.join(unknown)}: not a label of this model; it knows {shown}")
    return [position for name in names for position in index[name.strip().lower()]]


def make_filter(info, threshold: Optional[float] = None, classes: Optional[Sequence[str]] = None,
                warn=None) -> DetectionFilter:
    """The filter a run applies: --threshold (else the model's default) and --classes, checked against
    the model's metadata."""
    floor = float(info.score_threshold)
    if threshold is None:
        threshold = info.display_threshold
    else:
        threshold = check_threshold(threshold)
        if threshold < floor and warn:
            warn(f"--threshold {threshold:g} is below this model's graph floor {floor:g}: boxes under {floor:g} "
                 "were already dropped inside the graph (re-export with a lower --score-threshold to see them)")
    ids = class_ids_for(classes, info.labels) if classes else None
    return DetectionFilter(max(threshold, floor), ids)
