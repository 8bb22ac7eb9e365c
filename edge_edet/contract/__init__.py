"""The contract floor: what every stage agrees on, torch-free and importing nothing above it.

config (the model table), anchors, labels, names (tensor names, extensions, precisions, export
defaults, calibration methods), metadata (DeployInfo, sidecars), onnx_io (one ONNX reader and
writer), fileio (atomic writes), letterbox, postprocess (the numpy reference), source_uri and
frames (what a source string means, OpenCV readers), machine (the probe), trt_logging, cli
(argparse types, the one error handler), errors.  See docs/architecture.md.
"""
