"""The back-end contract every engine runner meets."""
from __future__ import annotations

from typing import Dict

import numpy as np

from ...metadata import DeployInfo

NMS_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
RAW_OUTPUTS = ("boxes", "scores")  # `--nms none` graphs: decoded boxes [B,N,4], probabilities [B,N,C]


class Backend:
    """infer(images uint8 [B,H,W,3] BGR) -> {output name: array}.  `info` is the artifact metadata."""

    name = "base"
    info: DeployInfo
    max_batch: int = 1
    dynamic_batch: bool = False

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        """What a benchmark report records about this back-end."""
        return {"backend": self.name}
