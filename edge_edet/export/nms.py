"""Graph tails after the core: ONNX NonMaxSuppression with fixed-size padded outputs, the
EfficientNMS_TRT plugin node, or none (decoded boxes + probabilities).

Built with onnx.helper rather than traced, so every op is chosen for TensorRT: the pre-NMS top-k
first picks the best anchors by max class logit, then the best pairs among them (exact, ~10x less
work than one TopK over all N*C logits), and TopK is cascaded in chunks of at most 3840
(TensorRT's TopK limit) while still giving the exact global top-k;
per-class NMS uses the class-offset trick on one NonMaxSuppression (parsed into INMSLayer);
padding uses ScatterElements/TopK/GatherElements with no Shape arithmetic.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TRT_TOPK_LIMIT = 3840
PLUGIN_DOMAIN = "TRT"
OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")


class _Builder:
    """Appends nodes/initialisers to a graph with unique, prefixed names."""

    def __init__(self, graph: onnx.GraphProto, prefix: str):
        self.graph, self.prefix, self.count = graph, prefix, 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, value, dtype=None, hint="const") -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs, hint=None, outputs=1, domain="", **attrs):
        names = [self.name(hint or op_type) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.graph.node.append(helper.make_node(op_type, list(inputs), names, name=self.name(op_type),
                                                domain=domain, **attrs))
        return names[0] if len(names) == 1 else names


def _exact_topk(b: _Builder, flat: str, k: int):
    """Global top-k (values, int64 indices) of [B, M], in TopK chunks of <= 3840, sorted descending."""
    values, indices = [], []
    remaining, current = k, flat
    while remaining > 0:
        step = min(remaining, TRT_TOPK_LIMIT)
        v, i = b.op("TopK", [current, b.const([step], np.int64, "k")], "topk", outputs=2, axis=1, largest=1, sorted=1)
        values.append(v)
        indices.append(i)
        remaining -= step
        if remaining > 0:  # mask the chosen ones out, then take the next chunk
            low = b.op("Sub", [b.op("Mul", [v, b.const(0.0, np.float32)]), b.const(1e30, np.float32)], "masked")
            current = b.op("ScatterElements", [current, i, low], "scatter", axis=1)
    if len(values) == 1:
        return values[0], indices[0]
    return b.op("Concat", values, "topk_values", axis=1), b.op("Concat", indices, "topk_indices", axis=1)


def _gather_rows(b: _Builder, data: str, index: str) -> str:
    """data [B, N, W], index [B, k] -> [B, k, W]: one GatherND per batch item (batch_dims=1),
    no index tiling and no Shape arithmetic."""
    return b.op("GatherND", [data, b.op("Unsqueeze", [index, b.const([2], np.int64)])], "gather_rows", batch_dims=1)


def add_onnx_nms(graph: onnx.GraphProto, boxes: str, logits: str, num_anchors: int, num_classes: int,
                 pre_nms_top_k: int, max_detections: int, iou_threshold: float, score_threshold: float) -> None:
    """Pre-NMS top-k over all (anchor, class) scores, per-class NMS, fixed [B, K] outputs."""
    b = _Builder(graph, "nms")
    k = min(pre_nms_top_k, num_anchors * num_classes)
    if k < max_detections:
        raise ValueError(f"pre-NMS top-k ({k}) must be at least max detections ({max_detections})")
    if num_classes > 1 and num_anchors > k:
        # Exact two-stage top-k: every one of the k best (anchor, class) pairs lies in an anchor
        # whose best class reaches the k-th score, and at most k anchors can, so the k best anchors
        # by max logit hold them all.  Scans N + k*C values instead of N*C (~10x less for COCO).
        anchor_max = b.op("ReduceMax", [logits], "anchor_max", axes=[2], keepdims=0)
        _, top_anchor = _exact_topk(b, anchor_max, k)
        sub_logits = _gather_rows(b, logits, top_anchor)  # [B, k, C]
        flat = b.op("Reshape", [sub_logits, b.const([0, -1], np.int64)], "flat_logits")
        top_logits, top_index = _exact_topk(b, flat, k)
        local = b.op("Div", [top_index, b.const(num_classes, np.int64)], "local_anchor")
        anchor = b.op("GatherElements", [top_anchor, local], "anchor_index", axis=1)
    else:
        flat = b.op("Reshape", [logits, b.const([0, -1], np.int64)], "flat_logits")
        top_logits, top_index = _exact_topk(b, flat, k)
        anchor = b.op("Div", [top_index, b.const(num_classes, np.int64)], "anchor_index")
    klass = b.op("Mod", [top_index, b.const(num_classes, np.int64)], "class_index")
    cand_boxes = _gather_rows(b, boxes, anchor)  # [B, k, 4]
    cand_scores = b.op("Sigmoid", [top_logits], "cand_scores")  # [B, k]
    # class-offset trick: boxes of different classes never overlap, so one NMS is per-class NMS
    extent = b.op("ReduceMax", [b.op("Abs", [cand_boxes])], "extent", keepdims=0)
    step = b.op("Add", [b.op("Mul", [extent, b.const(2.0, np.float32)]), b.const(1.0, np.float32)], "offset_step")
    offset = b.op("Mul", [b.op("Cast", [klass], to=TensorProto.FLOAT), step], "class_offset")
    nms_boxes = b.op("Add", [cand_boxes, b.op("Unsqueeze", [offset, b.const([2], np.int64)])], "nms_boxes")
    nms_scores = b.op("Unsqueeze", [cand_scores, b.const([1], np.int64)], "nms_scores")
    selected = b.op("NonMaxSuppression", [nms_boxes, nms_scores, b.const([max_detections], np.int64),
                                          b.const([iou_threshold], np.float32),
                                          b.const([score_threshold], np.float32)], "selected", center_point_box=0)
    # kept mask [B, k] from the selected (batch, _, candidate) rows
    batch_index = b.op("Gather", [selected, b.const(0, np.int64)], "sel_batch", axis=1)
    cand_index = b.op("Gather", [selected, b.const(2, np.int64)], "sel_cand", axis=1)
    flat_index = b.op("Add", [b.op("Mul", [batch_index, b.const(k, np.int64)]), cand_index], "sel_flat")
    ones = b.op("Cast", [b.op("Greater", [flat_index, b.const(-1, np.int64)])], "ones", to=TensorProto.FLOAT)
    zeros = b.op("Mul", [b.op("Reshape", [cand_scores, b.const([-1], np.int64)]), b.const(0.0, np.float32)], "zeros")
    kept = b.op("ScatterElements", [zeros, flat_index, ones], "kept_flat", axis=0)
    kept = b.op("Reshape", [kept, b.const([-1, k], np.int64)], "kept")
    # kept candidates keep their score, the rest drop to -1; TopK(K) orders and pads
    masked = b.op("Add", [b.op("Mul", [cand_scores, kept]), b.op("Sub", [kept, b.const(1.0, np.float32)])], "masked")
    top_scores, top_slot = b.op("TopK", [masked, b.const([max_detections], np.int64)], "final", outputs=2,
                                axis=1, largest=1, sorted=1)
    valid = b.op("Greater", [top_scores, b.const(-0.5, np.float32)], "valid")
    valid_f = b.op("Cast", [valid], "valid_f", to=TensorProto.FLOAT)
    b.op("Cast", [b.op("ReduceSum", [valid_f, b.const([1], np.int64)], "count", keepdims=1)],
         outputs=["num_detections"], to=TensorProto.INT32)
    b.op("Mul", [top_scores, valid_f], outputs=["detection_scores"])
    picked = _gather_rows(b, cand_boxes, top_slot)
    b.op("Mul", [picked, b.op("Unsqueeze", [valid_f, b.const([2], np.int64)])], outputs=["detection_boxes"])
    picked_class = b.op("GatherElements", [klass, top_slot], "picked_class", axis=1)
    b.op("Cast", [b.op("Mul", [picked_class, b.op("Cast", [valid], to=TensorProto.INT64)])],
         outputs=["detection_classes"], to=TensorProto.INT32)


def add_efficient_nms(graph: onnx.GraphProto, boxes: str, logits: str, max_detections: int,
                      iou_threshold: float, score_threshold: float) -> None:
    """EfficientNMS_TRT plugin (TensorRT 8.x-10.x): sigmoid applied by the plugin to kept boxes."""
    graph.node.append(helper.make_node(
        "EfficientNMS_TRT", [boxes, logits], list(OUTPUTS), name="nms/EfficientNMS_TRT", domain=PLUGIN_DOMAIN,
        plugin_version="1", background_class=-1, max_output_boxes=int(max_detections),
        score_threshold=float(score_threshold), iou_threshold=float(iou_threshold), score_activation=1,
        class_agnostic=0, box_coding=0))


def add_no_nms(graph: onnx.GraphProto, boxes: str, logits: str) -> None:
    """`--nms none`: decoded boxes and per-class probabilities for the user's own post-processing."""
    graph.node.append(helper.make_node("Identity", [boxes], ["boxes"], name="out/boxes"))
    graph.node.append(helper.make_node("Sigmoid", [logits], ["scores"], name="out/scores"))
