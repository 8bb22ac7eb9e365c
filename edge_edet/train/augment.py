"""Training augmentation around the runtime's own letterbox, so training sees images prepared exactly
as the deployed engine will (same resize, same bottom/right padding with the mean colour).

Scale jitter with random crop follows the official EfficientDet recipe: the letterboxed image is
scaled by a random factor in [scale_min, scale_max] (0.1-2.0 officially), a window of the input
size is cut at a random offset inside the image, and whatever is left is padded bottom/right.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

from ..contract.letterbox import letterbox

MIN_BOX_SIDE = 2.0  # pixels; smaller boxes left after cropping are dropped


def pad_color_bgr(mean_rgb: Sequence[float]) -> Tuple[int, int, int]:
    """The normalisation mean (RGB on [0, 1]) as a uint8 BGR fill, so padding is ~0 after normalising."""
    r, g, b = (int(round(v * 255.0)) for v in mean_rgb)
    return (b, g, r)


def normalise(image_bgr: np.ndarray, mean_rgb: Sequence[float], std_rgb: Sequence[float]) -> np.ndarray:
    """uint8 HxWx3 BGR -> float32 3xHxW RGB, (x / 255 - mean) / std: what the deploy graph does."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    rgb = (rgb - np.asarray(mean_rgb, np.float32)) / np.asarray(std_rgb, np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def hflip(image: np.ndarray, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mirror an image and its xyxy boxes left-right."""
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def clip_boxes(boxes: np.ndarray, labels: np.ndarray, width: float, height: float,
               min_side: float = MIN_BOX_SIDE) -> Tuple[np.ndarray, np.ndarray]:
    """Clip xyxy boxes to the image and drop those left thinner than `min_side` pixels."""
    boxes = boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_side) & ((boxes[:, 3] - boxes[:, 1]) >= min_side)
    return boxes[keep], labels[keep]


def scale_jitter_crop(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size_hw: Tuple[int, int],
                      scale: float, rng: np.random.Generator, pad_bgr=(0, 0, 0)):
    """Letterbox at `scale` x the input size, cut a random input-size window inside the image, pad
    the rest bottom/right.  Returns (uint8 image of size_hw, boxes, labels) in input pixels."""
    height, width = size_hw
    big = (max(1, int(round(height * scale))), max(1, int(round(width * scale))))
    canvas, factor = letterbox(image, big, pad_bgr)
    content_h = min(big[0], int(round(image.shape[0] * factor)))
    content_w = min(big[1], int(round(image.shape[1] * factor)))
    off_y = int(rng.integers(0, max(0, content_h - height) + 1))
    off_x = int(rng.integers(0, max(0, content_w - width) + 1))
    out = np.empty((height, width, 3), np.uint8)
    out[:] = pad_bgr
    window = canvas[off_y:off_y + height, off_x:off_x + width]
    out[:window.shape[0], :window.shape[1]] = window
    boxes = boxes * factor - np.array([off_x, off_y, off_x, off_y], np.float32)
    visible_w = min(width, content_w - off_x)
    visible_h = min(height, content_h - off_y)
    boxes, labels = clip_boxes(boxes, labels, visible_w, visible_h)
    return out, boxes.astype(np.float32), labels


def train_transform(image, boxes, labels, size_hw, rng, scale_range=(0.1, 2.0), flip_prob=0.5, pad_bgr=(0, 0, 0)):
    """Horizontal flip, then scale jitter with random crop (letterbox inside)."""
    if rng.random() < flip_prob:
        image, boxes = hflip(image, boxes)
    scale = float(rng.uniform(*scale_range))
    return scale_jitter_crop(image, boxes, labels, size_hw, scale, rng, pad_bgr)


def eval_transform(image, size_hw, pad_bgr=(0, 0, 0)):
    """The runtime's letterbox, nothing else.  Returns (uint8 image, scale)."""
    out, scale = letterbox(image, size_hw, pad_bgr)
    return out.copy(), scale
