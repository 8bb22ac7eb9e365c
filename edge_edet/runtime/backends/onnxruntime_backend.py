"""ONNX Runtime back-end: CPU here; CUDA / TensorRT execution providers with onnxruntime-gpu."""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import deploy_info_from_onnx_model
from ...contract.names import INPUT_NAME
from ...contract.onnx_io import load_onnx
from .base import Backend, check_input_matches_metadata

PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider"}


def resolve_providers(providers: Optional[Sequence[str]]) -> list:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if not providers:
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    resolved = []
    for name in providers:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in available:
            raise EdgeEdetError(f"ONNX Runtime provider {name} is not available here "
                                f"(available: {', '.join(available)})")
        resolved.append(full)
    return resolved


def check_graph_matches_metadata(session, info, path: str) -> None:
    """The session's input against the graph's edge_edet metadata (see base.check_input_matches_metadata)."""
    check_input_matches_metadata([(i.name, i.type, list(i.shape)) for i in session.get_inputs()], info, path)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None, threads: int = 0,
                 score_floor: Optional[float] = None, **_ignored):
        """score_floor: run with the graph's score threshold lowered to this (eval: AP needs the
        low-score boxes a graph exported for display drops); self.lowered_floor_from then holds the
        threshold the graph was exported with."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise EdgeEdetError("running .onnx models needs onnxruntime: pip install onnxruntime") from None
        proto = load_onnx(path, weights=False)
        self.info = deploy_info_from_onnx_model(proto, path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if _tensorrt_qdq_graph(self.info):
            # run Q/DQ as written (TensorRT's arithmetic): fused into ONNX Runtime's int8 kernels on a CPU
            # without VNNI the u8 x s8 products saturate; the person detector lost ~5 AP (docs/precision.md)
            options.add_session_config_entry("session.disable_quant_qdq", "1")
        self.lowered_floor_from: Optional[float] = None
        self._overrides: List = []  # the OrtValues an override points at must outlive the session
        if score_floor is not None and float(score_floor) < float(self.info.score_threshold):
            self._lower_score_floor(proto, options, float(score_floor))
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=resolve_providers(providers))
        except EdgeEdetError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgeEdetError(f"ONNX Runtime cannot load {path}: {first}") from None
        check_graph_matches_metadata(self.session, self.info, path)
        batch_dim = self.session.get_inputs()[0].shape[0]
        self.dynamic_batch = not isinstance(batch_dim, int)
        self.max_batch = self.info.batch if self.dynamic_batch else int(batch_dim)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.path = path

    def _lower_score_floor(self, proto, options, floor: float) -> None:
        """Override the score-threshold initializer of every NonMaxSuppression node (nms onnx), or
        lower the floor the host applies (nms none); an EfficientNMS plugin graph keeps its own."""
        import onnxruntime as ort

        if self.info.nms == "onnx":
            initializers = {init.name for init in proto.graph.initializer}
            names = {node.input[4] for node in proto.graph.node
                     if node.op_type == "NonMaxSuppression" and len(node.input) > 4 and node.input[4] in initializers}
            if not names:
                return
            for name in sorted(names):
                value = ort.OrtValue.ortvalue_from_numpy(np.array([floor], np.float32))
                options.add_initializer(name, value)
                self._overrides.append(value)
        elif self.info.nms != "none":
            return
        self.lowered_floor_from = float(self.info.score_threshold)
        self.info = dataclasses.replace(self.info, score_threshold=floor)

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        outputs = self.session.run(self.output_names, {INPUT_NAME: images})
        return dict(zip(self.output_names, outputs))

    def label(self) -> str:
        providers = ", ".join(p.replace("ExecutionProvider", "") for p in self.session.get_providers())
        auto = ", chosen by --backend auto" if self.chosen_by == "auto" else ""
        return f"onnxruntime {__import__('onnxruntime').__version__} ({providers}{auto})"

    def describe(self) -> dict:
        return {"backend": self.name, "providers": self.session.get_providers(),
                "onnxruntime": __import__("onnxruntime").__version__, "model": os.path.basename(self.path),
                "chosen_by": self.chosen_by, "label": self.label()}


def _tensorrt_qdq_graph(info) -> bool:
    """An INT8 graph laid out for TensorRT (not the ONNX Runtime CPU layout of scripts/precision_table.py)."""
    return info.precision == "int8" and info.extra.get("int8", {}).get("target") != "onnxruntime-cpu"
