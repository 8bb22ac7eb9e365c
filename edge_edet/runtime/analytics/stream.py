"""Tracking plus counting for one stream: what the pipeline calls once per frame, in frame order.

    analytics = StreamAnalytics(fps=source.fps, lines=[...], zones=[...])   # shapes in pixels
    result = analytics.update(boxes, scores, class_ids, labels, index, t)   # result.track_ids[i]
    analytics.counts()                                                      # cumulative, JSON-ready

counts() is built at most once per frame, on demand, and is safe to call from another thread
(the MJPEG server's GET /counts).
"""
from __future__ import annotations

import threading
from typing import Optional, Sequence

from .geometry import Line, Zone
from .lines import LineCounter
from .tracker import ByteTracker, TrackerSettings, TrackResult
from .zones import ZoneCounter


class StreamAnalytics:
    def __init__(self, fps: Optional[float] = None, lines: Sequence[Line] = (), zones: Sequence[Zone] = (),
                 settings: Optional[TrackerSettings] = None):
        self.tracker = ByteTracker(fps=fps, settings=settings)
        self.lines = [LineCounter(line) for line in lines]
        self.zones = [ZoneCounter(zone) for zone in zones]
        self.last: Optional[TrackResult] = None
        self._lock = threading.Lock()
        self._counts: Optional[dict] = None

    def update(self, boxes, scores, class_ids, labels=None, frame_index: Optional[int] = None,
               timestamp: float = 0.0) -> TrackResult:
        """Track one frame's detections and update every counter."""
        result = self.tracker.update(boxes, scores, class_ids, labels, frame_index)
        with self._lock:
            for counter in self.lines:
                counter.forget(result.removed)
                counter.update(result.ids, result.boxes, result.labels, result.anchors)
            for zone in self.zones:
                zone.forget(result.removed)
                zone.update(result.ids, result.boxes, result.labels, timestamp, result.anchors)
            self.last = result
            self._counts = None
        return result

    def counts(self) -> dict:
        """Cumulative line counts, current zone occupancy and dwell, and tracks (IDs) given so far."""
        with self._lock:
            if self._counts is None:
                self._counts = {"tracks": self.tracker.confirmed_total,
                                "lines": {c.line.name: c.counts() for c in self.lines},
                                "zones": {z.zone.name: z.counts() for z in self.zones}}
            return self._counts
