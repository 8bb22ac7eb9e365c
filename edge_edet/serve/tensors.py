"""What a served edge_edet model looks like to Triton: one `images` input and the four NMS outputs.

Read from the artifact's metadata (input size, detections per image, batch), so `serve` and
`triton-repo` publish the same signature, and the batch rules live in one place.

Triton's batch rule (model configuration docs; its onnxruntime and TensorRT back-ends check it):
with `max_batch_size > 0` Triton owns dimension 0 and the model's must be variable (-1), and the
config's dims leave it out.  So only a `--dynamic-batch N` export batches (max_batch_size N, dims
[H, W, 3]); a static export (fixed batch B) is served with `max_batch_size: 0` and its full dims
[B, H, W, 3], which clients send as they are.
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


# tritonserver's flag without which its TensorRT back-end refuses a version-compatible plan
# (Triton's TensorRT back-end README, "version-compatible" backend config)
VERSION_COMPATIBLE_FLAG = "--backend-config=tensorrt,version-compatible=true"


@dataclass(frozen=True)
class Batching:
    """How Triton batches a served model (see the module docstring)."""
    max_batch_size: int  # 0: Triton does not batch; the tensors' dims then include the batch
    lead: Tuple[int, ...]  # () when Triton batches, (B,) for a static export of batch B
    dynamic_batcher: bool  # Triton gathers frames from many requests into one call


def batching(info: DeployInfo, max_batch: int) -> Batching:
    """The batching of `info`'s model served at `max_batch` (served_batch's answer)."""
    if info.dynamic_batch:
        return Batching(int(max_batch), (), max_batch > 1)
    return Batching(0, (int(info.batch),), False)


def check_servable(info: DeployInfo, source: str, onnx_runtime: bool = False) -> None:
    """Refuse what Triton cannot serve; `onnx_runtime`: the model runs in ONNX Runtime (a .onnx)."""
    if info.nms == "none":
        raise EdgeEdetError(f"{source} was exported with --nms none; Triton serves graphs with NMS inside "
                            f"(export with --nms onnx)")
    if onnx_runtime and info.nms == "efficientnms":
        raise EdgeEdetError(f"{source} ends in the TensorRT plugin EfficientNMS_TRT (--nms efficientnms), which "
                            f"ONNX Runtime and OpenVINO cannot run; export it again with --nms onnx, or build a TensorRT engine "
                            f"from it and serve that plan")


def tritonserver_flags(info: DeployInfo) -> List[str]:
    """Flags tritonserver needs to load this artifact: a version-compatible plan needs
    VERSION_COMPATIBLE_FLAG (Triton's TensorRT back-end refuses such plans otherwise)."""
    return [VERSION_COMPATIBLE_FLAG] if (info.extra or {}).get("version_compatible") else []


def serving_warnings(info: DeployInfo) -> List[str]:
    """Sentences an operator must read before serving this artifact."""
    profile = (info.extra or {}).get("batch_profile") or []
    if profile and int(profile[0]) > 1:
        return [f"warning: this engine's smallest batch is {profile[0]} (built with --batch "
                f"{':'.join(map(str, profile))}), so it refuses the batch-1 requests Triton sends for a lone "
                f"client or a partly filled batch; rebuild it with --batch 1:{profile[1]}:{profile[2]}"]
    return []


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
