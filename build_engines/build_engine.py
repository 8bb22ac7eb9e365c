#!/usr/bin/env python3
"""Build a TensorRT engine on this machine: the same code as `edge-edet build` (edge_edet.engine).

    python build_engines/build_engine.py --onnx d1.onnx --engine d1.trt --precision fp16

Runs from a checkout without installing (it puts the checkout on sys.path).  Never imports torch.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from edge_edet.commands.build import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="build_engine.py"))
