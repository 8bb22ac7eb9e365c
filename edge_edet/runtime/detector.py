"""Detector: letterbox on the host, everything else in the engine, boxes back to frame pixels.

The pre / infer / post split is public so the streaming pipeline can run each stage on its
own thread; `detect` chains them for simple use.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ..contract.errors import EdgeEdetError
from .backends import open_backend
from ..contract.metadata import MetadataError
from ..contract.names import NMS_OUTPUTS, RAW_OUTPUTS
from .detections import Detections
from ..contract.letterbox import letterbox
from ..contract.postprocess import postprocess_decoded


def check_detector_outputs(backend) -> None:
    """The outputs postprocess() reads (the four NMS outputs, or boxes + scores for `--nms none`)
    must all be there, else one sentence now instead of a KeyError on the first frame."""
    names = getattr(backend, "output_names", None)
    if names is None:
        return
    expected = RAW_OUTPUTS if backend.info.nms == "none" else NMS_OUTPUTS
    missing = [n for n in expected if n not in set(names)]
    if missing:
        where = getattr(backend, "path", "the model")
        raise MetadataError(f"{where} lacks the output(s) {', '.join(missing)} of an edge_edet graph; re-export it")


class Detector:
    def __init__(self, backend):
        check_detector_outputs(backend)
        self.backend = backend
        self.info = backend.info
        self.input_size: Tuple[int, int] = tuple(self.info.input_size)
        self.labels: List[str] = list(self.info.labels)
        self._buffers = {}
        self.filter = None  # a DetectionFilter (`edge-edet run`): every consumer of postprocess sees it applied

    @classmethod
    def from_file(cls, path: str, providers=None, backend: str = "auto", **options) -> "Detector":
        """Open a .trt/.engine/.plan (TensorRT) file made by edge_edet, a model served by Triton
        (triton://HOST:PORT/MODEL), or an .onnx through `backend`: "onnxruntime", "openvino" (options
        device="CPU"|"GPU"|"NPU"|"AUTO", streams, execution_mode) or "auto" (OpenVINO on a CPU where it is
        installed and faster for the graph).  `detector.backend.name` says which one runs."""
        return cls(open_backend(path, providers=providers, backend=backend, **options))

    # -- stages ---------------------------------------------------------------------------
    def _buffer(self, batch: int) -> np.ndarray:
        """detect()'s own input buffer, allocated by the back-end (page-locked on TensorRT)."""
        if batch not in self._buffers:
            self._buffers[batch] = self.backend.allocate_input(batch)
        return self._buffers[batch]

    def allocate_input(self, batch: int = None) -> np.ndarray:
        """An input buffer for a caller that keeps several frames in flight (the streaming pipeline)."""
        return self.backend.allocate_input(batch or self.batch_size_for(1))

    def batch_size_for(self, count: int) -> int:
        """The input buffer's batch for `count` frames at once: that many (at most the model's
        maximum) with a dynamic batch, else the model's fixed batch (unused rows are padding)."""
        if self.backend.dynamic_batch:
            return max(1, min(int(count), self.backend.max_batch))
        return self.backend.max_batch

    def preprocess(self, frames: Sequence[np.ndarray], out: np.ndarray = None) -> Tuple[np.ndarray, List[float]]:
        """Letterbox frames straight into a uint8 [B,H,W,3] input buffer (`out`, or detect()'s own);
        returns what infer() takes: with a dynamic batch the buffer's first len(frames) rows (a view,
        so a buffer sized for four sources serves a call with two), else the whole buffer."""
        if len(frames) > self.backend.max_batch:
            raise EdgeEdetError(f"{len(frames)} frames exceed this model's batch of {self.backend.max_batch}")
        batch = out if out is not None else self._buffer(self.batch_size_for(len(frames)))
        scales = []
        for index, frame in enumerate(frames):
            if frame is None or getattr(frame, "ndim", 0) != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
                raise EdgeEdetError("frames must be HxWx3 uint8 BGR (or HxWx4 BGRx) images")
            _, scale = letterbox(frame, self.input_size, self.info.pad_color_bgr, out=batch[index])
            scales.append(scale)
        if self.backend.dynamic_batch and len(frames) < batch.shape[0]:
            batch = batch[:len(frames)]
        return batch, scales

    def infer(self, batch: np.ndarray) -> dict:
        return self.backend.infer(batch)

    def submit(self, batch: np.ndarray):
        """Start inference and return at once where the back-end can (OpenVINO's asynchronous requests);
        `.result()` of what it returns gives infer()'s outputs.  `batch` must stay untouched until then."""
        return self.backend.submit(batch)

    def postprocess(self, outputs: dict, scales: Sequence[float], frame_shapes: Sequence[tuple]) -> List[Detections]:
        results = []
        for index, (scale, shape) in enumerate(zip(scales, frame_shapes)):
            if all(name in outputs for name in NMS_OUTPUTS):
                count = int(outputs["num_detections"][index].reshape(-1)[0])
                boxes = outputs["detection_boxes"][index, :count]
                scores = outputs["detection_scores"][index, :count]
                classes = outputs["detection_classes"][index, :count]
            else:
                boxes, scores, classes = postprocess_decoded(
                    outputs["boxes"][index], outputs["scores"][index], self.info.pre_nms_top_k,
                    self.info.iou_threshold, self.info.max_detections, self.info.score_threshold)
            boxes = boxes.astype(np.float32) / scale
            boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, shape[1])
            boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, shape[0])
            classes = classes.astype(np.int32)
            labels = [self.labels[c] if 0 <= c < len(self.labels) else str(c) for c in classes]
            found = Detections(boxes, scores.astype(np.float32), classes, labels)
            results.append(self.filter(found) if self.filter is not None else found)
        return results

    # -- convenience ----------------------------------------------------------------------
    def detect(self, frames) -> List[Detections]:
        """BGR uint8 frames of any size (one array or a list) -> one Detections per frame."""
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = [frames]
        frames = list(frames)
        results: List[Detections] = []
        step = max(1, self.backend.max_batch)
        for start in range(0, len(frames), step):
            chunk = frames[start:start + step]
            batch, scales = self.preprocess(chunk)
            outputs = self.infer(batch)
            results.extend(self.postprocess(outputs, scales, [f.shape for f in chunk]))
        return results

    def close(self) -> None:
        self.backend.close()
