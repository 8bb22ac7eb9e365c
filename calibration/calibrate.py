#!/usr/bin/env python3
"""Thin script over `edge-edet calibrate` (same arguments, same code):

    python calibration/calibrate.py --model d0.onnx --images calib_dir/ --output d0_int8.onnx --cache d0.calib
"""
import os
import sys

try:
    from edge_edet.commands.calibrate import main
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from edge_edet.commands.calibrate import main

if __name__ == "__main__":
    sys.exit(main(prog="calibrate.py"))
