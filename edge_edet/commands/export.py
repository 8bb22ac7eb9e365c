"""`edge-edet export`: a deploy ONNX with pre-processing, decoding and NMS inside the graph."""
from __future__ import annotations

import sys

from ..contract.cli import counted, int_in_range, positive_int, probability
from ..contract.errors import EdgeEdetError
from ..contract.metadata import RANDOM_WEIGHTS
from ..contract.names import (DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_OPSET,
                              DEFAULT_PRE_NMS_TOP_K, DEFAULT_SCORE_THRESHOLD, MAX_OPSET, MIN_OPSET, NMS_KINDS,
                              ONNX_EXTENSION)


def register(sub) -> None:
    p = sub.add_parser("export", help="export a deploy ONNX (uint8 BGR in, padded detections out)",
                       description="Export EfficientDet to a deploy ONNX: pre-processing, box decoding and "
                                   "NMS run inside the graph; metadata travels in the file.")
    p.add_argument("--model", required=True, help="d0..d7, d7x, lite0..lite4 (aliases like efficientdet-d0 work)")
    p.add_argument("--weights", default=None,
                   help="checkpoint path (effdet or zylo117 format), 'coco' (official, downloaded) or a bundled "
                        "name ('person'); without it the model has random weights and detects nothing meaningful")
    p.add_argument("--num-classes", type=positive_int, default=None,
                   help="class count (default: the checkpoint's, else 90)")
    p.add_argument("--labels", default=None,
                   help="text file, one label per line (default: the ones a `train` checkpoint or bundled model carries)")
    p.add_argument("--input-size", default=None,
                   help="512 or HEIGHTxWIDTH such as 384x640 (default: a `train` checkpoint's, else the model's)")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=positive_int, default=1, help="static batch size (default 1)")
    batch.add_argument("--dynamic-batch", type=positive_int, default=None, metavar="MAX",
                       help="dynamic batch up to MAX")
    p.add_argument("--nms", choices=NMS_KINDS, default=NMS_KINDS[0],
                   help="onnx: standard NonMaxSuppression (TensorRT 8.5+, ONNX Runtime); efficientnms: the "
                        "EfficientNMS_TRT plugin (TensorRT 8.x-10.x only); none: decoded boxes and scores")
    p.add_argument("--score-threshold", type=probability, default=None,
                   help=f"graph's score floor, stored in the metadata (default {DEFAULT_SCORE_THRESHOLD}, or the "
                        "weights' default threshold when lower); 0.001 for `edge-edet eval`")
    p.add_argument("--default-threshold", type=probability, default=None,
                   help="score under which `edge-edet run` hides boxes unless --threshold says otherwise, stored "
                        "in the metadata (default: the bundled weights' own, picked on validation data)")
    p.add_argument("--iou-threshold", type=probability, default=DEFAULT_IOU_THRESHOLD,
                   help=f"NMS IoU threshold (default {DEFAULT_IOU_THRESHOLD})")
    p.add_argument("--max-detections", type=positive_int, default=DEFAULT_MAX_DETECTIONS,
                   help=f"detections per image (default {DEFAULT_MAX_DETECTIONS})")
    p.add_argument("--pre-nms-top-k", type=positive_int, default=DEFAULT_PRE_NMS_TOP_K,
                   help=f"candidates entering NMS (default {DEFAULT_PRE_NMS_TOP_K})")
    p.add_argument("--opset", type=int_in_range(MIN_OPSET, MAX_OPSET), default=DEFAULT_OPSET,
                   help=f"ONNX opset of the deploy graph, {MIN_OPSET} to {MAX_OPSET} (default {DEFAULT_OPSET}: the "
                        "newest TensorRT 8.5 on JetPack 5 reads)")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: mixed-precision graph (fp16 compute, fp32 I/O) for strongly typed TensorRT")
    p.add_argument("--output", required=True, help="output .onnx path (the file name must end in .onnx)")
    p.set_defaults(func=run)


def _warn(message: str) -> None:
    print(f"edge-edet: warning: {message}", file=sys.stderr, flush=True)


