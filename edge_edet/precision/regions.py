"""Where the network is in a deploy graph, so precision changes touch only the network.

A deploy ONNX is pre-processing (Cast/Sub/Div/Transpose on the uint8 input), the network
(convolutions and what lies between them), then decoding, sigmoid, TopK and NMS.  The split is
structural, not by name: a node belongs to the network when it is a convolution or lies on a path
between two convolutions.  Everything before the first convolution is pre-processing, everything
after the last is the tail (box decoding's exp, anchors, sigmoid, NMS, padding), and both stay fp32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Set

import onnx

from ..contract.errors import EdgeEdetError
from ..contract.metadata import MetadataError, deploy_info_from_onnx_model

CONV_OPS = ("Conv",)
QUANT_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
             "MatMulInteger", "DynamicQuantizeLinear", "QLinearAdd")
INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


@dataclass
class Regions:
    pre: List[str]  # node names before the first convolution
    network: List[str]  # convolutions and every node on a path between two of them
    post: List[str]  # decoding, sigmoid, TopK, NMS, padding

    @property
    def float_only(self) -> List[str]:
        """Nodes that must stay fp32 (everything outside the network)."""
        return self.pre + self.post


def ensure_node_names(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name (the converters address nodes by name)."""
    seen: Set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def _graph_links(model: onnx.ModelProto):
    producer: Dict[str, int] = {}
    for index, node in enumerate(model.graph.node):
        for out in node.output:
            producer[out] = index
    consumers: Dict[int, List[int]] = {i: [] for i in range(len(model.graph.node))}
    parents: Dict[int, List[int]] = {i: [] for i in range(len(model.graph.node))}
    for index, node in enumerate(model.graph.node):
        for name in node.input:
            if name in producer:
                parents[index].append(producer[name])
                consumers[producer[name]].append(index)
    return parents, consumers


def _reach(start: List[int], links: Dict[int, List[int]]) -> Set[int]:
    seen, stack = set(start), list(start)
    while stack:
        for nxt in links[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def constants_to_initializers(model: onnx.ModelProto) -> None:
    """Turn tensor-valued Constant nodes into initializers (in place).

    The converters treat only initializers as weights: a convolution weight held by a Constant node
    would be quantised as an activation and left fp32 beside an fp16 convolution.
    """
    keep = []
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and not node.domain and set(attrs) == {"value"}:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs["value"].t)
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    if len(keep) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(keep)
    # an initializer needs no value_info; a stale one misleads the fp16 converter into a Cast
    inits = {init.name for init in model.graph.initializer}
    stale = [vi for vi in model.graph.value_info if vi.name in inits]
    for vi in stale:
        model.graph.value_info.remove(vi)


def topological_sort(model: onnx.ModelProto) -> None:
    """Order nodes so each comes after its inputs' producers (in place, stable otherwise).

    onnxruntime's quantizer appends its Q/DQ nodes at the end of the node list; ONNX requires
    topological order and TensorRT's parser reads nodes in order.
    """
    nodes = list(model.graph.node)
    producer = {out: index for index, node in enumerate(nodes) for out in node.output if out}
    ordered, state = [], [0] * len(nodes)  # 0 new, 1 on stack, 2 done
    for root in range(len(nodes)):
        stack = [(root, False)]
        while stack:
            index, expanded = stack.pop()
            if state[index] == 2:
                continue
            if expanded:
                state[index] = 2
                ordered.append(nodes[index])
                continue
            state[index] = 1
            stack.append((index, True))
            for name in reversed(nodes[index].input):
                parent = producer.get(name)
                if parent is not None and state[parent] == 0:
                    stack.append((parent, False))
    del model.graph.node[:]
    model.graph.node.extend(ordered)


def split_regions(model: onnx.ModelProto) -> Regions:
    """Split the graph's nodes into pre-processing, network and tail (see module docstring)."""
    ensure_node_names(model)
    nodes = model.graph.node
    convs = [i for i, n in enumerate(nodes) if n.op_type in CONV_OPS]
    if not convs:
        raise EdgeEdetError("the ONNX graph has no convolutions, so it is not an EfficientDet deploy graph")
    parents, consumers = _graph_links(model)
    after_conv = _reach(convs, consumers)  # convs and everything downstream of one
    before_conv = _reach(convs, parents)  # convs and everything upstream of one
    network = after_conv & before_conv
    pre, net, post = [], [], []
    for index, node in enumerate(nodes):
        if index in network:
            net.append(node.name)
        elif index in after_conv:
            post.append(node.name)
        else:
            pre.append(node.name)
    return Regions(pre, net, post)


def check_deploy_graph(model: onnx.ModelProto, source: str, allow_quantized: bool = False):
    """DeployInfo of an edge_edet deploy graph, or one clear error for a foreign/quantised model."""
    try:
        info = deploy_info_from_onnx_model(model, source)
    except MetadataError as exc:
        raise EdgeEdetError(f"{exc}; only graphs made by `edge-edet export` can be converted") from None
    if not allow_quantized and is_quantized(model):
        raise EdgeEdetError(f"{source} is already quantised (it has Q/DQ or integer-weight nodes); "
                            "give the float (fp32) graph from `edge-edet export`")
    if info.precision != "fp32":
        raise EdgeEdetError(f"{source} is already an {info.precision} graph; give the fp32 graph from `edge-edet export`")
    return info


def is_quantized(model: onnx.ModelProto) -> bool:
    if any(node.op_type in QUANT_OPS for node in model.graph.node):
        return True
    return any(init.data_type in INT8_TYPES for init in model.graph.initializer)


def has_float16(model: onnx.ModelProto) -> bool:
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer):
        return True
    return any(node.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16 for a in node.attribute)
               for node in model.graph.node)


def weight_groups(model: onnx.ModelProto) -> Dict[str, List[str]]:
    """{weight name: [conv names]}: EfficientDet's heads share one weight across pyramid levels."""
    groups: Dict[str, List[str]] = {}
    for node in model.graph.node:
        if node.op_type in CONV_OPS and len(node.input) > 1:
            groups.setdefault(node.input[1], []).append(node.name)
    return groups


def expand_shared_weights(model: onnx.ModelProto, names: List[str]) -> List[str]:
    """`names` plus every convolution that shares a weight with one of them (a layer is kept whole)."""
    wanted, result = set(names), list(names)
    for members in weight_groups(model).values():
        if wanted & set(members):
            result.extend(m for m in members if m not in result)
    return result
