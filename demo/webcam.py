#!/usr/bin/env python3
"""Live detection demo: `python demo/webcam.py --engine d1.trt [--source 0] [--headless --serve 8080 ...]`.

A thin script over edge_edet.commands.run, the same code as `edge-edet run`; see
`python demo/webcam.py --help` and docs/streaming.md.  Without --engine it looks for a person
detector (person.trt / person.onnx) here and in the current folder.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    from edge_edet.commands.run import main
except ImportError:  # running from a clone without `pip install -e .`
    sys.path.insert(0, os.path.dirname(HERE))
    from edge_edet.commands.run import main

if __name__ == "__main__":
    sys.exit(main(prog="webcam.py", search_dirs=[os.getcwd(), HERE]))
