"""`edge-edet serve`: a deploy model on Triton Inference Server (PyTriton), for many clients."""
from __future__ import annotations

from ..contract.cli import (add_backend_arguments, add_providers_argument, backend_options, non_negative_int,
                             positive_int, thread_count)

DESCRIPTION = ("Serve a deploy .onnx (OpenVINO or ONNX Runtime: --backend) or TensorRT engine on NVIDIA Triton "
               "Inference Server through PyTriton: dynamic batching of frames from many clients, gRPC, HTTP and "
               "Prometheus metrics.  The model's metadata (input size, labels, thresholds, precision) is published in its config, so "
               "clients run `edge-edet run --engine triton://HOST:GRPC_PORT/NAME`.  Loopback only unless --host "
               "says otherwise; Ctrl-C or SIGTERM stops it cleanly.")


def _port(text: str) -> int:
    import argparse

    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {value}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve a model on Triton Inference Server (many cameras, one GPU)",
                                   description=DESCRIPTION)
    parser.add_argument("--engine", "--model", dest="model", required=True, metavar="PATH",
                        help="deploy .onnx or TensorRT engine (.trt/.engine/.plan with its .json sidecar)")
    parser.add_argument("--name", default=None, help="model name on the server (default: the file's stem)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    parser.add_argument("--http-port", type=_port, default=8000, help="HTTP/REST port (default 8000)")
    parser.add_argument("--grpc-port", type=_port, default=8001,
                        help="gRPC port, the one triton:// clients use (default 8001)")
    parser.add_argument("--metrics-port", type=_port, default=8002, help="Prometheus metrics port (default 8002)")
    parser.add_argument("--max-batch", type=positive_int, default=None,
                        help="largest batch the server forms (default: the export's --dynamic-batch maximum)")
    parser.add_argument("--max-queue-delay-us", type=non_negative_int, default=2000,
                        help="how long a frame may wait for others to fill a batch, microseconds (default 2000)")
    parser.add_argument("--instances", type=thread_count, default=1,
                        help="model instances run in parallel, each with its own session, at most one per core "
                             "(default 1)")
    add_backend_arguments(parser)
    add_providers_argument(parser)
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="ONNX Runtime / OpenVINO CPU threads per instance, at most one per core")
    parser.add_argument("--verbose", action="store_true", help="show Triton's own log on the console")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..serve.server import ServeOptions, serve

    options = ServeOptions(model_path=args.model, name=args.name, host=args.host, http_port=args.http_port,
                           grpc_port=args.grpc_port, metrics_port=args.metrics_port, max_batch=args.max_batch,
                           max_queue_delay_us=args.max_queue_delay_us, instances=args.instances,
                           providers=args.providers, backend=args.backend, verbose=args.verbose,
                           backend_options=backend_options(args))
    return serve(options, log=lambda message: print(message, flush=True))


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
