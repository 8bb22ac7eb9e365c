"""The back-end contract every engine runner meets."""
from __future__ import annotations

from typing import Dict

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import DeployInfo


class BackendUnavailable(EdgeEdetError):
    """A remote back-end is unreachable for now: try again in `retry_in` seconds (the pipeline
    retries the same frame, or skips to the newest one for latest-frame sources)."""

    def __init__(self, message: str, retry_in: float = 1.0):
        super().__init__(message)
        self.retry_in = float(retry_in)


class Backend:
    """infer(images uint8 [B,H,W,3] BGR) -> {output name: array}.  `info` is the artifact metadata."""

    name = "base"
    info: DeployInfo
    max_batch: int = 1
    dynamic_batch: bool = False

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def allocate_input(self, batch: int) -> np.ndarray:
        """A uint8 [batch,H,W,3] input buffer the pre-processing letterboxes into (DESIGN.md: one buffer
        per frame).  Back-ends whose device copies want special host memory (TensorRT: page-locked)
        override this, and infer() then reads the frame straight from it, with no staging copy."""
        return np.zeros((batch,) + tuple(self.info.input_size) + (3,), np.uint8)

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        """What a benchmark report records about this back-end."""
        return {"backend": self.name}
