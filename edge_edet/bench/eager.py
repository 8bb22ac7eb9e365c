"""The PyTorch baseline: host letterbox, the eager model, then the reference (numpy/OpenCV)
post-processing, against the deploy graph on the same frames, interleaved in one process.

Interleaving (deploy, eager, eager, deploy, ...) exposes both sides to the same background load,
so the speed-up stays fair on a shared machine.  Imports torch: only `--compare-eager` loads it.
"""
from __future__ import annotations

import os
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..contract.errors import EdgeEdetError
from ..contract.letterbox import letterbox
from .latency import batches, check_batch
from .stats import latency_stats

RANDOM = "random"


def eager_checkpoint(info, override: Optional[str] = None) -> Tuple[Optional[str], bool]:
    """(checkpoint for create_model or None for random, whether it is the ONNX's own weights).

    The ONNX metadata's `weights` names the source; a path must still exist to be reused.
    """
    spec = override or info.weights
    if not spec or spec == RANDOM:
        return None, False
    if os.sep in spec or spec.endswith((".pth", ".pt", ".ckpt")):
        if not os.path.isfile(spec):
            raise EdgeEdetError(f"the eager model needs weights {spec}, which do not exist here; pass "
                                f"--eager-weights PATH, or --eager-weights {RANDOM} to time random weights")
    return spec, override is None or override == info.weights


class EagerDetector:
    """detect(frames) -> [(boxes in frame pixels, scores, classes)], the way PyTorch users run it."""

    def __init__(self, info, checkpoint: Optional[str] = None, threads: Optional[int] = None):
        import torch

        from .. import create_model

        if threads:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.info = info
        self.input_size = tuple(info.input_size)
        self.model = create_model(info.model, num_classes=len(info.labels), input_size=self.input_size,
                                  checkpoint=checkpoint).eval()
        cfg = self.model.config
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(cfg.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0

    def detect(self, frames: Sequence[np.ndarray]) -> List[tuple]:
        from ..model.reference import reference_detect

        torch = self.torch
        batch = np.empty((len(frames),) + self.input_size + (3,), np.uint8)
        scales = [letterbox(frame, self.input_size, self.info.pad_color_bgr, out=batch[i])[1]
                  for i, frame in enumerate(frames)]
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).flip(1).float()  # BGR NHWC -> RGB NCHW
        x = (x - self.mean) / self.std
        found = reference_detect(self.model, x, self.info.pre_nms_top_k, self.info.iou_threshold,
                                 self.info.max_detections, self.info.score_threshold)
        results = []
        for (boxes, scores, classes), scale, frame in zip(found, scales, frames):
            boxes = boxes.astype(np.float32) / scale
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, frame.shape[1])
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, frame.shape[0])
            results.append((boxes, scores, classes))
        return results


def agreement(deployed, eager) -> dict:
    """How closely the two sides agree on one batch: detection counts and the largest score gap."""
    counts = [(len(d), len(e[1])) for d, e in zip(deployed, eager)]
    gaps = []
    for d, (_, scores, _) in zip(deployed, eager):
        n = min(len(d), len(scores))
        if n:
            gaps.append(float(np.max(np.abs(np.sort(d.scores)[::-1][:n] - np.sort(scores)[::-1][:n]))))
    return {"detections_deployed": sum(c[0] for c in counts), "detections_eager": sum(c[1] for c in counts),
            "max_score_difference": round(max(gaps), 6) if gaps else None}


def compare_eager(detector, eager: EagerDetector, frames: Sequence[np.ndarray], batch: int,
                  iterations: int, warmup: int) -> dict:
    """End-to-end latency (letterbox to boxes in frame pixels) of both sides on the same frames."""
    check_batch(detector, batch)
    source = batches(frames, batch)
    deployed_s, eager_s = [], []
    first = None
    for step in range(warmup + iterations):
        chunk = next(source)
        order = ("deployed", "eager") if step % 2 == 0 else ("eager", "deployed")
        timings, outputs = {}, {}
        for side in order:
            start = time.perf_counter()
            outputs[side] = detector.detect(chunk) if side == "deployed" else eager.detect(chunk)
            timings[side] = time.perf_counter() - start
        if step == 0:
            first = agreement(outputs["deployed"], outputs["eager"])
        if step >= warmup:
            deployed_s.append(timings["deployed"])
            eager_s.append(timings["eager"])
    deployed_stats = latency_stats(deployed_s, batch)
    eager_stats = latency_stats(eager_s, batch)
    return {"deployed": deployed_stats, "eager": eager_stats,
            "speedup_median": round(eager_stats["median_ms"] / deployed_stats["median_ms"], 3),
            "agreement_first_batch": first}
