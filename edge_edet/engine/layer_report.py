"""Per-layer precision from IEngineInspector JSON: the proof of what precision was built.

The builder sets ProfilingVerbosity.DETAILED so the inspector lists each layer with its input and
output tensors.  Their type is spelled differently per TensorRT generation:
  * 8.5 / 10.x: "Format/Datatype": "Row major linear FP16 format", "Channel major FP16 format where
    channel % 8 == 0", "Four wide channel vectorized row major Int8 format", ... ;
  * 11.x: the field was split, so a tensor has "DataType": "Half" / "Float" / "Int8" (and "Format");
    the engine-level "Bindings" list became "I/O Tensors".
A layer counts as INT8 if it reads an INT8 tensor, else FP16 if it touches an FP16/BF16 tensor,
else FP32 if it touches a float tensor, else "other" (shape and index arithmetic, NMS bookkeeping).
"""
from __future__ import annotations

import json
import re
from typing import Dict, Iterable, List, Optional

CATEGORIES = ("int8", "fp16", "fp32", "other")

_TYPE_WORDS = (  # (regex on the type text, category); first match wins
    # word boundaries matter: "Row major linear UInt8 format" (the uint8 `images` input) is not INT8
    (re.compile(r"\bint8\b|\bi8\b", re.I), "int8"),
    (re.compile(r"\bfp8\b|\bint4\b|\bfp4\b", re.I), "int8"),  # other quantized types count as low precision
    (re.compile(r"\bhalf\b|\bfp16\b|\bfloat16\b|\bbf16\b|\bbfloat16\b", re.I), "fp16"),
    (re.compile(r"\bfloat\b|\bfp32\b|\bfloat32\b", re.I), "fp32"),
)


def tensor_category(tensor) -> Optional[str]:
    """int8 / fp16 / fp32 for one inspector tensor entry (dict or text), None for int32/bool/unknown."""
    if isinstance(tensor, dict):
        text = " ".join(str(tensor.get(key, "")) for key in ("DataType", "Format/Datatype", "Format"))
    else:
        text = str(tensor)
    for pattern, category in _TYPE_WORDS:
        if pattern.search(text):
            return category
    return None


def layer_category(layer) -> str:
    if not isinstance(layer, dict):
        return "other"  # LAYER_NAMES_ONLY verbosity: a bare name, no types
    inputs = [tensor_category(t) for t in layer.get("Inputs", []) or []]
    outputs = [tensor_category(t) for t in layer.get("Outputs", []) or []]
    if "int8" in inputs:
        return "int8"
    seen = inputs + outputs
    if "fp16" in seen:
        return "fp16"
    if "fp32" in seen:
        return "fp32"
    if "int8" in outputs:  # quantize layer: fp input, int8 output (already caught when fp input is known)
        return "int8"
    return "other"


def parse_engine_information(text: str) -> List[dict]:
    """The "Layers" list of get_engine_information(LayerInformationFormat.JSON)."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return []
    layers = data.get("Layers", []) if isinstance(data, dict) else data
    return [layer if isinstance(layer, dict) else {"Name": str(layer)} for layer in layers or []]


def layer_precisions(layers: Iterable) -> List[dict]:
    """[{"name", "type", "precision"}] for the sidecar and --verbose output."""
    rows = []
    for layer in layers:
        rows.append({"name": str(layer.get("Name", "?")) if isinstance(layer, dict) else str(layer),
                     "type": str(layer.get("LayerType", "")) if isinstance(layer, dict) else "",
                     "precision": layer_category(layer)})
    return rows


def count_precisions(rows: Iterable[dict]) -> Dict[str, int]:
    counts = {name: 0 for name in CATEGORIES}
    for row in rows:
        counts[row["precision"]] = counts.get(row["precision"], 0) + 1
    return counts


def summary_line(counts: Dict[str, int]) -> str:
    total = sum(counts.values())
    return (f"{total} layers: {counts.get('int8', 0)} INT8, {counts.get('fp16', 0)} FP16, "
            f"{counts.get('fp32', 0)} FP32, {counts.get('other', 0)} other (shape/index/NMS)")
