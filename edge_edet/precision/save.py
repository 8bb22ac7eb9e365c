"""Reading and writing ONNX files for the precision tools: one clear error, never a half-written file."""
from __future__ import annotations

import os
import tempfile

import onnx

from ..errors import EdgeEdetError


def load_onnx(path: str) -> onnx.ModelProto:
    if not os.path.isfile(path):
        raise EdgeEdetError(f"ONNX file {path} does not exist")
    try:
        return onnx.load(path)
    except Exception:
        raise EdgeEdetError(f"{path} is not a readable ONNX file") from None


def check_output_path(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise EdgeEdetError(f"output folder {folder} does not exist")


def save_onnx_atomic(model: onnx.ModelProto, path: str) -> str:
    """Write to a temporary file in the output's folder, then rename over `path`."""
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=folder)
    os.close(handle)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