def check_arguments(args, cfg) -> None:
    """What the exporter would refuse only after building the model, refused before it."""
    from ..contract.machine import INFERENCE_BYTES_PER_PIXEL, check_count_fits_memory

    if args.score_threshold is not None and not 0.0 <= args.score_threshold < 1.0:
        raise EdgeEdetError(f"--score-threshold must be at least 0 and below 1, got {args.score_threshold:g}")
    if not 0.0 < args.iou_threshold <= 1.0:
        raise EdgeEdetError(f"--iou-threshold must be above 0 and at most 1, got {args.iou_threshold:g}")
    if args.pre_nms_top_k < args.max_detections:
        raise EdgeEdetError(f"--pre-nms-top-k {args.pre_nms_top_k} is below --max-detections {args.max_detections}; "
                            f"NMS needs at least as many candidates as it keeps")
    height, width = cfg.input_size
    if args.dynamic_batch is None:  # a static batch is traced here at its full size
        check_count_fits_memory("--batch", args.batch, height * width * INFERENCE_BYTES_PER_PIXEL,
                                f"{height}x{width} images traced at once")


def reconcile(args, cfg, facts):
    """(input size, labels or None) from the arguments and what the checkpoint carries; a
    contradiction between them is one sentence."""
    from ..contract.labels import read_labels

    if facts.model_name and facts.model_name != cfg.name:
        raise EdgeEdetError(f"checkpoint {args.weights} was trained as {facts.model_name}, not {cfg.name}; "
                            f"export it with --model {facts.model_name}")
    labels = read_labels(args.labels) if args.labels else facts.labels
    if args.labels and facts.labels and len(labels) != len(facts.labels):
        raise EdgeEdetError(f"labels file {args.labels} has {counted(len(labels), 'label')} but checkpoint "
                            f"{args.weights} was trained on {counted(len(facts.labels), 'class')} "
                            f"({', '.join(facts.labels[:5])}{', ...' if len(facts.labels) > 5 else ''})")
    input_size = args.input_size or (f"{facts.input_size[0]}x{facts.input_size[1]}" if facts.input_size else None)
    return input_size, labels


def run(args) -> int:
    from .. import create_model
    from ..contract.config import get_config
    from ..contract.fileio import check_output_file
    from ..contract.labels import default_labels
    from ..export import export_onnx
    from ..model.weights import checkpoint_facts

    cfg = get_config(args.model, input_size=args.input_size)  # validates name and size first
    check_output_file(args.output, "--output", inputs=[("--weights", args.weights), ("--labels", args.labels)],
                      extensions=(ONNX_EXTENSION,))
    check_arguments(args, cfg)
    facts = checkpoint_facts(args.weights)
    input_size, labels = reconcile(args, cfg, facts)
    if not args.weights:
        _warn(f"no --weights given: {cfg.name} gets random weights and will make no meaningful detections "
              "(pass --weights coco, person or a checkpoint)")
    model = create_model(cfg.name, num_classes=args.num_classes or (len(facts.labels) if facts.labels else None),
                         input_size=input_size, checkpoint=args.weights)
    if not labels or len(labels) != model.config.num_classes:
        if args.labels:
            raise EdgeEdetError(f"labels file {args.labels} has {counted(len(labels), 'label')} but the model has "
                                f"{counted(model.config.num_classes, 'class')}")
        labels = default_labels(model.config.num_classes, labels)
    default_threshold = args.default_threshold if args.default_threshold is not None else facts.default_threshold
    score_threshold = args.score_threshold
    if score_threshold is None:  # the graph must not drop what the runtime is meant to show
        score_threshold = min(DEFAULT_SCORE_THRESHOLD, default_threshold or DEFAULT_SCORE_THRESHOLD)
    transform = None
    if args.precision == "fp16":
        from ..precision.fp16 import convert_model_to_fp16

        transform = convert_model_to_fp16
    info = export_onnx(model, args.output, labels=labels, transform=transform,
                       log=lambda msg: print(msg, file=sys.stderr),
                       nms=args.nms, batch=args.batch, dynamic_batch=args.dynamic_batch,
                       score_threshold=score_threshold, default_threshold=default_threshold,
                       iou_threshold=args.iou_threshold,
                       max_detections=args.max_detections, pre_nms_top_k=args.pre_nms_top_k, opset=args.opset,
                       weights=args.weights or RANDOM_WEIGHTS)
    batch = f"dynamic 1..{info.batch}" if info.dynamic_batch else str(info.batch)
    print(f"wrote {args.output}: {info.model} {info.input_size[0]}x{info.input_size[1]}, {counted(info.num_classes, 'class')}, "
          f"batch {batch}, nms {info.nms}, {args.precision}")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
