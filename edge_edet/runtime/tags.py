"""Text tags on the overlay (box labels, zone and line names, the FPS): each one a filled tag with
a dark rim and black or white text chosen by the fill's brightness, so it reads on any
background; placed inside the frame, at the first of its candidate spots that covers no tag
already placed (or the one covering least when all are taken), so nearby objects' labels do not
hide each other and a label at the right edge is moved in, not cut off.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
RIM = (0, 0, 0)
Rect = Tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)


def overlay_scale(frame: np.ndarray) -> tuple:
    """(font scale, line thickness) for a frame's size."""
    height, width = frame.shape[:2]
    return max(0.4, min(height, width) / 1000), max(1, int(round(min(height, width) / 300)))


def class_color(class_id: int) -> tuple:
    """A stable, well-spread BGR colour per class (golden-ratio hue steps)."""
    hue = int((class_id * 0.61803398875 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def track_color(track_id: int) -> tuple:
    """One colour per track ID (box, tag and trail), so two objects of one class are told apart."""
    return class_color(int(track_id) + 7)


def _luminance(bgr: Sequence[int]) -> float:
    """WCAG relative luminance of an sRGB colour given as BGR 0..255."""
    linear = [(c / 12.92) if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (float(v) / 255 for v in bgr[:3])]
    b, g, r = linear
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_color_on(fill: Sequence[int]) -> tuple:
    """Black or white, whichever contrasts more with the fill (WCAG contrast ratio)."""
    lum = _luminance(fill)
    return (0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else (255, 255, 255)


class TagLayout:
    """The tags of one frame: where each goes, and drawing it there.  Shared by every drawer of
    the frame (analytics, then boxes), so none covers another's."""

    def __init__(self, frame: np.ndarray, font_scale: float):
        self.height, self.width = frame.shape[:2]
        self.font_scale = font_scale
        self._taken = np.zeros((0, 4), np.int64)

    def size(self, text: str) -> Tuple[int, int, int]:
        """(width, height, baseline) of `text`'s tag, padding included."""
        (tw, th), base = cv2.getTextSize(text, FONT, self.font_scale, 1)
        return tw + 6, th + base + 4, base

    @property
    def rects(self) -> List[Rect]:
        """Every rectangle taken so far (tags and reserved areas), in order."""
        return [tuple(int(v) for v in r) for r in self._taken.tolist()]

    def reserve(self, rect: Rect) -> None:
        """Keep tags off `rect` (the counts panel, say)."""
        self._taken = np.concatenate([self._taken, np.asarray([rect], np.int64)])

    def _clamped(self, x: float, y: float, w: int, h: int) -> Rect:
        x = int(round(min(max(x, 0), max(self.width - w, 0))))
        y = int(round(min(max(y, 0), max(self.height - h, 0))))
        return x, y, x + w, y + h

    def _covered(self, rect: Rect) -> int:
        """Pixels of `rect` already under other tags."""
        if not len(self._taken):
            return 0
        t = self._taken
        dx = np.minimum(t[:, 2], rect[2]) - np.maximum(t[:, 0], rect[0])
        dy = np.minimum(t[:, 3], rect[3]) - np.maximum(t[:, 1], rect[1])
        return int((np.clip(dx, 0, None) * np.clip(dy, 0, None)).sum())

    def place(self, w: int, h: int, spots: Iterable[Tuple[float, float]]) -> Rect:
        """The first spot (top-left corners, in order of preference, moved inside the frame) where a
        w x h tag covers no other; else the one covering least.  The spot is then taken."""
        best, best_cover = None, None
        for x, y in spots:
            rect = self._clamped(x, y, w, h)
            cover = self._covered(rect)
            if best_cover is None or cover < best_cover:
                best, best_cover = rect, cover
                if cover == 0:
                    break
        if best is None:
            best = self._clamped(0, 0, w, h)
        self.reserve(best)
        return best

    def draw(self, frame: np.ndarray, text: str, fill: tuple, spots: Iterable[Tuple[float, float]]) -> Rect:
        """Place `text`'s tag at the best of `spots` and draw it: fill, dark rim, contrasting text."""
        w, h, base = self.size(text)
        rect = self.place(w, h, spots)
        x1, y1, x2, y2 = rect
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), fill, -1)
        cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), RIM, 1)
        cv2.putText(frame, text, (x1 + 3, y2 - base - 2), FONT, self.font_scale, text_color_on(fill), 1, cv2.LINE_AA)
        return rect

    def box_spots(self, box: Sequence[float], w: int, h: int) -> List[Tuple[float, float]]:
        """Where a box's label may go, best first: above its top-left corner, inside it, below it,
        then right-aligned, then a row further out."""
        x1, y1, x2, y2 = box
        return [(x1, y1 - h), (x1, y1), (x1, y2), (x1, y2 - h), (x2 - w, y1 - h), (x2 - w, y2),
                (x2 - w, y1), (x1, y1 - 2 * h), (x1, y2 + h), (x2, y1), (x1 - w, y1)]
