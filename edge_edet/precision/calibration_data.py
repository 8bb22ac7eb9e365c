"""Calibration images, prepared exactly as the runtime prepares frames.

Calibrating on images prepared differently from the runtime's input is the classic cause of INT8
collapse, so this reads frames with the runtime's own reader (`iter_frames`: a folder, a glob or a
video; undecodable files skipped, counted and warned about) and letterboxes them with the runtime's
own `letterbox`, fill colour and size from the graph's DeployInfo, into the same uint8 NHWC BGR
input the engine takes.  Pre-processing after that (cast, normalise, transpose) is in the graph.
"""
from __future__ import annotations

import itertools
import sys
from typing import Optional

import numpy as np

from ..contract.errors import EdgeEdetError
from ..contract.metadata import DeployInfo
from ..contract.names import INPUT_NAME
from ..contract.progress import progress_bar
from ..contract.letterbox import letterbox
from ..contract.frames import iter_frames


def load_calibration_images(source: str, info: DeployInfo, num_images: int = 500,
                            progress: bool = True) -> np.ndarray:
    """uint8 [N, H, W, 3] letterboxed BGR images; N <= num_images (warns when fewer exist)."""
    if num_images < 1:
        raise EdgeEdetError(f"--num-images must be at least 1, not {num_images}")
    height, width = info.input_size
    from ..contract.machine import check_count_fits_memory

    check_count_fits_memory("--num-images", num_images, height * width * 3, f"{height}x{width} images held at once")
    batch = np.empty((num_images, height, width, 3), dtype=np.uint8)
    count = 0
    frames = iter_frames(source, limit=num_images)
    first = next(frames, None)  # a missing or empty source fails here, before any progress bar
    bar = _progress(num_images, "reading calibration images", progress)
    try:
        for frame in itertools.chain([first] if first is not None else [], frames):
            letterbox(frame, (height, width), info.pad_color_bgr, out=batch[count])
            count += 1
            bar.update(1)
    finally:
        bar.close()
    if count < num_images:
        print(f"edge-edet: warning: {source} gave {count} usable images, fewer than the {num_images} "
              f"asked for; calibrating on those {count}", file=sys.stderr)
    return batch[:count]


def _progress(total: int, desc: str, enabled: bool):
    """A live bar on a terminal, a plain line every 10 s in a pipe or log (contract.progress)."""
    return progress_bar(total, desc, "img", enabled=enabled)


class LetterboxedReader:
    """onnxruntime.quantization CalibrationDataReader over prepared images, one image per run.

    `set_range` lets the calibrator work through the images in chunks, so only a chunk's
    intermediate tensors are held in memory at once; the progress bar advances per image.
    """

    def __init__(self, images: np.ndarray, input_name: str = INPUT_NAME, batch: int = 1,
                 progress: Optional[object] = None):
        self.images, self.input_name, self.batch = images, input_name, batch
        self.start, self.end, self.position = 0, len(images), 0
        self.progress = progress

    def __len__(self) -> int:
        return len(self.images)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.start, self.end, self.position = start_index, min(end_index, len(self.images)), start_index

    def rewind(self) -> None:
        self.set_range(0, len(self.images))

    def get_next(self):
        if self.position >= self.end:
            return None
        stop = min(self.position + self.batch, self.end)
        feed = {self.input_name: self.images[self.position:stop]}
        if self.progress is not None:
            self.progress.update(stop - self.position)
        self.position = stop
        return feed

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
