"""`edge-edet export`: a deploy ONNX with pre-processing, decoding and NMS inside the graph."""
from __future__ import annotations

import sys


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
    p.add_argument("--nms", choices=("onnx", "efficientnms", "none"), default="onnx",
                   help="onnx: standard NonMaxSuppression (TensorRT 8.5+, ONNX Runtime); efficientnms: the "
                        "EfficientNMS_TRT plugin (TensorRT 8.x-10.x only); none: decoded boxes and scores")
    p.add_argument("--score-threshold", type=float, default=0.4)
    p.add_argument("--iou-threshold", type=float, default=0.5)
    p.add_argument("--max-detections", type=int, default=100)
    p.add_argument("--pre-nms-top-k", type=int, default=5000)
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                   help="fp16: mixed-precision graph (fp16 compute, fp32 I/O) for strongly typed TensorRT")
    p.add_argument("--output", required=True, help="output .onnx path")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import create_model
    from ..config import get_config
    from ..export import export_onnx
    from ..labels import default_labels, read_labels
    from ..model.weights import BUNDLED, bundled_labels

    from ..export.exporter import check_output_path

    cfg = get_config(args.model, input_size=args.input_size)  # validates name and size first
    check_output_path(args.output)
    model = create_model(cfg.name, num_classes=args.num_classes, input_size=args.input_size, checkpoint=args.weights)
    if args.labels:
        labels = read_labels(args.labels)
    else:
        bundled = bundled_labels(args.weights) if args.weights in BUNDLED else None
        labels = default_labels(model.config.num_classes, bundled)
    info = export_onnx(model, args.output, labels=labels, precision=args.precision,
                       log=lambda msg: print(msg, file=sys.stderr),
                       nms=args.nms, batch=args.batch, dynamic_batch=args.dynamic_batch,
                       score_threshold=args.score_threshold, iou_threshold=args.iou_threshold,
                       max_detections=args.max_detections, pre_nms_top_k=args.pre_nms_top_k, opset=args.opset,
                       weights=args.weights or "random")
    batch = f"dynamic 1..{info.batch}" if info.dynamic_batch else str(info.batch)
    print(f"wrote {args.output}: {info.model} {info.input_size[0]}x{info.input_size[1]}, {info.num_classes} classes, "
          f"batch {batch}, nms {info.nms}, {args.precision}")
    return 0
