"""Letterbox: keep aspect ratio, resize, pad bottom/right with the normalisation mean colour.

The one pre-processing function: the runtime, calibration and training all call it, so an
engine never sees images prepared differently from those it was calibrated or trained on.
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np


def letterbox_scale(frame_hw: Tuple[int, int], size_hw: Tuple[int, int]) -> float:
    return min(size_hw[0] / frame_hw[0], size_hw[1] / frame_hw[1])


def letterbox(frame: np.ndarray, size_hw: Tuple[int, int], pad_color=(0, 0, 0),
              out: Optional[np.ndarray] = None) -> Tuple[np.ndarray, float]:
    """Resize `frame` (HxWx3 BGR, or HxWx4 BGRx) into `out` (size_hw + (3,), reused if given); returns (out, scale).

    A box (x1, y1, x2, y2) in letterboxed pixels maps back to the frame by dividing by `scale`.
    BGRx frames (a GStreamer pipeline without its CPU videoconvert) lose their fourth channel here,
    on the smaller side of the resize: before a downscale, after an upscale.
    """
    if frame is None or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError("letterbox expects an HxWx3 (BGR) or HxWx4 (BGRx) image")
    height, width = size_hw
    if out is None:
        out = np.empty((height, width, 3), dtype=np.uint8)
    scale = letterbox_scale(frame.shape[:2], size_hw)
    new_w = max(1, min(width, int(round(frame.shape[1] * scale))))
    new_h = max(1, min(height, int(round(frame.shape[0] * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    same = (new_h, new_w) == frame.shape[:2]
    if frame.shape[2] == 4 and scale < 1:  # BGRx, downscaled: OpenCV's SIMD conversion first (cheaper than
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)  # INTER_AREA on 4 channels, or GStreamer's videoconvert)
    if frame.shape[2] == 4:  # BGRx, same size or upscaled: drop the 4th channel of the (smaller) source side
        cv2.cvtColor(frame if same else cv2.resize(frame, (new_w, new_h), interpolation=interp),
                     cv2.COLOR_BGRA2BGR, dst=out[:new_h, :new_w])
    elif same:
        out[:new_h, :new_w] = frame
    else:
        cv2.resize(frame, (new_w, new_h), dst=out[:new_h, :new_w], interpolation=interp)
    if new_w < width:
        out[:, new_w:] = pad_color
    if new_h < height:
        out[new_h:, :new_w] = pad_color
    return out, scale
