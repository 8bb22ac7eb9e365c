"""TensorRT calibration cache (legacy implicit INT8, TensorRT 8.5 on JetPack 5, 10.x on JetPack 6).

The format TensorRT's calibrators read and write (plain ASCII):

    TRT-<version>-EntropyCalibration2
    <tensor name>: <scale>

one line per tensor, the scale being the float32 bit pattern as 8 big-endian hex digits, and
scale = amax / 127 (symmetric int8).  The header's algorithm is the calibrator class TensorRT must be
given to read the cache (it skips a cache whose header names another); `METHOD_ALGORITHMS` says which
one each `edge-edet calibrate --method` writes, `CALIBRATOR_CLASSES` which class reads it.  <version> is TensorRT's integer version, which TensorRT
compares with its own: major*1000 + minor*100 + patch below 10 (8.5.2 -> 8502), and
major*10000 + minor*100 + patch from 10 on (10.3.0 -> 100300).  Tensor names are the ONNX
tensor names, which the ONNX parser keeps.  A cache written for another TensorRT version is
refused by the builder, so `retarget_calibration_cache` rewrites only the header.
Standard library only: the TensorRT builder on a Jetson imports this without onnx or numpy.
"""
from __future__ import annotations

import os
import re
import struct
from typing import Dict, Tuple

from ..contract.errors import EdgeEdetError
from ..contract.names import DEFAULT_TRT_VERSION
from ..contract.fileio import check_output_file, write_text_atomic

ALGORITHM = "EntropyCalibration2"
# header algorithm -> the TensorRT (8.5 .. 10.x) calibrator class that reads such a cache
CALIBRATOR_CLASSES = {"EntropyCalibration2": "IInt8EntropyCalibrator2", "EntropyCalibration": "IInt8EntropyCalibrator",
                      "MinMaxCalibration": "IInt8MinMaxCalibrator", "LegacyCalibration": "IInt8LegacyCalibrator"}
ALGORITHMS = tuple(CALIBRATOR_CLASSES)
# our calibration method -> header.  entropy's scales are EntropyCalibration2's search.  TensorRT has no
# percentile calibrator, and IInt8MinMaxCalibrator's header would make trtexec --calib, Polygraphy and our
# builder (all IInt8EntropyCalibrator2) skip the cache and calibrate on random or no data; TensorRT uses a
# cache's scales as written, so every method writes EntropyCalibration2 (docs/precision.md); the ONNX
# metadata keeps the method.
METHOD_ALGORITHMS = {"entropy": "EntropyCalibration2", "percentile": "EntropyCalibration2",
                     "minmax": "EntropyCalibration2"}


def algorithm_for_method(method: str) -> str:
    """The cache header's algorithm for scales made by `edge-edet calibrate --method METHOD`."""
    if method not in METHOD_ALGORITHMS:
        raise EdgeEdetError(f"calibration method must be one of {', '.join(METHOD_ALGORITHMS)}, not {method}")
    return METHOD_ALGORITHMS[method]


_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-fA-F]{8})$")


def trt_version_number(version) -> int:
    """'8.5.2' -> 8502, '10.3.0' -> 100300, '8.5.2.2' -> 8502; an int is returned unchanged."""
    if isinstance(version, int):
        return version
    parts = str(version).strip().split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        patch = int(parts[2]) if len(parts) > 2 else 0
    except ValueError:
        raise EdgeEdetError(f"TensorRT version '{version}' is not like 8.5.2 or 10.3.0") from None
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def scale_to_hex(scale: float) -> str:
    """float32 scale -> 8 hex digits of its big-endian IEEE-754 bits."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def format_calibration_cache(scales: Dict[str, float], trt_version=DEFAULT_TRT_VERSION,
                             algorithm: str = ALGORITHM) -> str:
    if algorithm not in ALGORITHMS:
        raise EdgeEdetError(f"calibration algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm}")
    lines = [f"TRT-{trt_version_number(trt_version)}-{algorithm}"]
    for name, scale in scales.items():
        if "\n" in name or not name:
            raise EdgeEdetError(f"tensor name {name!r} cannot be written to a calibration cache")
        if not scale > 0 or scale != scale or scale == float("inf"):
            raise EdgeEdetError(f"tensor {name} has scale {scale}; a calibration scale must be positive and finite")
        lines.append(f"{name}: {scale_to_hex(scale)}")
    return "\n".join(lines) + "\n"


def write_calibration_cache(path: str, scales: Dict[str, float], trt_version=DEFAULT_TRT_VERSION,
                            algorithm: str = ALGORITHM) -> str:
    """Write {tensor name: scale (amax/127)} as a TensorRT calibration cache, atomically."""
    text = format_calibration_cache(scales, trt_version, algorithm)
    check_output_file(path)
    write_text_atomic(path, text)
    return path


def parse_calibration_cache(text: str, source: str = "calibration cache") -> Tuple[int, str, Dict[str, float]]:
    """(TensorRT version number, algorithm, {tensor: scale}) from a cache's text."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    header = _HEADER.match(lines[0].strip()) if lines else None
    if not header:
        raise EdgeEdetError(f"{source} does not start with a TensorRT header like TRT-8502-EntropyCalibration2")
    scales: Dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise EdgeEdetError(f"{source} line {number} is not 'tensor: 8 hex digits'")
        scales[match.group(1)] = hex_to_scale(match.group(2))
    return int(header.group(1)), header.group(2), scales


def read_calibration_cache(path: str) -> Dict[str, float]:
    """{tensor name: scale} from a TensorRT calibration cache file."""
    return read_calibration_cache_full(path)[2]


def read_calibration_cache_full(path: str) -> Tuple[int, str, Dict[str, float]]:
    if not os.path.isfile(path):
        raise EdgeEdetError(f"calibration cache {path} does not exist")
    try:
        with open(path, "r", encoding="ascii") as stream:
            text = stream.read()
    except UnicodeDecodeError:
        raise EdgeEdetError(f"{path} is not a TensorRT calibration cache (not ASCII text)") from None
    return parse_calibration_cache(text, path)


def retarget_calibration_cache(path: str, output: str, trt_version) -> str:
    """Copy a cache with its header set to `trt_version` (the scales are version independent)."""
    _, algorithm, scales = read_calibration_cache_full(path)
    return write_calibration_cache(output, scales, trt_version, algorithm)
