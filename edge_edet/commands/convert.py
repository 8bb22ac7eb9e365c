"""`edge-edet convert --precision fp16 IN.onnx OUT.onnx`: a mixed-precision FP16 deploy graph."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="convert an fp32 deploy ONNX to an FP16 one (fp16 compute, fp32 I/O)",
        description="Write the precision into the ONNX graph, as strongly typed TensorRT (11.x) requires: "
                    "the network in fp16, pre-processing, box decoding, sigmoid and NMS in fp32, inputs and "
                    "outputs unchanged. For INT8 use `edge-edet calibrate`.")
    parser.add_argument("--precision", choices=("fp16",), default="fp16", help="target precision (fp16)")
    parser.add_argument("input", help="fp32 deploy ONNX from `edge-edet export`")
    parser.add_argument("output", help="ONNX to write")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..precision.workflow import convert_onnx_fp16

    convert_onnx_fp16(args.input, args.output)
    print(f"wrote {args.output}: {args.precision} (fp32 I/O, decode and NMS)")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
