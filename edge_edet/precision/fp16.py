"""FP16 deploy graph: fp16 network, fp32 I/O, fp32 pre-processing and tail.

TensorRT 11 builds strongly typed networks only, so FP16 must be written into the ONNX graph.
onnxconverter-common's float16 converter does the rewrite (weights to fp16, Casts at the region
borders); we only choose what it must leave in fp32: pre-processing (uint8 -> normalised float,
cheap and exact in fp32), and the tail: box decoding (exp, anchor coordinates up to the input
size, where fp16's 11-bit mantissa costs a pixel at 1024+), sigmoid, TopK and NMS.  Inside the
network the converter's default block list still applies (Resize, whose scales must stay fp32).
"""
from __future__ import annotations

import warnings
from typing import Iterable, List, Optional

import onnx

from ..contract.errors import EdgeEdetError
from ..contract.metadata import write_onnx_metadata
from .regions import check_deploy_graph, constants_to_initializers, ensure_node_names, split_regions
from ..contract.onnx_io import default_opset, load_onnx, save_onnx_atomic


def convert_model_to_fp16(model: onnx.ModelProto, keep_fp32: Optional[Iterable[str]] = None,
                          source: str = "ONNX model") -> onnx.ModelProto:
    """fp32 deploy graph -> mixed-precision graph (fp16 network, fp32 I/O, decode and NMS).

    keep_fp32: extra node names to leave in fp32 (for experiments); the input is not modified.
    """
    info = check_deploy_graph(model, source)
    model = _copy(model)
    constants_to_initializers(model)
    regions = split_regions(model)
    block = list(regions.float_only) + list(keep_fp32 or [])
    converted = _to_float16(model, block)
    info.precision = "fp16"
    info.extra = dict(info.extra, fp16={"converter": f"onnxconverter-common {_version('onnxconverter_common')}",
                                        "fp32_nodes": len(block)})
    write_onnx_metadata(converted, info)
    return converted


def convert_nodes_to_fp16(model: onnx.ModelProto, nodes: Iterable[str]) -> onnx.ModelProto:
    """Only these nodes in fp16 (INT8 `--mixed`: sensitive convolutions kept out of INT8), the rest untouched."""
    keep = set(nodes)
    ensure_node_names(model)
    _unshare_initializers(model, keep)
    block = [node.name for node in model.graph.node if node.name not in keep]
    return _to_float16(model, block, check_fp16_ready=False)


FP16_QDQ_OPSET = 19  # QuantizeLinear / DequantizeLinear take float16 inputs and scales from opset 19


def add_fp16_compute(quantized: onnx.ModelProto, float_only: Iterable[str]) -> onnx.ModelProto:
    """INT8 Q/DQ graph -> the same graph with its unquantized float compute in float16.

    A strongly typed TensorRT build (10.x with the flag, every 11.x build) runs each tensor in the type
    the graph gives it: in a plain Q/DQ graph everything between the INT8 convolutions (SiLU, the
    BiFPN's weighted adds, the heads' activations) runs in FP32.  As NVIDIA's Model Optimizer does
    ("AutoCast" on a quantized model), the float parts become float16 here: the Q/DQ scales and the
    weights behind them turn float16 (so each DequantizeLinear hands float16 to its convolution and
    no Cast sits beside a Q/DQ pair), which needs opset 19; `float_only` (the fp32 graph's
    pre-processing and tail, from regions.split_regions) and the converter's default block list
    (Resize) stay float32 exactly as in convert_model_to_fp16, with Casts at those borders only.
    """
    from onnx import version_converter

    upgrade = default_opset(quantized) < FP16_QDQ_OPSET
    model = version_converter.convert_version(quantized, FP16_QDQ_OPSET) if upgrade else _copy(quantized)
    ensure_node_names(model)
    return _to_float16(model, list(float_only), check_fp16_ready=False)


def _to_float16(model: onnx.ModelProto, block: List[str], check_fp16_ready: bool = True) -> onnx.ModelProto:
    """onnxconverter-common's float16 rewrite, shared by the three converters above: fp32 I/O, the
    `block` nodes and the converter's default op block list (Resize) left fp32; then the Cast round
    trips it leaves dropped and the tensor names the graph had restored.  `check_fp16_ready`: the
    converter's refusal of a graph that already holds float16 (the two partial conversions turn it off)."""
    from onnxconverter_common import float16

    output_types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    names = {node.name: list(node.output) for node in model.graph.node}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "float32 number ... will be truncated" per tiny weight
        converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block,
                                                     op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST),
                                                     check_fp16_ready=check_fp16_ready)
    drop_fp16_round_trips(converted, output_types)
    restore_tensor_names(converted, names)
    return converted


