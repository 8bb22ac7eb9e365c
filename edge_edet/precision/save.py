"""Reading and writing ONNX files for the precision tools: one clear error, never a half-written file."""
from __future__ import annotations

import os

import onnx

from ..errors import EdgeEdetError
from ..fileio import atomic_output, check_output_file


def load_onnx(path: str) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise EdgeEdetError(f"ONNX file {path} does not exist")
    try:
        return onnx.load(path)
    except Exception:
        raise EdgeEdetError(f"{path} is not a readable ONNX file") from None


def check_output_path(path: str) -> None:
    check_output_file(path)


def save_onnx_atomic(model: onnx.ModelProto, path: str) -> str:
    """Write to a temporary file in the output's folder, then rename over `path`."""
    check_output_file(path)
    with atomic_output(path) as tmp:
        onnx.save(model, tmp)
    return path
