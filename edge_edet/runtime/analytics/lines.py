"""Counting tracks that cross a line, per direction and per class, each real crossing once.

A track's side of the line changes only when its anchor (bottom centre of the filtered box) is
clearly past it: more than a dead band of `DEAD_BAND` of the box height (at least `MIN_DEAD_BAND_PX`)
away.  So a box that jitters on the line, or stands on it, flips nothing and counts once when it
finally leaves on the other side; a track first seen inside the band gets its side when it
leaves the band, and a crossing counts only if the anchor is then beside the segment (not past
its ends).
"""
from __future__ import annotations

from typing import Dict, Iterable, List

import numpy as np

from .geometry import Line, anchor_points

DEAD_BAND = 0.1  # of the box height
MIN_DEAD_BAND_PX = 2.0
DIRECTIONS = ("in", "out")


class LineCounter:
    def __init__(self, line: Line):
        self.line = line
        self.sides: Dict[int, int] = {}  # track id -> +1 ('in' side) / -1, once clearly on one side
        self.totals = {d: 0 for d in DIRECTIONS}
        self.by_class: Dict[str, Dict[str, int]] = {}
        self.crossed_now: List[int] = []  # track ids that crossed in the last update (the overlay flashes)

    def update(self, tracks: Iterable) -> List[tuple]:
        """Feed the confirmed tracks seen this frame; returns (track_id, direction) crossings."""
        tracks = list(tracks)
        self.crossed_now = []
        if not tracks:
            return []
        boxes = np.array([t.box for t in tracks], np.float64)
        points = anchor_points(boxes)
        distance = self.line.signed_distance(points)
        along = self.line.along(points)
        band = np.maximum(MIN_DEAD_BAND_PX, DEAD_BAND * (boxes[:, 3] - boxes[:, 1]))
        events = []
        for track, dist, pos, margin in zip(tracks, distance, along, band):
            if abs(dist) <= margin:
                continue
            side = 1 if dist > 0 else -1
            previous = self.sides.get(track.track_id)
            self.sides[track.track_id] = side
            if previous is None or previous == side or not (0.0 <= pos <= 1.0):
                continue
            direction = "in" if side > 0 else "out"
            self.totals[direction] += 1
            per_class = self.by_class.setdefault(track.label, {d: 0 for d in DIRECTIONS})
            per_class[direction] += 1
            self.crossed_now.append(track.track_id)
            events.append((track.track_id, direction))
        return events

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            self.sides.pop(track_id, None)

    def counts(self) -> dict:
        return {"in": self.totals["in"], "out": self.totals["out"],
                "by_class": {label: dict(v) for label, v in sorted(self.by_class.items())}}
