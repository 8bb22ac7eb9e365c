"""Draw detections (with track IDs when tracking) and the live FPS onto a BGR frame, with plain OpenCV calls."""
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


def track_color(track_id: int) -> tuple:
    """One colour per track ID (box, tag and trail), so two objects of one class are told apart."""
    return class_color(int(track_id) + 7)


def overlay_scale(frame: np.ndarray) -> tuple:
    """(font scale, line thickness) for a frame's size."""
    height, width = frame.shape[:2]
    return max(0.4, min(height, width) / 1000), max(1, int(round(min(height, width) / 300)))


def draw_detections(frame: np.ndarray, detections: Detections, fps: Optional[float] = None) -> np.ndarray:
    """Boxes, 'label score' tags and an FPS counter drawn onto `frame`; returns the same array."""
    font_scale, thickness = overlay_scale(frame)
    view = detections.analytics  # tracking: the ID in the tag and one colour per track
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
