"""What a served edge_edet model looks like to Triton: one `images` input and the four NMS outputs.

Read from the artifact's metadata (input size, detections per image, batch), so `serve` and
`triton-repo` publish the same signature, and the batch rules live in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from ..contract.errors import EdgeEdetError
from ..contract.metadata import DeployInfo
from ..contract.names import INPUT_NAME, NMS_OUTPUTS


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: type  # numpy dtype
    dims: Tuple[int, ...]  # without the batch dimension


def input_spec(info: DeployInfo) -> TensorSpec:
    height, width = info.input_size
    return TensorSpec(INPUT_NAME, np.uint8, (height, width, 3))


def output_specs(info: DeployInfo) -> List[TensorSpec]:
    k = int(info.max_detections)
    dims = {"num_detections": (np.int32, (1,)), "detection_boxes": (np.float32, (k, 4)),
            "detection_scores": (np.float32, (k,)), "detection_classes": (np.int32, (k,))}
    return [TensorSpec(name, *dims[name]) for name in NMS_OUTPUTS]


def check_servable(info: DeployInfo, source: str) -> None:
    if info.nms == "none":
        raise EdgeEdetError(f"{source} was exported with --nms none; Triton serves graphs with NMS inside "
                            f"(export with --nms onnx)")


def served_batch(info: DeployInfo, requested: Optional[int], source: str) -> int:
    """The largest batch the server may form: the export's (dynamic) batch, or lower if asked;
    a static export is served at its own size."""
    if requested is not None and requested > info.batch:
        how = (f"re-export with --dynamic-batch {requested}" if info.dynamic_batch else
               f"it has a static batch of {info.batch}; export with --dynamic-batch {requested}")
        raise EdgeEdetError(f"--max-batch {requested} is above the batch of {source} ({info.batch}); {how}")
    if not info.dynamic_batch:
        return info.batch
    return requested or info.batch
