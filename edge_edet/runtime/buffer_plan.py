"""Host/device buffer plan for an engine's I/O tensors, as plain data (tested without a GPU).

The TensorRT back-end allocates every buffer once, at the engine's largest batch, and points
TensorRT at them once; each inference then copies only the rows of the batch it runs.  This
module decides those shapes and sizes and checks the engine against the deploy contract
(input `images` uint8 [B,H,W,3]; the four NMS outputs or the two raw ones).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..contract.metadata import DeployInfo, MetadataError
from ..contract.names import INPUT_NAME, NMS_OUTPUTS, RAW_OUTPUTS


@dataclass(frozen=True)
class TensorSpec:
    name: str
    is_input: bool
    shape: Tuple[int, ...]  # engine shape; -1 for a dimension chosen at run time
    dtype: str  # numpy dtype name, e.g. 'uint8', 'float32'


@dataclass
class BufferPlan:
    input: TensorSpec
    outputs: List[TensorSpec]
    max_batch: int
    dynamic_batch: bool
    min_batch: int = 1
    shapes: Dict[str, Tuple[int, ...]] = field(default_factory=dict)  # allocation shapes at max_batch

    def shape_at(self, name: str, batch: int) -> Tuple[int, ...]:
        return (batch,) + tuple(self.shapes[name][1:])

    def nbytes(self, name: str) -> int:
        spec = self.spec(name)
        return int(np.prod(self.shapes[name])) * np.dtype(spec.dtype).itemsize

    def spec(self, name: str) -> TensorSpec:
        for tensor in [self.input] + self.outputs:
            if tensor.name == name:
                return tensor
        raise KeyError(name)

    @property
    def output_names(self) -> List[str]:
        return [t.name for t in self.outputs]

    def check_batch(self, batch: int) -> None:
        if batch < 1 or batch > self.max_batch:
            raise MetadataError(f"batch of {batch} images is outside this engine's batch range "
                                f"{self.min_batch}..{self.max_batch}")
        if self.dynamic_batch and batch < self.min_batch:
            raise MetadataError(f"batch of {batch} is below the engine profile's minimum {self.min_batch}")


def plan_buffers(tensors: Sequence[TensorSpec], info: DeployInfo, source: str = "engine",
                 profile_batch: Optional[Tuple[int, int, int]] = None) -> BufferPlan:
    """Check the engine's I/O against the contract and size every buffer for its largest batch.

    `profile_batch` is the (min, opt, max) batch of the engine's optimisation profile, needed only
    when the batch dimension is dynamic (-1).
    """
    inputs = [t for t in tensors if t.is_input]
    outputs = [t for t in tensors if not t.is_input]
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        raise MetadataError(f"{source} does not have the single `images` input of an edge_edet engine "
                            f"(inputs: {', '.join(t.name for t in inputs) or 'none'})")
    image = inputs[0]
    if image.dtype != "uint8" or len(image.shape) != 4 or image.shape[3] != 3:
        raise MetadataError(f"{source}: input `images` is {image.dtype} {list(image.shape)}, not uint8 [B,H,W,3]")
    if tuple(image.shape[1:3]) != tuple(info.input_size):
        raise MetadataError(f"{source} takes {image.shape[1]}x{image.shape[2]} images but its sidecar says "
                            f"{info.input_size[0]}x{info.input_size[1]}; the sidecar belongs to another engine")
    names = {t.name for t in outputs}
    if not (set(NMS_OUTPUTS) <= names or set(RAW_OUTPUTS) <= names):
        raise MetadataError(f"{source} outputs {', '.join(sorted(names))}, not the edge_edet outputs "
                            f"({', '.join(NMS_OUTPUTS)}, or {', '.join(RAW_OUTPUTS)})")
    dynamic = image.shape[0] == -1
    if dynamic:
        if not profile_batch:
            raise MetadataError(f"{source} has a dynamic batch but no optimisation profile was found")
        low, _, high = (int(v) for v in profile_batch)
    else:
        low = high = int(image.shape[0])
    shapes = {image.name: (high,) + tuple(image.shape[1:])}
    for out in outputs:
        rest = tuple(out.shape[1:])
        if any(d < 0 for d in rest) or (out.shape[0] < 0 and not dynamic):
            raise MetadataError(f"{source}: output `{out.name}` has a data-dependent shape {list(out.shape)}; "
                                f"export with fixed-size (padded) outputs")
        if out.shape[0] >= 0 and out.shape[0] != high:
            raise MetadataError(f"{source}: output `{out.name}` batch {out.shape[0]} differs from the input's {high}")
        shapes[out.name] = (high,) + rest
    return BufferPlan(input=image, outputs=outputs, max_batch=high, min_batch=low, dynamic_batch=dynamic,
                      shapes=shapes)
