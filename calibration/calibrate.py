#!/usr/bin/env python3
"""Thin script over `edge-edet calibrate` (same arguments, same code):

    python calibration/calibrate.py --model d0.onnx --images calib_dir/ --output d0_int8.onnx --cache d0.calib
"""
import sys

from edge_edet.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate"] + sys.argv[1:]))
