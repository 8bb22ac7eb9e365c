"""Tracking plus counting for one stream: what the pipeline calls once per frame, in frame order.

    analytics = StreamAnalytics(fps=source.fps, lines=[...], zones=[...])   # shapes in pixels
    result = analytics.update(boxes, scores, class_ids, labels, index, t)   # result.track_ids[i]
    analytics.counts()                                                      # cumulative, JSON-ready

counts() is built at most once per frame, on demand, and is safe to call from another thread
(the MJPEG server's GET /counts).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import Line, ShapeSpec, Zone, resolve
from .lines import LineCounter
from .tracker import ByteTracker, TrackerSettings, TrackResult
from .zones import ZoneCounter


@dataclass
class AnalyticsFrame:
    """What one frame's sinks need, copied on the tracking thread (the renderer may lag behind it):
    a track ID per detection, the seen tracks' trails, who crossed a line now, the counts, and the shapes."""

    track_ids: np.ndarray
    trails: Dict[int, List[Tuple[float, float]]]
    crossed: set
    counts: dict
    lines: Sequence[Line] = ()
    zones: Sequence[Zone] = ()
    occupied: Dict[str, int] = field(default_factory=dict)  # zone name -> occupancy now


class StreamAnalytics:
    def __init__(self, fps: Optional[float] = None, lines: Sequence[Line] = (), zones: Sequence[Zone] = (),
                 settings: Optional[TrackerSettings] = None, specs: Sequence[ShapeSpec] = ()):
        """lines / zones in pixels; or `specs` (the user's --line / --zone), resolved against the
        first frame's size when the source could not tell it beforehand."""
        self.tracker = ByteTracker(fps=fps, settings=settings)
        self.lines = [LineCounter(line) for line in lines]
        self.zones = [ZoneCounter(zone) for zone in zones]
        self._pending = list(specs)
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

    def frame(self, boxes, scores, class_ids, labels=None, frame_index: Optional[int] = None,
              timestamp: float = 0.0, frame_size: Optional[Tuple[int, int]] = None) -> AnalyticsFrame:
        """update() plus the copy a sink may keep (what the pipeline calls); frame_size (width, height)
        resolves --line / --zone specs still pending."""
        if self._pending and frame_size is not None:
            self.add_shapes(resolve(self._pending, *frame_size))
            self._pending = []
        result = self.update(boxes, scores, class_ids, labels, frame_index, timestamp)
        tracks = self.tracker.trails
        trails = {i: list(tracks[i]) for i in result.ids.tolist()}
        crossed = {i for counter in self.lines for i in counter.crossed_now}
        return AnalyticsFrame(result.track_ids, trails, crossed, self.counts(),
                              [c.line for c in self.lines], [z.zone for z in self.zones],
                              {z.zone.name: len(z.inside_now) for z in self.zones})

    def add_shapes(self, shapes: Sequence) -> None:
        """Lines and Zones (pixels) to count from now on."""
        for shape in shapes:
            if isinstance(shape, Line):
                self.lines.append(LineCounter(shape))
            else:
                self.zones.append(ZoneCounter(shape))
        with self._lock:
            self._counts = None

    def counts(self) -> dict:
        """Cumulative line counts, current zone occupancy and dwell, and tracks (IDs) given so far."""
        with self._lock:
            if self._counts is None:
                self._counts = {"tracks": self.tracker.confirmed_total,
                                "lines": {c.line.name: c.counts() for c in self.lines},
                                "zones": {z.zone.name: z.counts() for z in self.zones}}
            return self._counts
