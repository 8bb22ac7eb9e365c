"""Draw detections (with track IDs when tracking) and the live FPS onto a BGR frame, with plain OpenCV calls.

Tags are laid out by tags.TagLayout (inside the frame, not over each other, legible on any
background).  When tracking, only detections that belong to a confirmed track are drawn: one that
is not (track_id -1: a first sighting, or a box no track claimed) stays in the JSON lines but
not on the picture, where it would read as a second object (docs/analytics.md).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .analytics.draw import draw_analytics
from .detections import Detections
from .tags import FONT, TagLayout, class_color, overlay_scale, track_color  # noqa: F401 (FONT, class_color: API)

__all__ = ["FONT", "class_color", "track_color", "overlay_scale", "draw_overlay", "draw_detections", "fps_rect"]


def fps_rect(frame: np.ndarray, font_scale: float, thickness: int) -> tuple:
    """Where the FPS counter goes (top left): (origin, scale, rect), so a layout can keep tags off it."""
    scale = font_scale * 1.5
    (tw, th), base = cv2.getTextSize("000.0 FPS", FONT, scale, thickness + 2)
    origin = (6, 6 + th)
    return origin, scale, (0, 0, 6 + tw + 6, 6 + th + base + 4)


def draw_detections(frame: np.ndarray, detections: Detections, fps: Optional[float] = None,
                    layout: Optional[TagLayout] = None) -> np.ndarray:
    """Boxes, 'label score' tags (with '#ID ' when tracking) and an FPS counter drawn onto `frame`;
    returns the same array.  `layout`: the frame's tags placed so far (the analytics overlay's)."""
    font_scale, thickness = overlay_scale(frame)
    if layout is None:
        layout = TagLayout(frame, font_scale)
    if fps is not None:
        origin, fps_scale, rect = fps_rect(frame, font_scale, thickness)
        layout.reserve(rect)
    view = detections.analytics  # tracking: the ID in the tag and one colour per track
    if view is not None:
        keep = (view.track_ids >= 0).nonzero()[0].tolist()
    else:
        keep = range(len(detections))
    tags = []
    for i in keep:
        box = [float(v) for v in detections.boxes[i]]
        label, score = detections.labels[i], float(detections.scores[i])
        if view is not None:
            track_id = int(view.track_ids[i])
            color, text = track_color(track_id), f"#{track_id} {label} {score:.2f}"
        else:
            color, text = class_color(int(detections.class_ids[i])), f"{label} {score:.2f}"
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness)
        tags.append((-score, i, box, color, text))
    for _, _, box, color, text in sorted(tags, key=lambda t: t[:2]):  # the surest get the best spots
        w, h, _ = layout.size(text)
        layout.draw(frame, text, color, layout.box_spots(box, w, h))
    if fps is not None:
        text = f"{fps:.1f} FPS"
        cv2.putText(frame, text, origin, FONT, fps_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(frame, text, origin, FONT, fps_scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


def draw_overlay(frame: np.ndarray, detections: Detections, fps: Optional[float] = None) -> np.ndarray:
    """Everything the pipeline draws on a frame: the analytics (zones, lines, trails, counts panel)
    when tracking, then the boxes and the FPS, all tags in one layout."""
    font_scale, thickness = overlay_scale(frame)
    layout = TagLayout(frame, font_scale)
    if fps is not None:
        layout.reserve(fps_rect(frame, font_scale, thickness)[2])
    if detections.analytics is not None:
        draw_analytics(frame, detections.analytics, layout)
    return draw_detections(frame, detections, fps, layout)
