"""File-to-file precision steps behind `edge-edet calibrate`, `edge-edet convert` and calibration/calibrate.py.

Every check that can fail on user input runs before the slow work, and outputs are written only
at the end, each atomically, so a failure never leaves a half-written file.
"""
from __future__ import annotations

from typing import List, Optional

from ..contract.errors import EdgeEdetError
from .cache import (CALIBRATOR_CLASSES, DEFAULT_TRT_VERSION, algorithm_for_method, trt_version_number,
                    write_calibration_cache)
from .regions import check_deploy_graph
from ..contract.fileio import check_distinct_outputs, check_output_file
from ..contract.names import ONNX_EXTENSION
from ..contract.onnx_io import load_onnx, save_onnx_atomic


def calibrate_onnx(model_path: str, images: str, output: str, num_images: int = 500, method: str = "percentile",
                   mixed: bool = False, mixed_layers: Optional[int] = None, cache: Optional[str] = None,
                   trt_version: str = DEFAULT_TRT_VERSION, progress: bool = True, log=print, fp16: bool = False) -> dict:
    """fp32 deploy ONNX + calibration images -> INT8 Q/DQ ONNX (and optionally a TensorRT cache)."""
    from .calibration_data import load_calibration_images
    from .quantize import METHODS, quantize_int8
    from .sensitivity import DEFAULT_MIXED_LAYERS, most_sensitive

    if method not in METHODS:
        raise EdgeEdetError(f"--method must be one of {', '.join(METHODS)}, not {method}")
    inputs = [("--model", model_path), ("--images", images)]
    check_output_file(output, "--output", inputs=inputs, extensions=(ONNX_EXTENSION,))  # not a folder, not an input
    if cache:
        check_output_file(cache, "--cache", inputs=inputs)
    check_distinct_outputs([("--output", output), ("--cache", cache)])
    if cache:
        trt_version_number(trt_version)  # a malformed version fails before calibrating
    model = load_onnx(model_path)
    info = check_deploy_graph(model, model_path)
    frames = load_calibration_images(images, info, num_images, progress=progress)
    if not info.dynamic_batch and info.batch > 1:
        usable = len(frames) - len(frames) % info.batch
        if usable == 0:
            raise EdgeEdetError(f"{model_path} has a static batch of {info.batch} but only {len(frames)} images "
                                "could be read; export with --dynamic-batch or give more images")
        frames = frames[:usable]
    log(f"calibrating {info.model} on {len(frames)} images from {images} ({method})")
    layers: Optional[List[str]] = None
    from .quantize import calibrate

    calibration = calibrate(model, frames, method, progress=progress, all_tensors=bool(cache))
    if mixed:
        layers = most_sensitive(model, calibration, frames, count=mixed_layers or DEFAULT_MIXED_LAYERS)
        log(f"kept in fp16 (most INT8-sensitive): {', '.join(layers)}")
    quantized, calibration = quantize_int8(model, frames, method, mixed=mixed, mixed_layers=layers,
                                           calibration=calibration, progress=progress, source=model_path, fp16=fp16)
    scales = calibration.trt_scales()
    save_onnx_atomic(quantized, output)
    summary = {"output": output, "images": len(frames), "method": method, "fp16_layers": layers or [],
               "quantized_convs": sum(1 for n in quantized.graph.node if n.op_type == "Conv") - len(layers or []),
               "fp16_compute": fp16, "fp16_casts_added": (_extra(quantized).get("int8") or {}).get("fp16_casts_added", 0)}
    if cache:
        summary["cache_algorithm"] = algorithm_for_method(method)
        summary["cache_calibrator"] = CALIBRATOR_CLASSES[summary["cache_algorithm"]]
        write_calibration_cache(cache, scales, trt_version, summary["cache_algorithm"])
        summary["cache"] = cache
        summary["cache_tensors"] = len(scales)
    return summary


def _extra(model) -> dict:
    from ..contract.metadata import deploy_info_from_onnx_model

    return dict(deploy_info_from_onnx_model(model).extra or {})


def convert_onnx_fp16(model_path: str, output: str) -> str:
    from .fp16 import convert_to_fp16

    check_output_file(output, "output", inputs=[("input", model_path)], extensions=(ONNX_EXTENSION,))
    return convert_to_fp16(model_path, output)
