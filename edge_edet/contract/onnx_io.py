"""One ONNX reader and one writer for every stage: one error text, never a half-written file.

`onnx` is imported lazily: the TensorRT runtime on a Jetson reads engines and sidecars only.
"""
from __future__ import annotations

import os

from .errors import EdgeEdetError
from .fileio import atomic_output, check_output_file


def load_onnx(path: str, weights: bool = True):
    """The ModelProto of `path`; `weights=False` skips external weight data (metadata and graph only)."""
    if os.path.isdir(path):
        raise EdgeEdetError(f"{path} is a folder, not an ONNX file")
    if not os.path.isfile(path):
        raise EdgeEdetError(f"ONNX file {path} does not exist; export one with `edge-edet export`")
    if os.path.getsize(path) == 0:
        raise EdgeEdetError(f"ONNX file {path} is empty (0 bytes); export it again")
    try:
        import onnx
    except ImportError:
        raise EdgeEdetError("reading an ONNX file needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(path, load_external_data=weights)
    except Exception:
        raise EdgeEdetError(f"{path} is not a readable ONNX file (truncated or corrupt?); export it again") from None
    if not len(model.graph.node):
        raise EdgeEdetError(f"{path} is not a readable ONNX file (it has no graph); export it again")
    return model


def default_opset(model) -> int:
    """The opset a model imports for the default ONNX domain ('' or 'ai.onnx'), 0 if none."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def save_onnx_atomic(model, path: str) -> str:
    """Write to a temporary file in the output's folder, then rename over `path`."""
    import onnx

    check_output_file(path)
    with atomic_output(path) as tmp:
        onnx.save(model, tmp)
    return path
