"""The analytics overlay: track trails, counting lines with their counts, zones with occupancy, a
counts panel.  Drawn before the boxes (overlay.draw_detections adds the IDs to the tags); a
track's trail has its box's colour, and a line flashes white on the frame a track crosses it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..overlay import FONT, overlay_scale, track_color

if TYPE_CHECKING:
    from .stream import AnalyticsFrame

LINE_COLOR = (0, 215, 255)  # amber (BGR)
ZONE_COLOR = (255, 160, 0)  # azure
FLASH_COLOR = (255, 255, 255)


def _text(frame, text, origin, scale, color, thickness=1):
    cv2.putText(frame, text, origin, FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, FONT, scale, color, thickness, cv2.LINE_AA)


def draw_analytics(frame: np.ndarray, view: "AnalyticsFrame") -> np.ndarray:
    """Zones, lines, trails and a counts panel (top right), in place, under the detection boxes."""
    font_scale, thickness = overlay_scale(frame)
    if view.zones:
        overlay = frame.copy()
        for zone in view.zones:
            cv2.fillPoly(overlay, [np.round(np.asarray(zone.points)).astype(np.int32)], ZONE_COLOR)
        cv2.addWeighted(overlay, 0.15, frame, 0.85, 0, dst=frame)
        for zone in view.zones:
            pts = np.round(np.asarray(zone.points)).astype(np.int32)
            cv2.polylines(frame, [pts], True, ZONE_COLOR, thickness, cv2.LINE_AA)
            _text(frame, f"{zone.name}: {view.occupied.get(zone.name, 0)}", tuple(pts[0] + [4, 18]), font_scale,
                  ZONE_COLOR)
    flash = bool(view.crossed)
    for line in view.lines:
        p1 = tuple(int(round(v)) for v in line.p1)
        p2 = tuple(int(round(v)) for v in line.p2)
        cv2.line(frame, p1, p2, FLASH_COLOR if flash else LINE_COLOR, thickness + 1, cv2.LINE_AA)
        # an arrow from the middle towards the 'in' side (right-hand side walking from p1 to p2)
        mid = np.array([(p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2])
        d = np.array([p2[0] - p1[0], p2[1] - p1[1]], float)
        normal = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9)
        tip = mid + normal * 25 * max(1.0, font_scale * 2)
        cv2.arrowedLine(frame, tuple(int(v) for v in mid), tuple(int(v) for v in tip), LINE_COLOR, thickness,
                        cv2.LINE_AA, tipLength=0.35)
        _text(frame, line.name, (tuple(int(v) for v in tip + [4, 0])), font_scale, LINE_COLOR)  # counts: the panel
    for track_id, trail in view.trails.items():
        if len(trail) > 1:
            pts = np.round(np.asarray(trail)).astype(np.int32)
            cv2.polylines(frame, [pts], False, track_color(track_id), thickness, cv2.LINE_AA)
    _draw_panel(frame, view, font_scale, thickness)
    return frame


def _draw_panel(frame, view: "AnalyticsFrame", font_scale: float, thickness: int) -> None:
    """The counts, top right, white on a darkened box."""
    rows = [f"tracks {view.counts['tracks']}"]
    for name, c in view.counts["lines"].items():
        rows.append(f"{name}: in {c['in']}  out {c['out']}")
    for name, z in view.counts["zones"].items():
        rows.append(f"{name}: {z['occupancy']} now, {z['visits']} visits")
    sizes = [cv2.getTextSize(text, FONT, font_scale, 1)[0] for text in rows]
    step = max(h for _, h in sizes) + 8
    box_w = max(w for w, _ in sizes) + 12
    height, width = frame.shape[:2]
    x0, y1 = max(0, width - box_w - 4), min(height, 4 + step * len(rows) + 4)
    region = frame[4:y1, x0:width - 4]
    region[:] = (region * 0.45).astype(np.uint8)
    for k, text in enumerate(rows):
        cv2.putText(frame, text, (x0 + 6, 4 + step * (k + 1) - 4), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
