"""The back-end contract every engine runner meets."""
from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import DeployInfo, MetadataError
from ...contract.names import INPUT_NAME


class BackendUnavailable(EdgeEdetError):
    """A remote back-end is unreachable for now: try again in `retry_in` seconds (the pipeline
    retries the same frame, or skips to the newest one for latest-frame sources)."""

    def __init__(self, message: str, retry_in: float = 1.0):
        super().__init__(message)
        self.retry_in = float(retry_in)


class Pending:
    """A batch handed to a back-end; result() waits for its outputs (once) and returns them.
    `done_at` is when the engine finished it (time.perf_counter()), known once result() returned."""

    def __init__(self, outputs: Dict[str, np.ndarray]):
        self._outputs = outputs
        self.done_at = time.perf_counter() if outputs is not None else None

    def result(self) -> Dict[str, np.ndarray]:
        return self._outputs


class Backend:
    """infer(images uint8 [B,H,W,3] BGR) -> {output name: array}.  `info` is the artifact metadata.

    submit(images) -> Pending starts a batch and may return before it is done; `in_flight` is how
    many submitted batches the back-end runs or queues at once, so a caller (the streaming pipeline)
    can prepare the next frames meanwhile.  The default runs infer() at once (in_flight 1)."""

    name = "base"
    info: DeployInfo
    max_batch: int = 1
    dynamic_batch: bool = False
    in_flight: int = 1
    chosen_by: str = "asked"  # "auto" when open_backend's chooser picked it (--backend auto)

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def submit(self, images: np.ndarray) -> Pending:
        """Start inference on `images` (left untouched until result() returns)."""
        return Pending(self.infer(images))

    def allocate_input(self, batch: int) -> np.ndarray:
        """A uint8 [batch,H,W,3] input buffer the pre-processing letterboxes into (DESIGN.md: one buffer
        per frame).  Back-ends whose device copies want special host memory (TensorRT: page-locked)
        override this, and infer() then reads the frame straight from it, with no staging copy."""
        return np.zeros((batch,) + tuple(self.info.input_size) + (3,), np.uint8)

    def close(self) -> None:
        pass

    def label(self) -> str:
        """A few words for the start line and the exit summary: which back-end runs, and how."""
        return self.name + (" (chosen by --backend auto)" if self.chosen_by == "auto" else "")

    def describe(self) -> dict:
        """What a benchmark report records about this back-end: always its `backend` name and `label`."""
        return {"backend": self.name, "label": self.label()}


def check_input_matches_metadata(inputs: List[Tuple[str, str, Sequence]], info: DeployInfo, path: str) -> None:
    """Refuse, in one sentence, a graph whose input disagrees with its edge_edet metadata (a float
    input, another size): otherwise it would fail at warm-up with the back-end's own traceback.
    `inputs`: (name, ONNX type text such as 'tensor(uint8)', shape with ints for fixed dimensions)
    per graph input.  The outputs are the Detector's to check (check_detector_outputs), since it is
    what reads them; the TensorRT back-end checks both through buffer_plan."""
    if len(inputs) != 1 or inputs[0][0] != INPUT_NAME:
        names = ", ".join(name for name, _, _ in inputs) or "none"
        raise MetadataError(f"{path} does not have the single `{INPUT_NAME}` input of an edge_edet graph "
                            f"(inputs: {names}); re-export it")
    _, kind, shape = inputs[0]
    if kind != "tensor(uint8)":
        raise MetadataError(f"{path}: input `{INPUT_NAME}` is {kind}, but an edge_edet graph takes "
                            f"uint8 BGR frames; re-export it with `edge-edet export`")
    shape = list(shape)
    height, width = (int(v) for v in info.input_size)
    if height <= 0 or width <= 0:
        raise MetadataError(f"{path}: its metadata gives an impossible input size {height}x{width}; re-export it")
    if len(shape) != 4 or shape[1:] != [height, width, 3]:
        raise MetadataError(f"{path}: input `{INPUT_NAME}` has shape {shape}, but its metadata says "
                            f"[batch, {height}, {width}, 3]; re-export it")
