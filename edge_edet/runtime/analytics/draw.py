"""The analytics overlay: track trails, counting lines with their names, zones with occupancy, a
counts panel.  Drawn before the boxes (overlay.draw_overlay), into the same tags.TagLayout, so the
zone and line tags, the panel and the box labels keep off each other; a track's trail has its
box's colour, and a line flashes white on the frame a track crosses it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from ..tags import FONT, TagLayout, overlay_scale, track_color

if TYPE_CHECKING:
    from .stream import AnalyticsFrame

LINE_COLOR = (0, 215, 255)  # amber (BGR)
ZONE_COLOR = (255, 160, 0)  # azure
FLASH_COLOR = (255, 255, 255)


def draw_analytics(frame: np.ndarray, view: "AnalyticsFrame", layout: Optional[TagLayout] = None) -> np.ndarray:
    """Zones, lines, trails and a counts panel (top right), in place, under the detection boxes;
    `layout`: the frame's tags (the boxes' labels are placed into it afterwards)."""
    font_scale, thickness = overlay_scale(frame)
    if layout is None:
        layout = TagLayout(frame, font_scale)
    layout.reserve(_draw_panel(frame, view, font_scale))
    if view.zones:
        overlay = frame.copy()
        for zone in view.zones:
            cv2.fillPoly(overlay, [np.round(np.asarray(zone.points)).astype(np.int32)], ZONE_COLOR)
        cv2.addWeighted(overlay, 0.15, frame, 0.85, 0, dst=frame)
        for zone in view.zones:
            pts = np.round(np.asarray(zone.points)).astype(np.int32)
            cv2.polylines(frame, [pts], True, ZONE_COLOR, thickness, cv2.LINE_AA)
    arrows = []
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
        arrows.append((line.name, tip, normal))
    for track_id, trail in view.trails.items():
        if len(trail) > 1:
            pts = np.round(np.asarray(trail)).astype(np.int32)
            cv2.polylines(frame, [pts], False, track_color(track_id), thickness, cv2.LINE_AA)
    # the tags last, over the shapes and trails: a zone's just inside its top-left corner, a line's
    # name past its arrow's tip (counts: the panel)
    for zone in view.zones:
        pts = np.asarray(zone.points, float)
        text = f"{zone.name}: {view.occupied.get(zone.name, 0)}"
        w, h, _ = layout.size(text)
        left, top, right, bottom = pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()
        layout.draw(frame, text, ZONE_COLOR, [(left + 4, top + 4), (left, top - h), (right - w - 4, top + 4),
                                              (left + 4, bottom - h - 4), (left, bottom)])
    for name, tip, normal in arrows:
        w, h, _ = layout.size(name)
        # beyond the tip, on the arrow's side: left of it when the arrow points left
        x = tip[0] + 4 if normal[0] >= 0 else tip[0] - w - 4
        layout.draw(frame, name, LINE_COLOR, [(x, tip[1] - h / 2), (x, tip[1] + h / 2), (x, tip[1] - 1.5 * h)])
    return frame


def _draw_panel(frame, view: "AnalyticsFrame", font_scale: float) -> tuple:
    """The counts, top right, white on a darkened box; returns the box (x1, y1, x2, y2)."""
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
    region[:] = (region * 0.35).astype(np.uint8)
    for k, text in enumerate(rows):
        cv2.putText(frame, text, (x0 + 6, 4 + step * (k + 1) - 4), FONT, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return x0, 4, width - 4, y1
