"""Zone occupancy and dwell time per track, on source time (media time for files, wall time live).

A track is in a zone when its anchor (bottom centre) is inside the polygon.  Its dwell runs from
the first frame it is seen inside to the last; a track that is briefly lost keeps its visit open
(an occluded person has not left), and the visit closes when the track is seen outside or expires.
"""
from __future__ import annotations

import collections
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from .geometry import Zone, anchor_points


class ZoneCounter:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.inside_now: Dict[int, str] = {}  # track id -> label, seen inside this frame
        self.visits: Dict[int, Tuple[float, float]] = {}  # open visits: track id -> (entered, last seen inside)
        self.completed: List[float] = []  # dwell seconds of closed visits
        self.visits_total = 0

    def update(self, ids: np.ndarray, boxes: np.ndarray, labels: Sequence[str], timestamp: float,
               anchors=None) -> None:
        ids = np.asarray(ids, np.int64)
        if anchors is None:
            anchors = anchor_points(boxes)
        inside = self.zone.contains(anchors) if ids.size else np.zeros(0, bool)
        self.inside_now = {int(ids[k]): labels[k] for k in np.flatnonzero(inside)}
        for track_id in self.inside_now:
            entered = self.visits.get(track_id, (None,))[0]
            if entered is None:
                entered = timestamp
                self.visits_total += 1
            self.visits[track_id] = (entered, timestamp)
        if self.visits:
            outside = [int(i) for i in ids[~inside] if int(i) in self.visits]
            self.forget(outside)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Tracks seen outside, or expired: their open visits end at their last sighting inside."""
        for track_id in track_ids:
            visit = self.visits.pop(track_id, None)
            if visit is not None:
                self.completed.append(visit[1] - visit[0])

    def counts(self) -> dict:
        closed = self.completed
        current = [last - entered for entered, last in self.visits.values()]
        return {"occupancy": len(self.inside_now),
                "by_class": dict(sorted(collections.Counter(self.inside_now.values()).items())),
                "visits": self.visits_total,
                "dwell_s": {str(tid): round(last - entered, 2) for tid, (entered, last) in sorted(self.visits.items())},
                "mean_dwell_s": round(float(np.mean(closed)), 2) if closed else None,
                "max_dwell_s": round(float(max(closed + current)), 2) if (closed or current) else None}
