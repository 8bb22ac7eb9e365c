"""Latency of a model alone, through the back-end interface only, so any back-end benches the same;
several back-ends of one model are timed in alternating rounds (bench_backends).

The timed call is `detector.infer(batch)` on an input letterboxed once beforehand: the engine and
whatever it holds in the graph (pre-processing, decode, NMS), not the host.  A back-end that can
time itself on the device (`time_gpu(batch, iterations, warmup)` -> per-iteration milliseconds,
CUDA events on its own device buffers, as the TensorRT back-end offers) is reported separately, like trtexec's "GPU Compute".
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Optional, Sequence

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


def prepared_input(detector, frames: Sequence[np.ndarray], batch: int) -> np.ndarray:
    """One batch letterboxed into the back-end's own input buffer (pinned on TensorRT, OpenVINO's tensor),
    as the streaming pipeline feeds it."""
    check_batch(detector, batch)
    inputs = detector.allocate_input(batch)
    detector.preprocess(next(batches(frames, batch)), out=inputs)
    return inputs


def bench_model(detector, frames: Sequence[np.ndarray], batch: int, iterations: int, warmup: int) -> dict:
    """Latency and throughput of `detector.infer` alone (host letterbox done once, outside timing)."""
    return bench_backends({"model": detector}, frames, batch, iterations, warmup, rounds=1)["model"]


SETTLE_S = 0.2  # between two back-ends' turns: ONNX Runtime's worker threads spin-wait after a run


def bench_backends(detectors: Dict[str, object], frames: Sequence[np.ndarray], batch: int, iterations: int,
                   warmup: int, rounds: int = 10) -> Dict[str, dict]:
    """{name: {"latency": stats[, "gpu_latency": stats]}} for each detector, timed in alternating rounds
    (each round runs every detector in turn, iterations/rounds calls each), so a change in the machine's
    load during the run falls on all of them alike instead of on whichever ran last.  Each turn starts
    after a pause and one untimed call: a thread pool still spinning from the turn before (ONNX
    Runtime's does, for a while after each run) would otherwise take the cores from the next one
    (measured: OpenVINO 17.8 ms instead of 13.6 ms right after ONNX Runtime on 2 cores)."""
    inputs = {name: prepared_input(detector, frames, batch) for name, detector in detectors.items()}
    for name, detector in detectors.items():
        time_calls(lambda: detector.infer(inputs[name]), 0, warmup)
    rounds = max(1, min(int(rounds), iterations))
    several = len(detectors) > 1
    samples: Dict[str, List[float]] = {name: [] for name in detectors}
    for round_index in range(rounds):
        count = iterations // rounds + (1 if round_index < iterations % rounds else 0)
        for name, detector in detectors.items():
            if several:
                time.sleep(SETTLE_S)
            samples[name] += time_calls(lambda: detector.infer(inputs[name]), count, 1 if several else 0)
    reports = {}
    for name, detector in detectors.items():
        report = {"latency": latency_stats(samples[name], batch)}
        time_gpu: Optional[Callable] = getattr(detector.backend, "time_gpu", None)
        if time_gpu is not None:
            gpu_ms = list(time_gpu(batch, iterations, warmup))
            report["gpu_latency"] = latency_stats([ms / 1e3 for ms in gpu_ms], batch)
        reports[name] = report
    return reports
