"""`edge-edet export`: a deploy ONNX with pre-processing, decoding and NMS inside the graph."""
from __future__ import annotations

import sys

from ..contract.names import (DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_PRE_NMS_TOP_K,
                              DEFAULT_SCORE_THRESHOLD, NMS_KINDS)


def register(sub) -> None:
    p = sub.add_parser("export", help="export a deploy ONNX (uint8 BGR in, padded detections out)",
                       description="Export EfficientDet to a deploy ONNX: pre-processing, box decoding and "
                                   "NMS run inside the graph; metadata travels in the file.")
    p.add_argument("--model", required=True, help="d0..d7, d7x, lite0..lite4 (aliases like efficientdet-d0 work)")
    p.add_argument("--weights", default=None,
                   help="checkpoint path (effdet or zylo117 format), 'coco' (official, downloaded) or a bundled "
                        "name ('person'); default: random weights")
    p.add_argument("--num-classes", type=int, default=None, help="class count (default: the checkpoint's, else 90)")
    p.add_argument("--labels", default=None, help="text file, one label per line")
    p.add_argument("--input-size", default=None, help="512 or HEIGHTxWIDTH such as 384x640 (default: the model's)")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, default=1, help="static batch size (default 1)")
    batch.add_argument("--dynamic-batch", type=int, default=None, metavar="MAX", help="dynamic batch up to MAX")
    p.add_argument("--nms", choices=NMS_KINDS, default=NMS_KINDS[0],
                   help="onnx: standard NonMaxSuppression (TensorRT 8.5+, ONNX Runtime); efficientnms: the "
                        "EfficientNMS_TRT plugin (TensorRT 8.x-10.x only); none: decoded boxes and scores")
    p.add_argument("--score-threshold", type=float, default=DEFAULT_SCORE_THRESHOLD,
                   help=f"graph's score floor, stored in the metadata (default {DEFAULT_SCORE_THRESHOLD})")
    p.add_argument("--iou-threshold", type=float, default=DEFAULT_IOU_THRESHOLD,
                   help=f"NMS IoU threshold (default {DEFAULT_IOU_THRESHOLD})")
    p.add_argument("--max-detections", type=int, default=DEFAULT_MAX_DETECTIONS,
                   help=f"detections per image (default {DEFAULT_MAX_DETECTIONS})")
    p.add_argument("--pre-nms-top-k", type=int, default=DEFAULT_PRE_NMS_TOP_K,
                   help=f"candidates entering NMS (default {DEFAULT_PRE_NMS_TOP_K})")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: mixed-precision graph (fp16 compute, fp32 I/O) for strongly typed TensorRT")
    p.add_argument("--output", required=True, help="output .onnx path")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import create_model
    from ..contract.config import get_config
    from ..export import export_onnx
    from ..contract.labels import default_labels, read_labels
    from ..model.weights import BUNDLED, bundled_labels
    from ..contract.fileio import check_output_file

    cfg = get_config(args.model, input_size=args.input_size)  # validates name and size first
    check_output_file(args.output, "--output", inputs=[("--weights", args.weights), ("--labels", args.labels)])
    model = create_model(cfg.name, num_classes=args.num_classes, input_size=args.input_size, checkpoint=args.weights)
    if args.labels:
        labels = read_labels(args.labels)
    else:
        bundled = bundled_labels(args.weights) if args.weights in BUNDLED else None
        labels = default_labels(model.config.num_classes, bundled)
    transform = None
    if args.precision == "fp16":
        from ..precision.fp16 import convert_model_to_fp16

        transform = convert_model_to_fp16
    info = export_onnx(model, args.output, labels=labels, transform=transform,
                       log=lambda msg: print(msg, file=sys.stderr),
                       nms=args.nms, batch=args.batch, dynamic_batch=args.dynamic_batch,
                       score_threshold=args.score_threshold, iou_threshold=args.iou_threshold,
                       max_detections=args.max_detections, pre_nms_top_k=args.pre_nms_top_k, opset=args.opset,
                       weights=args.weights or "random")
    batch = f"dynamic 1..{info.batch}" if info.dynamic_batch else str(info.batch)
    print(f"wrote {args.output}: {info.model} {info.input_size[0]}x{info.input_size[1]}, {info.num_classes} classes, "
          f"batch {batch}, nms {info.nms}, {args.precision}")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
