"""Counting tracks that cross a line, per direction and per class, each real crossing once.

A track's side of the line changes only when its anchor (bottom centre of the filtered box) is
clearly past it: more than a dead band of `DEAD_BAND` of the box height (at least `MIN_DEAD_BAND_PX`)
away.  So a box that jitters on the line, or stands on it, flips nothing and counts once when it
finally leaves on the other side; a track first seen inside the band gets its side when it
leaves the band, and a crossing counts only if the anchor is then beside the segment (not past
its ends).  Sides are kept in an array indexed by track ID (one byte per track ever seen).
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence

import numpy as np

from .geometry import Line, anchor_points

DEAD_BAND = 0.1  # of the box height
MIN_DEAD_BAND_PX = 2.0
DIRECTIONS = ("in", "out")


class LineCounter:
    def __init__(self, line: Line):
        self.line = line
        self._sides = np.zeros(256, np.int8)  # by track id: +1 'in' side, -1 'out' side, 0 not yet clear
        self.totals = {d: 0 for d in DIRECTIONS}
        self.by_class: Dict[str, Dict[str, int]] = {}
        self.crossed_now: List[int] = []  # track ids that crossed in the last update (the overlay flashes them)

    def update(self, ids: np.ndarray, boxes: np.ndarray, labels: Sequence[str], anchors=None) -> List[tuple]:
        """Feed the confirmed tracks seen this frame; returns (track_id, direction) crossings."""
        self.crossed_now = []
        ids = np.asarray(ids, np.int64)
        if ids.size == 0:
            return []
        if ids.max() >= self._sides.size:
            self._sides = np.concatenate([self._sides, np.zeros(max(self._sides.size, int(ids.max()) + 1), np.int8)])
        boxes = np.asarray(boxes, np.float64)
        points = anchor_points(boxes) if anchors is None else anchors
        distance = self.line.signed_distance(points)
        band = boxes[:, 3] - boxes[:, 1]
        band *= DEAD_BAND
        np.maximum(band, MIN_DEAD_BAND_PX, out=band)
        clear = np.abs(distance) > band
        side = np.where(distance > 0, 1, -1).astype(np.int8)
        side[~clear] = 0
        previous = self._sides[ids]
        flipped = clear & (previous != 0) & (side != previous)
        self._sides[ids[clear]] = side[clear]
        events = []
        if flipped.any():
            along = self.line.along(points)
            for k in np.flatnonzero(flipped & (along >= 0) & (along <= 1)):
                direction = "in" if side[k] > 0 else "out"
                self.totals[direction] += 1
                per_class = self.by_class.setdefault(labels[k], {d: 0 for d in DIRECTIONS})
                per_class[direction] += 1
                self.crossed_now.append(int(ids[k]))
                events.append((int(ids[k]), direction))
        return events

    def forget(self, track_ids: Iterable[int]) -> None:
        for track_id in track_ids:
            if track_id < self._sides.size:
                self._sides[track_id] = 0

    def counts(self) -> dict:
        return {"in": self.totals["in"], "out": self.totals["out"],
                "by_class": {label: dict(v) for label, v in sorted(self.by_class.items())}}
