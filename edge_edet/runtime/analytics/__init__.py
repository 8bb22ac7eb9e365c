"""Stream analytics on top of per-frame detections: tracking, line and zone counting, a smoothed rate.

Torch-free: numpy, scipy for the Hungarian step, and OpenCV only to draw the overlay (draw.py),
so it runs wherever the runtime runs.  `StreamAnalytics` is what the pipeline uses; the parts
stand alone:

    tracker = ByteTracker(fps=25)                       # stable IDs, per class
    result = tracker.update(boxes, scores, class_ids)   # result.track_ids[i] for detection i
    line = LineCounter(Line((0, 300), (640, 300), "door"))
    zone = ZoneCounter(Zone(((0, 0), (200, 0), (200, 200)), "desk"))
"""
from .geometry import Line, Zone, parse_line, parse_zone
from .lines import LineCounter
from .rate import SmoothedRate
from .stream import AnalyticsFrame, StreamAnalytics
from .tracker import ByteTracker, TrackerSettings, TrackResult
from .zones import ZoneCounter

__all__ = ["AnalyticsFrame", "ByteTracker", "Line", "LineCounter", "SmoothedRate", "StreamAnalytics",
           "TrackerSettings", "TrackResult", "Zone", "ZoneCounter", "parse_line", "parse_zone"]
