"""Legacy INT8 calibrator (TensorRT 8.5 and 10.x) that serves a calibration cache and nothing else.

Calibration itself runs on a workstation (`edge-edet calibrate ... --cache X.calib`, the exact
runtime pre-processing, ONNX Runtime); the Jetson build only reads the resulting cache.  So this
calibrator has no images: `get_batch` returns None, and TensorRT uses the scales from
`read_calibration_cache`.  If the cache does not cover the network, TensorRT would need batches
and the build fails; the builder turns that into "re-run calibrate".

TensorRT 11 removed `IBuilderConfig.int8_calibrator`: the plan never asks for this there.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional

from ..contract.errors import EdgeEdetError
from ..precision.cache import ALGORITHM

HEADER = re.compile(r"^TRT-(\d+)-(\w+)\s*$")


def read_cache_bytes(path: str) -> bytes:
    """The cache file's bytes, validated: the TensorRT header line and at least one scale."""
    if not os.path.isfile(path):
        raise EdgeEdetError(f"calibration cache {path} does not exist; write it with "
                            f"`edge-edet calibrate --model X.onnx --images DIR --output X_int8.onnx --cache {path}`")
    with open(path, "rb") as handle:
        data = handle.read()
    describe_cache(data, path)
    return data


def describe_cache(data: bytes, path: str = "calibration cache") -> Dict[str, object]:
    """{'trt_version': '8502' or '', 'algorithm': 'EntropyCalibration2', 'tensors': N}; raises if unreadable."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise EdgeEdetError(f"{path} is not a TensorRT calibration cache (not text)") from None
    lines = [line for line in text.splitlines() if line.strip()]
    match = HEADER.match(lines[0]) if lines else None
    if not match:
        raise EdgeEdetError(f"{path} is not a TensorRT calibration cache (first line should be like "
                            f"'TRT-8502-EntropyCalibration2'); write it with `edge-edet calibrate --cache`")
    scales = [line for line in lines[1:] if ":" in line]
    if not scales:
        raise EdgeEdetError(f"{path} has a header but no tensor scales; re-run `edge-edet calibrate --cache`")
    return {"trt_version": match.group(1), "algorithm": match.group(2), "tensors": len(scales)}


def validate_with_precision_reader(path: str) -> Optional[dict]:
    """Cross-check with the precision module's reader when it is installed (it owns the format)."""
    try:
        from ..precision.cache import read_calibration_cache
    except ImportError:
        return None
    try:
        return read_calibration_cache(path)
    except EdgeEdetError:
        raise
    except Exception as exc:  # a reader bug must not hide behind a traceback in the middle of a build
        raise EdgeEdetError(f"calibration cache {path} could not be read ({exc})") from None


def make_cache_calibrator(trt, cache: bytes, batch_size: int = 1):
    """An IInt8EntropyCalibrator2 whose only data is `cache` (TensorRT 8.5 and 10.x)."""

    class CacheOnlyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.asked_for_batches = False

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names):  # no images here: the cache must cover every tensor
            self.asked_for_batches = True
            return None

        def read_calibration_cache(self):
            return cache

        def write_calibration_cache(self, data):  # never overwrite the user's cache
            return None

    return CacheOnlyCalibrator()


SERVED_ALGORITHM = ALGORITHM  # the header IInt8EntropyCalibrator2 accepts (precision.cache defines it)


def cache_for_version(data: bytes, trt_version: str, path: str = "calibration cache") -> bytes:
    """The cache with its header set to what the builder's calibrator accepts.

    TensorRT ignores a cache whose header names another version or another calibrator's algorithm
    (a MinMaxCalibration cache read by IInt8EntropyCalibrator2 is skipped, and the build then asks
    for images it does not have).  The scales are what TensorRT uses from a cache, whatever
    algorithm found them, so the header always says this TensorRT and EntropyCalibration2."""
    from ..precision.cache import format_calibration_cache, parse_calibration_cache

    _, _, scales = parse_calibration_cache(data.decode("ascii", errors="replace"), path)
    return format_calibration_cache(scales, trt_version, SERVED_ALGORITHM).encode("ascii")
