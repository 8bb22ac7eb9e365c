"""Zone occupancy and dwell time per track, on source time (media time for files, wall time live).

A track is in a zone when its anchor (bottom centre) is inside the polygon.  Its dwell runs from
the first frame it is seen inside to the last; a track that is briefly lost keeps its visit open
(an occluded person has not left), and the visit closes when the track is seen outside or expires.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import numpy as np

from .geometry import Zone, anchor_points


class ZoneCounter:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.inside_now: Dict[int, str] = {}  # track id -> label, seen inside this frame
        self.visits: Dict[int, Tuple[float, float]] = {}  # open visits: track id -> (entered, last seen inside)
        self.visit_labels: Dict[int, str] = {}
        self.completed: List[float] = []  # dwell seconds of closed visits
        self.visits_total = 0

    def update(self, tracks: Iterable, timestamp: float) -> None:
        tracks = list(tracks)
        self.inside_now = {}
        if tracks:
            inside = self.zone.contains(anchor_points(np.array([t.box for t in tracks])))
        else:
            inside = np.zeros((0,), bool)
        for track, is_in in zip(tracks, inside):
            tid = track.track_id
            if is_in:
                self.inside_now[tid] = track.label
                if tid in self.visits:
                    self.visits[tid] = (self.visits[tid][0], timestamp)
                else:
                    self.visits[tid] = (timestamp, timestamp)
                    self.visit_labels[tid] = track.label
                    self.visits_total += 1
            elif tid in self.visits:
                self._close(tid)

    def _close(self, track_id: int) -> None:
        entered, last = self.visits.pop(track_id)
        self.visit_labels.pop(track_id, None)
        self.completed.append(last - entered)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Expired tracks: their open visits end at their last sighting inside."""
        for track_id in track_ids:
            if track_id in self.visits:
                self._close(track_id)

    def counts(self) -> dict:
        by_class: Dict[str, int] = {}
        for label in self.inside_now.values():
            by_class[label] = by_class.get(label, 0) + 1
        dwell = {str(tid): round(last - entered, 2) for tid, (entered, last) in sorted(self.visits.items())}
        closed = self.completed
        return {"occupancy": len(self.inside_now), "by_class": dict(sorted(by_class.items())),
                "visits": self.visits_total, "dwell_s": dwell,
                "mean_dwell_s": round(float(np.mean(closed)), 2) if closed else None,
                "max_dwell_s": round(float(max(closed + [last - e for e, last in self.visits.values()])), 2)
                if (closed or self.visits) else None}
