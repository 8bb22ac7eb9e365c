"""What the builder needs to know about a deploy ONNX before TensorRT sees it.

Reads the graph once (weights left on disk) and answers: is it ours (edge_edet metadata, the
`images` uint8 input), which precision does it carry (Q/DQ nodes -> int8, float16 tensors ->
fp16, else fp32), does its batch dimension vary, and which TensorRT plugins does it call.
Refusing a bad ONNX here costs a second; refusing it after a 20-minute Jetson build costs 20.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ..contract.metadata import DeployInfo, MetadataError, deploy_info_from_onnx_model
from ..contract.names import INPUT_NAME
from ..contract.onnx_io import default_opset, load_onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
EFFICIENT_NMS = "EfficientNMS_TRT"


@dataclass
class GraphFacts:
    path: str
    info: DeployInfo
    precision: str  # what the graph itself carries: fp32 | fp16 | int8
    has_qdq: bool
    has_fp16: bool
    plugins: List[str] = field(default_factory=list)  # custom ops TensorRT must find as plugins
    input_name: str = INPUT_NAME
    input_shape: Tuple = ()  # ints for fixed dims, None for symbolic ones
    output_names: List[str] = field(default_factory=list)
    opset: int = 0  # the default ONNX domain's opset (TensorRT 8.x parses up to 17)

    @property
    def fp16_compute(self) -> bool:
        """An INT8 graph whose float compute is float16 (`edge-edet calibrate --fp16`; its metadata says so)."""
        return self.has_qdq and bool(((self.info.extra or {}).get("int8") or {}).get("fp16_compute"))

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.input_shape) and self.input_shape[0] is None

    @property
    def static_batch(self) -> Optional[int]:
        return None if self.dynamic_batch else (self.input_shape[0] if self.input_shape else None)

    @property
    def uses_efficient_nms(self) -> bool:
        return EFFICIENT_NMS in self.plugins


def graph_precision(has_qdq: bool, has_fp16: bool) -> str:
    if has_qdq:
        return "int8"
    if has_fp16:
        return "fp16"
    return "fp32"


def facts_from_model(model, path: str) -> GraphFacts:
    """GraphFacts of an onnx.ModelProto (already loaded)."""
    from onnx import TensorProto

    info = deploy_info_from_onnx_model(model, path)
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializer_names]
    if len(inputs) != 1 or inputs[0].name != "images":
        raise MetadataError(f"{path} does not have the single `images` input of an edge_edet deploy graph; "
                            f"re-export it with `edge-edet export`")
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type != TensorProto.UINT8:
        raise MetadataError(f"{path}: input `images` is not uint8 as the deploy contract requires; "
                            f"re-export it with `edge-edet export`")
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    if len(shape) != 4 or shape[3] != 3:
        raise MetadataError(f"{path}: input `images` has shape {shape}, not [B,H,W,3]; re-export it")

    has_qdq = False
    has_fp16 = any(t.data_type == TensorProto.FLOAT16 for t in graph.initializer)
    plugins = []
    for node in _all_nodes(graph):
        if node.op_type in QDQ_OPS:
            has_qdq = True
        elif node.op_type == "Cast":
            has_fp16 = has_fp16 or any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in node.attribute)
        elif node.op_type == "Constant":
            has_fp16 = has_fp16 or any(a.name == "value" and a.t.data_type == TensorProto.FLOAT16
                                       for a in node.attribute)
        if (node.domain not in ("", "ai.onnx", "ai.onnx.ml") or node.op_type.endswith("_TRT")) \
                and node.op_type not in plugins:
            plugins.append(node.op_type)
    has_fp16 = has_fp16 or any(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in graph.value_info)
    return GraphFacts(path=path, info=info, precision=graph_precision(has_qdq, has_fp16), has_qdq=has_qdq,
                      has_fp16=has_fp16, plugins=plugins, input_name=INPUT_NAME, input_shape=shape,
                      output_names=[o.name for o in graph.output], opset=default_opset(model))


def _all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:  # If / Loop bodies
            if attr.g is not None and len(attr.g.node):
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)


def inspect_onnx(path: str) -> GraphFacts:
    """Read `path` (graph only) and describe it; one clear sentence if it is missing, corrupt or not ours."""
    return facts_from_model(load_onnx(path, weights=False), path)