def _unshare_initializers(model: onnx.ModelProto, keep: set) -> None:
    """Give `keep` nodes their own copy of an initializer also read by other nodes.

    onnx-simplifier merges equal constants, so an fp16 node can share a bias with an fp32 one; the
    converter then leaves the shared tensor fp32 and the fp16 node gets mixed input types.
    """
    readers = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name)
    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.name not in keep:
            continue
        for index, name in enumerate(node.input):
            if name in inits and readers[name] - keep:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}_{node.name}_fp16"
                model.graph.initializer.append(copy)
                node.input[index] = copy.name


def convert_to_fp16(input_onnx: str, output_onnx: str) -> str:
    """File to file `convert_model_to_fp16`; the output appears only when complete."""
    model = load_onnx(input_onnx)
    converted = convert_model_to_fp16(model, source=input_onnx)
    return save_onnx_atomic(converted, output_onnx)


def drop_fp16_round_trips(model: onnx.ModelProto, output_types: dict) -> int:
    """Remove the lossy Cast(fp16) -> Cast(fp32) pairs the converter leaves between blocked nodes.

    onnxconverter-common treats each blocked node as an fp32 island inside an fp16 graph: it casts
    the node's outputs to fp16 and casts them back at the next blocked node.  Between two fp32
    nodes (anchors -> decode, decode -> NMS) that round trip only rounds fp32 values to fp16, so
    consumers are wired to the fp32 tensor instead.  A blocked node that makes a graph output
    also gets its output cast to fp16 and the output retyped, despite keep_io_types: the output
    keeps its original type (`output_types`, name -> elem type) and is fed the fp32 tensor.
    Returns the number of round trips removed.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}

    def cast_to(node, dtype):
        return node is not None and node.op_type == "Cast" and any(
            a.name == "to" and a.i == dtype for a in node.attribute)

    bypass = {}  # fp32 tensor after a round trip -> the fp32 tensor before it
    for node in graph.node:
        if cast_to(node, onnx.TensorProto.FLOAT):
            first = producer.get(node.input[0])
            if cast_to(first, onnx.TensorProto.FLOAT16):
                bypass[node.output[0]] = first.input[0]
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in bypass:
                node.input[index] = bypass[name]
    for out in graph.output:
        node = producer.get(out.name)
        if out.type.tensor_type.elem_type != output_types.get(out.name, out.type.tensor_type.elem_type):
            if not cast_to(node, onnx.TensorProto.FLOAT16):
                raise EdgeEdetError(f"fp16 conversion changed the type of output {out.name}; please report this")
            bypass[out.name] = node.input[0]
            out.type.tensor_type.elem_type = output_types[out.name]
    for node in graph.node:  # a graph output keeps its name: its Cast becomes an Identity of the fp32 tensor
        if node.output and node.output[0] in bypass and node.output[0] in outputs:
            node.op_type, node.input[0] = "Identity", bypass[node.output[0]]
            del node.attribute[:]
    _remove_dead_nodes(model)
    return len(bypass)


def restore_tensor_names(model: onnx.ModelProto, original_outputs: dict) -> None:
    """Give every node's outputs back their fp32-graph names ({node name: [output names]}).

    The converter renames a blocked node's output and hands the name to an fp16 Cast; tensor names
    must match the fp32 graph's for calibration ranges and TensorRT caches, so the node's own
    output gets its name back and an fp16 copy still around is called `<name>_fp16`.
    """
    graph = model.graph
    outputs = {o.name for o in graph.output}
    taken = {out for node in graph.node for out in node.output} | {i.name for i in graph.input}
    taken |= {i.name for i in graph.initializer}

    def rename(old: str, new: str) -> None:
        for node in graph.node:
            for index, name in enumerate(node.input):
                if name == old:
                    node.input[index] = new
            for index, name in enumerate(node.output):
                if name == old:
                    node.output[index] = new
        for vi in graph.value_info:
            if vi.name == old:
                vi.name = new

    for node in list(graph.node):
        for index, current in enumerate(list(node.output)):
            before = original_outputs.get(node.name) or []
            wanted = before[index] if index < len(before) else None
            if not wanted or wanted == current or current in outputs:
                continue
            if wanted in taken:  # the converter's fp16 copy holds the name
                if wanted in outputs:
                    continue
                spare = wanted + "_fp16"
                while spare in taken:
                    spare += "_"
                rename(wanted, spare)
                taken.add(spare)
            rename(current, wanted)
            taken.add(wanted)


def _remove_dead_nodes(model: onnx.ModelProto) -> None:
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for node in graph.node for name in node.input}
    kept_inits = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module.replace("_", "-"))
    except Exception:
        return "unknown"
