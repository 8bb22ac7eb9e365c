"""Zone occupancy and dwell time per track, on source time (media time for files, wall time live).

A track is in a zone when its anchor (bottom centre) is inside the polygon.  Its dwell runs from
the first frame it is seen inside to the last; a track that is briefly lost keeps its visit open
(an occluded person has not left), and the visit closes when the track is seen outside or expires.
"""
from __future__ import annotations

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
        track_ids = ids.tolist()
        inside = np.flatnonzero(self.zone.contains(anchors)).tolist() if track_ids else []
        self.inside_now = {track_ids[k]: labels[k] for k in inside}
        visits = self.visits
        for track_id in self.inside_now:
            visit = visits.get(track_id)
            if visit is None:
                self.visits_total += 1
                visits[track_id] = (timestamp, timestamp)
            else:
                visits[track_id] = (visit[0], timestamp)
        if len(visits) > len(self.inside_now):  # open visits of tracks seen outside now end
            self.forget([t for t in track_ids if t in visits and t not in self.inside_now])

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
        dwell, total, longest = {}, self.closed_total, self.closed_max
        for track_id, (entered, last) in sorted(self.visits.items()):
            seconds = last - entered
            dwell[str(track_id)] = round(seconds, 2)
            total += seconds
            longest = max(longest, seconds)
        visits = self.closed_count + len(dwell)
        mean = total / visits if visits else None
        longest = longest if visits else None
        by_class: Dict[str, int] = {}
        for label in self.inside_now.values():
            by_class[label] = by_class.get(label, 0) + 1
        return {"occupancy": len(self.inside_now),
                "by_class": dict(sorted(by_class.items())),
                "visits": self.visits_total,
                "dwell_s": dwell,
                "mean_dwell_s": round(mean, 2) if mean is not None else None,
                "max_dwell_s": round(longest, 2) if longest is not None else None}
