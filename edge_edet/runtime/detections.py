"""Per-frame detection results, in the frame's own pixels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np


@dataclass
class Detections:
    boxes: np.ndarray  # [N, 4] float32 x1, y1, x2, y2 in frame pixels
    scores: np.ndarray  # [N] float32, descending
    class_ids: np.ndarray  # [N] int32, 0-based index into the label list
    labels: List[str] = field(default_factory=list)  # [N] label names
    analytics: Optional[Any] = None  # analytics.AnalyticsFrame when tracking: track IDs, trails, counts

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32), [])

    def to_records(self) -> list:
        """JSON-friendly rows: {'box': [x1, y1, x2, y2], 'score', 'class_id', 'label'}, plus 'track_id'
        when tracking (-1: a detection that is not part of a confirmed track)."""
        records = [{"box": [round(float(v), 2) for v in box], "score": round(float(score), 5),
                    "class_id": int(cid), "label": label}
                   for box, score, cid, label in zip(self.boxes, self.scores, self.class_ids, self.labels)]
        if self.analytics is not None:
            for record, track_id in zip(records, self.analytics.track_ids.tolist()):
                record["track_id"] = int(track_id)
        return records
