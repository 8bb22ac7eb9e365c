"""Precision lives in the ONNX graph (DESIGN.md): FP16 conversion, INT8 Q/DQ with calibration,
and the legacy TensorRT calibration cache.

Import the submodules (`fp16`, `quantize`, `cache`); this package imports nothing heavy itself, so
a Jetson TensorRT builder can read a calibration cache (`edge_edet.precision.cache`) without onnx.
"""
