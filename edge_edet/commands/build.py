"""`edge-edet build`: deploy ONNX -> TensorRT engine + sidecar, on the machine that runs it.

build_engines/build_engine.py calls the same `add_arguments` and `run`, so the script and the
console command cannot drift apart.  TensorRT is imported only inside run().
"""
from __future__ import annotations

import argparse

HELP = "build a TensorRT engine (8.5, 10.x or 11.x) from a deploy ONNX, with a sidecar <engine>.json"

DESCRIPTION = """\
Build a TensorRT engine on the machine that will run it (an engine is tied to its GPU and
TensorRT version).  The TensorRT generation is detected and the build follows it:
  11.x  strongly typed only: precision comes from the ONNX (--precision fp16 on an FP32 ONNX
        converts it first; INT8 needs the Q/DQ ONNX from `edge-edet calibrate`);
  10.x  FP16 / Q/DQ graphs build strongly typed; FP32 graphs use builder flags (INT8 from
        --calib-cache);
  8.5   builder flags; INT8 from --calib-cache or a Q/DQ ONNX.
After the build the per-layer precision is read back from the engine and a build that asked for
FP16/INT8 but came out FP32 is refused.  Needs TensorRT (JetPack on a Jetson; `pip install
tensorrt` on a desktop GPU)."""

EPILOG = """\
examples:
  edge-edet build --onnx d0.onnx --engine d0_fp16.trt --precision fp16 --timing-cache orin.cache
  edge-edet build --onnx d0.onnx --engine d0_int8.trt --precision int8 --calib-cache d0.calib   (8.5 / 10.x)
  edge-edet build --onnx d0_int8.onnx --engine d0_int8.trt                                        (any version)
  edge-edet build --onnx d0_dyn.onnx --engine d0_b4.trt --precision fp16 --batch 1:4:4
  edge-edet build --onnx d0_dyn.onnx --engine d0_cams.trt --precision fp16 --cameras 4   (run --source x4)
on a 4 GB board: --workspace 256 and add swap if the build is "Killed"."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..contract.cli import positive_int
    from ..engine.plan import DEFAULT_WORKSPACE_MIB, PRECISION_CHOICES

    parser.add_argument("--onnx", required=True, help="deploy ONNX written by `edge-edet export` (or its FP16 / "
                        "Q/DQ INT8 variant)")
    parser.add_argument("--engine", required=True, help="output engine file (.trt, .engine or .plan); the sidecar "
                        "<engine>.json is written beside it")
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=None,
                        help="engine precision (default: the precision the ONNX carries); 'best' = FP16, plus INT8 "
                        "where a calibration cache or Q/DQ allows")
    parser.add_argument("--calib-cache", metavar="FILE", help="INT8 calibration cache from `edge-edet calibrate "
                        "--cache` (TensorRT 8.5 and 10.x with an FP32 ONNX)")
    parser.add_argument("--workspace", metavar="MiB", type=int, default=DEFAULT_WORKSPACE_MIB,
                        help=f"builder workspace cap in MiB (default {DEFAULT_WORKSPACE_MIB}; use 256 on 4 GB boards)")
    parser.add_argument("--timing-cache", metavar="FILE", help="load (if present) and save the builder timing "
                        "cache: rebuilds on the same board get much faster")
    parser.add_argument("--dla-core", metavar="N", type=int, help="run on DLA core N (Xavier/Orin; TensorRT 8.5, "
                        "10.0-10.7, 11.4.1+); FP16/INT8 only")
    parser.add_argument("--gpu-fallback", action="store_true", help="with --dla-core: run layers the DLA cannot "
                        "(NMS, ...) on the GPU")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch", metavar="MIN:OPT:MAX", help="optimisation profile for a dynamic-batch ONNX "
                       "(default 1:B:B with B the export's --dynamic-batch)")
    batch.add_argument("--cameras", metavar="N", type=positive_int, default=None,
                       help="sources `edge-edet run` will batch through this engine (--source N times): the "
                            "profile becomes 1:N:max(N,B), so TensorRT tunes its kernels for a batch of N")
    parser.add_argument("--version-compatible", action="store_true", help="engine loadable by later TensorRT "
                        "versions (8.6+; no plugins, so export with --nms onnx)")
    parser.add_argument("--hardware-compatible", action="store_true", help="engine for any Ampere-or-newer "
                        "desktop GPU (8.6+; slower; refused on Jetson, where NVIDIA does not support it)")
    parser.add_argument("--verbose", action="store_true", help="print TensorRT's full log and every layer's precision")


def register(subparsers) -> None:
    parser = subparsers.add_parser("build", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def options_from_args(args):
    from ..engine.plan import BuildOptions, parse_batch

    return BuildOptions(onnx=args.onnx, engine=args.engine, precision=args.precision, calib_cache=args.calib_cache,
                        workspace_mib=args.workspace, timing_cache=args.timing_cache, dla_core=args.dla_core,
                        gpu_fallback=args.gpu_fallback, batch=parse_batch(args.batch) if args.batch else None,
                        cameras=args.cameras,
                        version_compatible=args.version_compatible, hardware_compatible=args.hardware_compatible,
                        verbose=args.verbose)


def run(args) -> int:
    from ..engine.builder import build_engine

    result = build_engine(options_from_args(args))
    if args.verbose:
        for row in result.layers:
            print(f"  {row['precision']:>5}  {row['type']:<24} {row['name']}")
    print(f"engine: {result.engine}  precision: {result.precision}  build: {result.build_seconds:.0f} s  "
          f"size: {result.engine_bytes / 2**20:.1f} MiB")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
