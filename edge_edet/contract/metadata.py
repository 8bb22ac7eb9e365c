"""Metadata that travels with every artifact (DESIGN.md: "metadata travels with the artifact").

The exporter writes a `DeployInfo` as JSON into the ONNX `metadata_props` under the key
`edge_edet`; the engine builder copies it into `<engine>.json` and adds its own fields; the
runtime reads it back, so a user never re-types an input size, a class list or a threshold.
Standard library only: the runtime imports this on a Jetson with no torch.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import List, Optional, Tuple

from .errors import EdgeEdetError
from .names import (DEFAULT_IOU_THRESHOLD, DEFAULT_MAX_DETECTIONS, DEFAULT_PRE_NMS_TOP_K, DEFAULT_SCORE_THRESHOLD,
                    NMS_KINDS)

METADATA_KEY = "edge_edet"
RANDOM_WEIGHTS = "random"  # DeployInfo.weights of a model exported without --weights
FORMAT_VERSION = 1


class MetadataError(EdgeEdetError, ValueError):
    """The artifact is not one of ours, or its metadata is unreadable."""


@dataclass
class DeployInfo:
    model: str  # table name, e.g. 'd0'
    input_size: Tuple[int, int]  # (height, width) of the `images` input
    labels: List[str]  # label names; detection_classes index into this list
    mean: Tuple[float, float, float]  # RGB on 0..255, as the graph subtracts it
    std: Tuple[float, float, float]  # RGB on 0..255
    score_threshold: float = DEFAULT_SCORE_THRESHOLD  # the graph's own floor (NMS drops boxes under it)
    # what the runtime shows by default (picked from validation data for the bundled model);
    # None = the graph's floor.  Eval ignores it: AP needs the low-score boxes.
    default_threshold: Optional[float] = None
    iou_threshold: float = DEFAULT_IOU_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS
    pre_nms_top_k: int = DEFAULT_PRE_NMS_TOP_K
    nms: str = "onnx"  # one of NMS_KINDS
    batch: int = 1  # static batch size, or the maximum when dynamic_batch
    dynamic_batch: bool = False
    precision: str = "fp32"  # precision of the graph itself (fp16/int8 graphs carry it)
    weights: str = ""  # where the weights came from (path, 'coco', 'person', 'random')
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)  # later stages add (engine: TensorRT version, GPU...)

    def __post_init__(self):
        self.input_size = tuple(int(v) for v in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if isinstance(self.labels, (str, bytes)) or not self.labels:
            raise MetadataError("its label list is empty, so detections would have no class names")
        self.labels = [str(v) for v in self.labels]
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise MetadataError(f"its input size {list(self.input_size)} is not a positive height and width")
        if len(self.mean) != 3 or len(self.std) != 3 or not all(math.isfinite(v) and v > 0 for v in self.std):
            raise MetadataError("its mean and std are not three numbers each with std above 0")
        if self.default_threshold is not None:
            self.default_threshold = float(self.default_threshold)
            if not (math.isfinite(self.default_threshold) and 0.0 <= self.default_threshold <= 1.0):
                raise MetadataError(f"default threshold {self.default_threshold} is not a number from 0 to 1")
        if self.nms not in NMS_KINDS:
            raise MetadataError(f"nms kind '{self.nms}' is not one of {', '.join(NMS_KINDS)}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def display_threshold(self) -> float:
        """The score under which the runtime hides boxes unless told otherwise (never below the graph's floor)."""
        return max(float(self.score_threshold), float(self.default_threshold or 0.0))

    @property
    def random_weights(self) -> bool:
        return self.weights == RANDOM_WEIGHTS

    def weights_warning(self) -> Optional[str]:
        """The sentence `run` and `eval` warn with when the model was exported without weights."""
        if not self.random_weights:
            return None
        return (f"this {self.model} model was exported with random weights (no --weights): "
                "it makes no meaningful detections; re-export it with --weights coco, person or a checkpoint")

    @property
    def pad_color_bgr(self) -> Tuple[int, int, int]:
        """Letterbox fill: the normalisation mean, so padding is ~0 after normalising."""
        r, g, b = (int(round(v)) for v in self.mean)
        return (b, g, r)

    def summary(self) -> dict:
        """The artifact facts a measured figure (AP, latency) depends on, for reports."""
        return {"model": self.model, "input_size": list(self.input_size), "weights": self.weights,
                "score_threshold": self.score_threshold, "default_threshold": self.default_threshold,
                "iou_threshold": self.iou_threshold,
                "max_detections": self.max_detections, "nms": self.nms, "precision": self.precision,
                "num_labels": len(self.labels)}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, source: str = "artifact") -> "DeployInfo":
        known = {f.name for f in fields(cls)}
        missing = [name for name in ("model", "input_size", "labels", "mean", "std") if name not in data]
        if missing:
            raise MetadataError(f"{source} has edge_edet metadata without {', '.join(missing)}; re-export it")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except MetadataError as exc:
            raise MetadataError(f"{source} has unusable edge_edet metadata: {exc}; re-export it") from None
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"{source} has unreadable edge_edet metadata ({exc}); re-export it") from None

    @classmethod
    def from_json(cls, text: str, source: str = "artifact") -> "DeployInfo":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise MetadataError(f"{source} has edge_edet metadata that is not valid JSON; re-export it") from None
        if not isinstance(data, dict):
            raise MetadataError(f"{source} has edge_edet metadata that is not a JSON object; re-export it")
        return cls.from_dict(data, source)


def read_onnx_metadata(path: str) -> DeployInfo:
    """DeployInfo from an ONNX file's metadata_props (loads only the model proto, not weights data)."""
    from .onnx_io import load_onnx

    return deploy_info_from_onnx_model(load_onnx(path, weights=False), path)


def deploy_info_from_onnx_model(model, source: str = "ONNX model") -> DeployInfo:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise MetadataError(f"{source} has no edge_edet metadata: it was not exported by `edge-edet export`")
    return DeployInfo.from_json(props[METADATA_KEY], source)


def write_onnx_metadata(model, info: DeployInfo) -> None:
    """Set (replace) the edge_edet entry of an onnx.ModelProto's metadata_props."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept + [(METADATA_KEY, info.to_json())]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def sidecar_path(engine_path: str) -> str:
    return engine_path + ".json"


def read_sidecar(engine_path: str) -> DeployInfo:
    path = sidecar_path(engine_path)
    if not os.path.isfile(path):
        raise MetadataError(f"engine {engine_path} has no sidecar {path}; build it with `edge-edet build "
                            f"--onnx MODEL.onnx --engine {engine_path}`, which writes the sidecar")
    with open(path, "r", encoding="utf-8") as handle:
        return DeployInfo.from_json(handle.read(), path)


def write_sidecar(engine_path: str, info: DeployInfo) -> str:
    """Write `<engine>.json` atomically (temporary file, then rename)."""
    from .fileio import write_text_atomic

    return write_text_atomic(sidecar_path(engine_path), json.dumps(json.loads(info.to_json()), indent=2, sort_keys=True))
