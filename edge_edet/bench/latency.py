"""Latency of a model alone, through the back-end interface only, so any back-end benches the same.

The timed call is `detector.infer(batch)` on an input letterboxed once beforehand: the engine and
whatever it holds in the graph (pre-processing, decode, NMS), not the host.  A back-end that can
time itself on the device (`time_gpu(batch, iterations, warmup)` -> per-iteration milliseconds,
CUDA events on its own device buffers, as the TensorRT back-end offers) is reported separately, like trtexec's "GPU Compute".
"""
from __future__ import annotations

import os
import time
from typing import Callable, List, Optional, Sequence

import numpy as np

from ..contract.errors import EdgeEdetError
from .stats import latency_stats

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SYNTHETIC_FRAME_HW = (480, 640)  # a VGA camera frame


def load_frames(images_dir: str, count: int) -> List[np.ndarray]:
    """Up to `count` BGR frames from a folder (sorted names); unreadable files are passed over."""
    import cv2

    if not os.path.isdir(images_dir):
        raise EdgeEdetError(f"images folder {images_dir} does not exist")
    names = sorted(n for n in os.listdir(images_dir) if n.lower().endswith(IMAGE_EXTENSIONS))
    frames = []
    for name in names:
        frame = cv2.imread(os.path.join(images_dir, name), cv2.IMREAD_COLOR)
        if frame is not None:
            frames.append(frame)
            if len(frames) == count:
                break
    if not frames:
        raise EdgeEdetError(f"images folder {images_dir} holds no image OpenCV can read")
    return frames


def synthetic_frames(count: int, frame_hw=SYNTHETIC_FRAME_HW, seed: int = 0) -> List[np.ndarray]:
    """Deterministic noise frames, for benching without a dataset."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, tuple(frame_hw) + (3,), dtype=np.uint8) for _ in range(count)]


def check_batch(detector, batch: int) -> None:
    """One sentence when the artifact cannot run this batch size."""
    backend = detector.backend
    if backend.dynamic_batch:
        if batch > backend.max_batch:
            raise EdgeEdetError(f"this model was exported for batches up to {backend.max_batch}, not {batch}; "
                                f"re-export with --dynamic-batch {batch}")
    elif batch != backend.max_batch:
        raise EdgeEdetError(f"this model has a fixed batch of {backend.max_batch}, not {batch}; "
                            f"re-export with --dynamic-batch {batch} (or bench with --batch {backend.max_batch})")


def batches(frames: Sequence[np.ndarray], batch: int):
    """Endless batches of `batch` frames, cycling through `frames`."""
    index = 0
    while True:
        yield [frames[(index + i) % len(frames)] for i in range(batch)]
        index = (index + batch) % len(frames)


def time_calls(call: Callable[[], object], iterations: int, warmup: int) -> List[float]:
    """Wall-clock seconds of each of `iterations` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def bench_model(detector, frames: Sequence[np.ndarray], batch: int, iterations: int, warmup: int) -> dict:
    """Latency and throughput of `detector.infer` alone (host letterbox done once, outside timing)."""
    check_batch(detector, batch)
    inputs, _ = detector.preprocess(next(batches(frames, batch)))
    inputs = np.ascontiguousarray(inputs[:batch]).copy()
    report = {"latency": latency_stats(time_calls(lambda: detector.infer(inputs), iterations, warmup), batch)}
    time_gpu: Optional[Callable] = getattr(detector.backend, "time_gpu", None)
    if time_gpu is not None:
        gpu_ms = list(time_gpu(batch, iterations, warmup))
        report["gpu_latency"] = latency_stats([ms / 1e3 for ms in gpu_ms], batch)
    return report
