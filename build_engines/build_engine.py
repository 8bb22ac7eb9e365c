#!/usr/bin/env python3
"""Build a TensorRT engine on this machine: the same code as `edge-edet build` (edge_edet.engine).

    python build_engines/build_engine.py --onnx d1.onnx --engine d1.trt --precision fp16

Runs from a checkout without installing (it puts the checkout on sys.path).  Never imports torch.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edge_edet.commands import build as build_command  # noqa: E402
from edge_edet.errors import EdgeEdetError  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="build_engine.py", description=build_command.DESCRIPTION,
                                     epilog=build_command.EPILOG.replace("edge-edet build", "build_engine.py"),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    build_command.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return build_command.run(args)
    except EdgeEdetError as exc:
        print(f"build_engine.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("build_engine.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
