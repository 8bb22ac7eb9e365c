"""`edge-edet triton-repo`: a standard Triton model repository for the full server (NGC container, Kubernetes)."""
from __future__ import annotations

from ..contract.cli import non_negative_int, openvino_device, positive_int
from ..contract.names import TRITON_PLATFORMS

DESCRIPTION = ("Write REPO/NAME/1/model.onnx (onnxruntime_onnx, or Triton's OpenVINO backend with --platform openvino) "
               "or model.plan (tensorrt_plan), REPO/NAME/config.pbtxt "
               "(batch from the export, dynamic batching, the images input and four outputs, instance group, the "
               "model's metadata as a parameter) and REPO/NAME/labels.txt, for `tritonserver --model-repository "
               "REPO`.  Clients then run `edge-edet run --engine triton://HOST:8001/NAME`.")


def register(subparsers) -> None:
    parser = subparsers.add_parser("triton-repo", help="write a Triton model repository for tritonserver",
                                   description=DESCRIPTION)
    parser.add_argument("--engine", "--model", dest="model", required=True, metavar="PATH",
                        help="deploy .onnx or TensorRT engine (.plan/.trt/.engine with its .json sidecar)")
    parser.add_argument("--repo", required=True, metavar="DIR", help="the model repository folder")
    parser.add_argument("--name", default=None, help="model name (default: the file's stem)")
    parser.add_argument("--force", action="store_true",
                        help="write into an existing non-empty repository, replacing REPO/NAME")
    parser.add_argument("--max-batch", type=positive_int, default=None,
                        help="largest batch Triton forms (default: the export's --dynamic-batch maximum)")
    parser.add_argument("--max-queue-delay-us", type=non_negative_int, default=2000,
                        help="dynamic batching queue delay, microseconds (default 2000)")
    parser.add_argument("--instances", type=positive_int, default=1,
                        help="model instances (default 1; with openvino, several use its throughput hint)")
    parser.add_argument("--platform", choices=TRITON_PLATFORMS, default=None,
                        help="what Triton runs the model with: onnxruntime (default for .onnx), openvino (Triton's "
                             "OpenVINO backend, the same .onnx) or tensorrt (engines)")
    parser.add_argument("--device", type=openvino_device, default="CPU",
                        help="with --platform openvino: its TARGET_DEVICE, CPU (default), GPU, NPU or AUTO")
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..serve.repository import read_artifact, write_repository
    from ..serve.tensors import serving_warnings, tritonserver_flags

    folder = write_repository(args.model, args.repo, name=args.name, force=args.force, max_batch=args.max_batch,
                              instances=args.instances, max_queue_delay_us=args.max_queue_delay_us,
                              platform=args.platform, device=args.device)
    info = read_artifact(args.model)
    flags = "".join(f" {flag}" for flag in tritonserver_flags(info))
    why = " (the flag lets Triton load a version-compatible plan)" if flags else ""
    print(f"wrote {folder} (config.pbtxt, labels.txt, 1/); serve it with "
          f"`tritonserver --model-repository {args.repo}{flags}`{why}")
    for warning in serving_warnings(info):
        print(warning, file=sys.stderr)
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
