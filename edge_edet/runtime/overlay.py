"""Draw detections, the live FPS and (when tracking) track IDs, trails, lines and zones onto a BGR frame."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .detections import Detections

FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_color(class_id: int) -> tuple:
    """A stable, well-spread BGR colour per class (golden-ratio hue steps)."""
    hue = int((class_id * 0.61803398875 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(frame: np.ndarray, detections: Detections, fps: Optional[float] = None) -> np.ndarray:
    """Boxes, 'label score' tags and an FPS counter drawn onto `frame`; returns the same array."""
    height, width = frame.shape[:2]
    thickness = max(1, int(round(min(height, width) / 300)))
    font_scale = max(0.4, min(height, width) / 1000)
    view = detections.analytics  # tracking: ID in the tag, one colour per track, trails, lines, zones
    if view is not None:
        from .analytics.draw import draw_analytics, track_color

        draw_analytics(frame, view, font_scale, thickness)
    track_ids = view.track_ids.tolist() if view is not None else [-1] * len(detections)
    for box, score, class_id, label, track_id in zip(detections.boxes, detections.scores, detections.class_ids,
                                                     detections.labels, track_ids):
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        color = track_color(track_id) if track_id >= 0 else class_color(int(class_id))
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness)
        text = f"#{track_id} {label} {float(score):.2f}" if track_id >= 0 else f"{label} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(frame, (x1, top), (x1 + tw + 2, top + th + base + 2), color, -1)
        cv2.putText(frame, text, (x1 + 1, top + th + 1), FONT, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.1f} FPS"
        origin = (6, int(22 * max(1.0, font_scale * 2)))
        cv2.putText(frame, text, origin, FONT, font_scale * 1.5, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(frame, text, origin, FONT, font_scale * 1.5, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame
