"""Tracking plus counting for one stream: what the pipeline calls once per frame, in frame order.

    analytics = StreamAnalytics(fps=source.fps, lines=[...], zones=[...])   # shapes in pixels
    ids = analytics.update(detections, frame_index, timestamp)              # track id per detection
    analytics.counts()                                                      # cumulative, JSON-ready

counts() is safe to call from another thread (the MJPEG server's GET /counts).
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

import numpy as np

from .geometry import Line, Zone
from .lines import LineCounter
from .tracker import ByteTracker, TrackerSettings


class StreamAnalytics:
    def __init__(self, fps: Optional[float] = None, lines: Sequence[Line] = (), zones: Sequence[Zone] = (),
                 settings: Optional[TrackerSettings] = None):
        from .zones import ZoneCounter

        self.tracker = ByteTracker(fps=fps, settings=settings)
        self.lines = [LineCounter(line) for line in lines]
        self.zones = [ZoneCounter(zone) for zone in zones]
        self.last_tracks = []  # confirmed tracks seen in the last frame (for the overlay)
        self._lock = threading.Lock()
        self._counts = self._snapshot()

    def update(self, boxes, scores, class_ids, labels=None, frame_index: Optional[int] = None,
               timestamp: float = 0.0) -> np.ndarray:
        """Track one frame's detections and update every counter; returns the track id per detection."""
        result = self.tracker.update(boxes, scores, class_ids, labels, frame_index)
        for counter in self.lines:
            counter.forget(result.removed)
            counter.update(result.tracks)
        for zone in self.zones:
            zone.forget(result.removed)
            zone.update(result.tracks, timestamp)
        self.last_tracks = result.tracks
        snapshot = self._snapshot()
        with self._lock:
            self._counts = snapshot
        return result.track_ids

    def _snapshot(self) -> dict:
        return {"tracks": self.tracker.confirmed_total,
                "lines": {c.line.name: c.counts() for c in self.lines},
                "zones": {z.zone.name: z.counts() for z in self.zones}}

    def counts(self) -> dict:
        """Cumulative line counts, current zone occupancy and dwell, tracks seen so far."""
        with self._lock:
            return self._counts
