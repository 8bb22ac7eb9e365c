"""Zone occupancy and dwell time per track, on source time (media time for files, wall time live).

A track is in a zone when its anchor (bottom centre) is inside the polygon.  Its dwell runs from
the first frame it is seen inside to the last; a track that is briefly lost keeps its visit open
(an occluded person has not left), and the visit closes when the track is seen outside or expires.
"""
from __future__ import annotations

import collections
from typing import Dict, Iterable, Sequence, Tuple

import numpy as np

from .geometry import Zone, anchor_points


class ZoneCounter:
    def __init__(self, zone: Zone):
        self.zone = zone
        self.inside_now: Dict[int, str] = {}  # track id -> label, seen inside this frame
        self.visits: Dict[int, Tuple[float, float]] = {}  # open visits: track id -> (entered, last seen inside)
        self.closed_count, self.closed_total, self.closed_max = 0, 0.0, 0.0  # finished visits (O(1) for all-day runs)
        self.visits_total = 0

    def update(self, ids: np.ndarray, boxes: np.ndarray, labels: Sequence[str], timestamp: float,
               anchors=None) -> None:
        ids = np.asarray(ids, np.int64)
        if anchors is None:
            anchors = anchor_points(boxes)
        inside = self.zone.contains(anchors).tolist() if ids.size else []
        self.inside_now = {}
        outside = []
        for track_id, is_in, label in zip(ids.tolist(), inside, labels):
            if is_in:
                self.inside_now[track_id] = label
                visit = self.visits.get(track_id)
                if visit is None:
                    self.visits_total += 1
                self.visits[track_id] = (timestamp if visit is None else visit[0], timestamp)
            elif track_id in self.visits:
                outside.append(track_id)
        self.forget(outside)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Tracks seen outside, or expired: their open visits end at their last sighting inside."""
        for track_id in track_ids:
            visit = self.visits.pop(track_id, None)
            if visit is not None:
                dwell = visit[1] - visit[0]
                self.closed_count += 1
                self.closed_total += dwell
                self.closed_max = max(self.closed_max, dwell)

    def counts(self) -> dict:
        """occupancy / by_class: inside now; dwell_s: open visits (track id -> seconds so far);
        mean_dwell_s / max_dwell_s: over finished and open visits alike (None only before the first
        visit), so one person inside on the first frame reads 0.0 for both."""
        open_dwell = [last - entered for entered, last in self.visits.values()]
        dwell = {str(tid): round(last - entered, 2) for tid, (entered, last) in sorted(self.visits.items())}
        visits = self.closed_count + len(open_dwell)
        mean = (self.closed_total + sum(open_dwell)) / visits if visits else None
        longest = max([self.closed_max] + open_dwell) if visits else None
        return {"occupancy": len(self.inside_now),
                "by_class": dict(sorted(collections.Counter(self.inside_now.values()).items())),
                "visits": self.visits_total,
                "dwell_s": dwell,
                "mean_dwell_s": round(mean, 2) if mean is not None else None,
                "max_dwell_s": round(longest, 2) if longest is not None else None}
