"""The latest frame of every source tiled into one image (DeepStream's tiler), for a window or a preview.

    mosaic = Mosaic(["cam0", "rtsp://cam1/...", "clip.mp4"])
    mosaic.put(1, frame)       # source 1's newest rendered frame goes into its tile
    view = mosaic.image        # the tiled image (None before the first frame)

A grid of ceil(sqrt(N)) columns; every tile has the first frame's aspect ratio, at most
MAX_WIDTH pixels wide all together, and each frame is letterboxed into its tile with its source's
number and name in the corner.  A source with no frame yet stays black.  With one source the
mosaic is that source's frame itself, untouched.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import numpy as np

from ..contract.letterbox import letterbox

MAX_WIDTH = 1920
FONT = cv2.FONT_HERSHEY_SIMPLEX


class Mosaic:
    def __init__(self, names: Sequence[str], max_width: int = MAX_WIDTH):
        self.names = list(names) or [""]
        self.columns = math.ceil(math.sqrt(len(self.names)))
        self.rows = math.ceil(len(self.names) / self.columns)
        self.max_width = int(max_width)
        self.tile: Optional[tuple] = None  # (height, width), from the first frame
        self.image: Optional[np.ndarray] = None

    def put(self, index: int, frame: np.ndarray) -> None:
        if len(self.names) == 1:
            self.image = frame
            return
        if self.image is None:
            height, width = frame.shape[:2]
            tile_w = max(2, min(width, self.max_width // self.columns))
            tile_h = max(2, int(round(tile_w * height / width)))
            self.tile = (tile_h, tile_w)
            self.image = np.zeros((tile_h * self.rows, tile_w * self.columns, 3), np.uint8)
        tile_h, tile_w = self.tile
        row, column = divmod(int(index), self.columns)
        cell = self.image[row * tile_h:(row + 1) * tile_h, column * tile_w:(column + 1) * tile_w]
        letterbox(frame, (tile_h, tile_w), (0, 0, 0), out=cell)
        caption = f"{index}: {self.names[index]}"
        scale = max(0.35, tile_h / 900)
        origin = (6, tile_h - 8)
        cv2.putText(cell, caption, origin, FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(cell, caption, origin, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
