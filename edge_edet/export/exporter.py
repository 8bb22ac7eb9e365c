"""Trace the core with torch, simplify it with onnx-simplifier, append the NMS tail, stamp the
metadata, check, and write atomically."""
from __future__ import annotations

import io
import warnings
from typing import Callable, List, Optional

import onnx
import torch
from onnx import TensorProto, helper

from ..contract.errors import EdgeEdetError
from ..contract.fileio import check_output_file
from ..contract.metadata import DeployInfo, deploy_info_from_onnx_model, write_onnx_metadata
from ..contract.names import (DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_OPSET, DEFAULT_PRE_NMS_TOP_K,
                              DEFAULT_SCORE_THRESHOLD, INPUT_NAME, MAX_OPSET, MIN_OPSET, NMS_KINDS, NMS_OUTPUTS,
                              RAW_OUTPUTS)
from ..contract.onnx_io import save_onnx_atomic
from .core import DeployCore
from .nms import PLUGIN_DOMAIN, add_efficient_nms, add_no_nms, add_onnx_nms


def _trace_core(model, batch: int, dynamic: bool, opset: int) -> onnx.ModelProto:
    cfg = model.config
    core = DeployCore(model).eval()
    dummy = torch.zeros((batch,) + tuple(cfg.input_size) + (3,), dtype=torch.uint8)
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, "core_boxes": {0: "batch"}, "core_logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(core, (dummy,), buffer, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                          output_names=["core_boxes", "core_logits"], dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def _simplify(proto: onnx.ModelProto, log: Callable) -> onnx.ModelProto:
    import onnxsim

    before = len(proto.graph.node)
    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise EdgeEdetError("onnx-simplifier could not validate the simplified graph")
    log(f"onnx-simplifier: {before} -> {len(simplified.graph.node)} nodes")
    return simplified


def _set_outputs(graph: onnx.GraphProto, nms: str, batch_dim, max_det: int, num_anchors: int, num_classes: int):
    # keep the core's outputs typed (value_info) so tools can cut the graph there
    graph.value_info.extend([helper.make_tensor_value_info("core_boxes", TensorProto.FLOAT, [batch_dim, num_anchors, 4]),
                             helper.make_tensor_value_info("core_logits", TensorProto.FLOAT,
                                                           [batch_dim, num_anchors, num_classes])])
    del graph.output[:]
    if nms == "none":
        specs = [(RAW_OUTPUTS[0], TensorProto.FLOAT, [batch_dim, num_anchors, 4]),
                 ("scores", TensorProto.FLOAT, [batch_dim, num_anchors, num_classes])]
    else:
        count, boxes, scores, classes = NMS_OUTPUTS
        specs = [(count, TensorProto.INT32, [batch_dim, 1]),
                 (boxes, TensorProto.FLOAT, [batch_dim, max_det, 4]),
                 (scores, TensorProto.FLOAT, [batch_dim, max_det]),
                 (classes, TensorProto.INT32, [batch_dim, max_det])]
    for name, dtype, shape in specs:
        graph.output.append(helper.make_tensor_value_info(name, dtype, shape))


def export_model_proto(model, labels: List[str], nms: str = "onnx", batch: int = 1,
                       dynamic_batch: Optional[int] = None, score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                       iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_detections: int = DEFAULT_MAX_DETECTIONS,
                       pre_nms_top_k: int = DEFAULT_PRE_NMS_TOP_K, default_threshold: Optional[float] = None,
                       opset: int = DEFAULT_OPSET, weights: str = "", simplify: bool = True,
                       log: Callable = print) -> onnx.ModelProto:
    """The deploy graph as an in-memory ModelProto with its DeployInfo metadata."""
    cfg = model.config
    if nms not in NMS_KINDS:
        raise EdgeEdetError(f"--nms must be one of {', '.join(NMS_KINDS)}, not {nms}")
    if len(labels) != cfg.num_classes:
        raise EdgeEdetError(f"{len(labels)} labels given for a model with {cfg.num_classes} classes")
    if not 0.0 <= score_threshold < 1.0 or not 0.0 < iou_threshold <= 1.0:
        raise EdgeEdetError("score threshold must be in [0, 1) and IoU threshold in (0, 1]")
    if max_detections < 1 or pre_nms_top_k < max_detections:
        raise EdgeEdetError("max detections must be at least 1 and pre-NMS top-k at least max detections")
    dynamic = dynamic_batch is not None
    if dynamic and dynamic_batch < 1:
        raise EdgeEdetError("--dynamic-batch needs a maximum batch of at least 1")
    if batch < 1:
        raise EdgeEdetError("--batch must be at least 1")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise EdgeEdetError(f"--opset {opset} is not supported: the deploy graph exports at opsets {MIN_OPSET} to "
                            f"{MAX_OPSET}")

    proto = _trace_core(model.eval(), 1 if dynamic else batch, dynamic, opset)
    if simplify:
        proto = _simplify(proto, log)
    graph = proto.graph
    num_anchors = sum(h * w * cfg.num_anchors for h, w in cfg.pyramid_sizes())
    if nms == "onnx":
        add_onnx_nms(graph, "core_boxes", "core_logits", num_anchors, cfg.num_classes, pre_nms_top_k,
                     max_detections, iou_threshold, score_threshold)
    elif nms == "efficientnms":
        add_efficient_nms(graph, "core_boxes", "core_logits", max_detections, iou_threshold, score_threshold)
        proto.opset_import.append(helper.make_opsetid(PLUGIN_DOMAIN, 1))
    else:
        add_no_nms(graph, "core_boxes", "core_logits")
    _set_outputs(graph, nms, "batch" if dynamic else batch, max_detections, num_anchors, cfg.num_classes)
    graph.name = f"edge_edet_{cfg.name}"
    proto.producer_name = "edge_edet"

    mean = tuple(v * 255.0 for v in cfg.mean)
    std = tuple(v * 255.0 for v in cfg.std)
    info = DeployInfo(model=cfg.name, input_size=cfg.input_size, labels=labels, mean=mean, std=std,
                      score_threshold=score_threshold, default_threshold=default_threshold,
                      iou_threshold=iou_threshold, max_detections=max_detections,
                      pre_nms_top_k=pre_nms_top_k, nms=nms, batch=dynamic_batch if dynamic else batch,
                      dynamic_batch=dynamic, precision="fp32", weights=weights)
    write_onnx_metadata(proto, info)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise EdgeEdetError(f"the exported graph failed onnx.checker: {str(exc).splitlines()[0]}") from None
    return proto


def export_onnx(model, output: str, labels: Optional[List[str]] = None, log: Callable = print,
                transform: Optional[Callable[[onnx.ModelProto], onnx.ModelProto]] = None, **options) -> DeployInfo:
    """Export `model` to `output` (fp32); returns the DeployInfo written into it.

    `transform` rewrites the graph before it is saved (the export command passes the precision
    stage's FP16 conversion here, so this stage never imports a later one)."""
    from ..contract.labels import default_labels

    check_output_file(output)
    labels = labels or default_labels(model.config.num_classes)
    proto = export_model_proto(model, labels, log=log, **options)
    if transform is not None:
        proto = transform(proto)
    save_onnx_atomic(proto, output)
    return deploy_info_from_onnx_model(proto, output)
