"""`edge-edet calibrate`: an INT8 deploy ONNX with explicit Q/DQ (all TensorRT versions), plus the
legacy TensorRT calibration cache for implicit-INT8 builds (TensorRT 8.5 / 10.x)."""
from __future__ import annotations

import sys

from ..contract.cli import positive_int as _positive
from ..contract.names import CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD, DEFAULT_TRT_VERSION


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="INT8 (explicit Q/DQ) deploy ONNX from calibration images",
        description="Calibrate an fp32 deploy ONNX on images prepared exactly as the runtime prepares them "
                    "(same letterbox, same uint8 input) and write an INT8 ONNX with Q/DQ on every convolution "
                    "input (symmetric, per-channel weights), which TensorRT 8.5 to 11 builds as is. "
                    "Decoding, sigmoid and NMS stay in float.")
    parser.add_argument("--model", required=True, help="fp32 deploy ONNX from `edge-edet export`")
    parser.add_argument("--images", required=True, help="image folder, glob ('imgs/*.jpg') or video file")
    parser.add_argument("--num-images", type=_positive, default=500, help="images to calibrate on (default 500)")
    parser.add_argument("--method", choices=CALIBRATION_METHODS, default=DEFAULT_CALIBRATION_METHOD,
                        help="range statistic: entropy = TensorRT's EntropyCalibration2 KL search, percentile = "
                             "99.999th percentile (default), minmax = extremes; see docs/precision.md")
    parser.add_argument("--fp16", action="store_true",
                        help="INT8 + FP16: the float compute between the INT8 layers in float16 (sensitive ops kept "
                             "fp32, as `convert --precision fp16` does), for strongly typed TensorRT 10.x / 11.x, which "
                             "otherwise runs it in FP32 (ONNX opset 19: not for TensorRT 8.x, whose flags add FP16)")
    parser.add_argument("--mixed", action="store_true",
                        help="keep the most INT8-sensitive convolutions (measured) in fp16")
    parser.add_argument("--mixed-layers", type=_positive, default=None,
                        help="how many layers --mixed keeps in fp16 (default 8)")
    parser.add_argument("--output", required=True, help="INT8 ONNX to write")
    parser.add_argument("--cache", default=None,
                        help="also write the ranges as a TensorRT calibration cache (implicit INT8, TensorRT 8.5/10.x)")
    parser.add_argument("--trt-version", default=DEFAULT_TRT_VERSION,
                        help="TensorRT version written in the cache header; TensorRT ignores a cache from another "
                             "version (default 8.5.2, JetPack 5; 10.3.0 for JetPack 6)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..precision.workflow import calibrate_onnx

    summary = calibrate_onnx(args.model, args.images, args.output, num_images=args.num_images, method=args.method,
                             mixed=args.mixed, mixed_layers=args.mixed_layers, cache=args.cache,
                             trt_version=args.trt_version, progress=not args.no_progress,
                             log=lambda message: print(message, file=sys.stderr), fp16=args.fp16)
    fp16 = f", {len(summary['fp16_layers'])} convolutions in fp16" if summary["fp16_layers"] else ""
    if summary["fp16_compute"]:
        fp16 += f", float compute in fp16 ({summary['fp16_casts_added']} Cast nodes added)"
    print(f"wrote {summary['output']}: int8 ({summary['method']}, {summary['images']} images, "
          f"{summary['quantized_convs']} convolutions quantised{fp16})")
    if summary.get("cache"):
        # the method made the scales; the header names the TensorRT calibrator class that reads them as written
        print(f"wrote {summary['cache']}: TensorRT calibration cache, {summary['cache_tensors']} tensors; scales "
              f"made by {summary['method']} calibration, read by TensorRT's {summary['cache_calibrator']} "
              f"(header {summary['cache_algorithm']})")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
