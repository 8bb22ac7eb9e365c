"""OpenVINO back-end for deploy .onnx graphs: x86 and ARM CPUs, Intel integrated GPUs and NPUs.

How it runs (OpenVINO's Python API: `openvino.Core`, `compile_model`, `InferRequest`):
  * the ONNX is read as it is (NonMaxSuppression, TopK, the FP16 casts of `convert` and the Q/DQ
    pairs of `calibrate`, which OpenVINO runs as int8 kernels) and compiled once, for one device,
    with the performance hint that fits the caller: LATENCY for one stream, THROUGHPUT (sized by
    the number of requests) for several;
  * execution mode ACCURACY unless asked otherwise: the graph's own precision, so an FP32 graph
    computes in f32 and gives ONNX Runtime's boxes.  OpenVINO's default (PERFORMANCE) lowers f32 to
    bf16 on CPUs that have it and to f16 on GPUs: faster, but the boxes move (docs/openvino.md);
  * the compiled blob goes to a model cache (CACHE_DIR, keyed by the file's content), so a second
    start skips compilation;
  * a pool of infer requests, as many as the compiled model's optimal number: `submit` starts one
    with `start_async` and returns at once, `infer` is submit + wait.  Buffers from
    `allocate_input` are OpenVINO's own tensors, handed to the request as they are
    (`set_input_tensor`); any other array is wrapped in a tensor sharing its memory: no copy
    either way.  The small outputs are copied out, so the request can run the next batch.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import deploy_info_from_onnx_model
from ...contract.names import INPUT_NAME, OPENVINO_DEVICES, OPENVINO_EXECUTION_MODES
from ...contract.onnx_io import load_onnx
from .base import Backend, Pending, check_input_matches_metadata

INSTALL = "pip install openvino (or pip install -e \".[openvino]\")"
CACHE_ENV = "EDGE_EDET_OPENVINO_CACHE"  # a folder for compiled blobs; empty: no cache


class OpenVINOCompileError(EdgeEdetError):
    """OpenVINO could not read or compile the graph (`--backend auto` then falls back to ONNX Runtime)."""


def default_cache_dir() -> str:
    """Where compiled models are kept: $EDGE_EDET_OPENVINO_CACHE, else ~/.cache/edge_edet/openvino."""
    if CACHE_ENV in os.environ:
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edge_edet", "openvino")


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise EdgeEdetError(f"the OpenVINO back-end needs OpenVINO, which is not installed here: {INSTALL}") from None
    return openvino


def onnx_graph_inputs(proto) -> List[Tuple[str, str, list]]:
    """(name, ONNX Runtime-style type text, shape) of each real graph input, read from the ONNX itself."""
    import onnx

    initializers = {tensor.name for tensor in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        kind = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim]
        inputs.append((value.name, f"tensor({kind})", shape))
    return inputs


def compile_config(device: str, streams: int, execution_mode: str, threads: int) -> dict:
    """The properties compile_model gets (plain data, so it is tested without a device)."""
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {hints.execution_mode: (hints.ExecutionMode.ACCURACY if execution_mode == "accuracy"
                                     else hints.ExecutionMode.PERFORMANCE)}
    if streams > 1:
        config[hints.performance_mode] = hints.PerformanceMode.THROUGHPUT
        config[hints.num_requests] = int(streams)  # no more parallel streams than requests the caller keeps
    else:
        config[hints.performance_mode] = hints.PerformanceMode.LATENCY
    if threads and device.upper() == "CPU":
        config[props.inference_num_threads] = int(threads)
    return config


class _OpenVINOPending(Pending):
    """One started infer request: result() waits for it, copies the outputs, frees the request."""

    def __init__(self, backend: "OpenVINOBackend", index: int, keep_alive):
        super().__init__(None)
        self._backend, self._index, self._keep_alive = backend, index, keep_alive

    def result(self) -> Dict[str, np.ndarray]:
        if self._index is not None:
            index, self._index = self._index, None
            backend = self._backend
            try:
                request = backend._requests[index]
                request.wait()
                self.done_at = backend._finished_at[index] or time.perf_counter()
                self._outputs = {name: np.array(request.get_tensor(name).data) for name in backend.output_names}
            finally:
                self._keep_alive = None
                backend._release(index)
        return self._outputs


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, path: str, device: str = "CPU", streams: int = 1, threads: int = 0,
                 execution_mode: str = "accuracy", cache_dir: Optional[str] = None,
                 score_floor: Optional[float] = None, **_ignored):
        """score_floor: run with the graph's score threshold lowered to this (eval: AP needs the low-score
        boxes a graph exported for display drops); self.lowered_floor_from then holds the exported one."""
        ov = import_openvino()
        self.path = path
        proto = load_onnx(path, weights=False)
        self.info = deploy_info_from_onnx_model(proto, path)
        inputs = onnx_graph_inputs(proto)
        check_input_matches_metadata(inputs, self.info, path)
        del proto
        batch_dim = inputs[0][2][0]
        self.dynamic_batch = not isinstance(batch_dim, int) or batch_dim <= 0
        self.max_batch = self.info.batch if self.dynamic_batch else int(batch_dim)
        device = (device or "CPU").upper()
        if execution_mode not in OPENVINO_EXECUTION_MODES:
            raise EdgeEdetError(f"OpenVINO execution mode must be one of {', '.join(OPENVINO_EXECUTION_MODES)}, "
                                f"not {execution_mode}")
        self.core = ov.Core()
        available = list(self.core.available_devices)
        if device.split(".")[0].split(":")[0] not in OPENVINO_DEVICES:
            raise EdgeEdetError(f"--device must be one of {', '.join(OPENVINO_DEVICES)}, not {device}")
        if device != "AUTO" and not any(d == device or d.startswith(device + ".") for d in available):
            raise EdgeEdetError(f"OpenVINO has no {device} device here (it has: {', '.join(available) or 'none'}); "
                                f"--device CPU runs anywhere")
        self.device, self.execution_mode = device, execution_mode
        self.cache_dir = self._enable_cache(default_cache_dir() if cache_dir is None else cache_dir)
        config = compile_config(device, max(1, int(streams)), execution_mode, threads)
        self.lowered_floor_from: Optional[float] = None
        try:
            model = path  # compiled from the file: a cached blob is then loaded without reading the ONNX
            if score_floor is not None and float(score_floor) < float(self.info.score_threshold):
                model = self._lower_score_floor(float(score_floor))
            self.compiled = self.core.compile_model(model, device, config)
        except Exception as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            raise OpenVINOCompileError(f"OpenVINO cannot compile {path} for {device}: "
                                       f"{lines[0] if lines else type(exc).__name__}") from None
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self.hint = "throughput" if streams > 1 else "latency"
        self.loaded_from_cache = bool(self._property("LOADED_FROM_CACHE", False))
        # as many requests as OpenVINO finds optimal, and at least one per stream the caller feeds
        self.in_flight = max(1, int(streams), int(self._property("OPTIMAL_NUMBER_OF_INFER_REQUESTS", 1)))
        self._requests = [self.compiled.create_infer_request() for _ in range(self.in_flight)]
        self._finished_at = [0.0] * self.in_flight  # per request, set by its completion callback
        self._idle: "queue.Queue" = queue.Queue()
        for index, request in enumerate(self._requests):
            request.set_callback(self._finished, index)
            self._idle.put(index)
        self._tensors: List[tuple] = []  # (array, ov.Tensor) of allocate_input, matched by identity
        self._lock = threading.Lock()
        self._ov = ov
        self.version = str(getattr(ov, "__version__", "") or ov.get_version())

    # -- set-up helpers ---------------------------------------------------------------------------
    def _enable_cache(self, folder: str) -> Optional[str]:
        """Compiled blobs in `folder` (made if needed); without a usable folder, compile every time."""
        if not folder:
            return None
        try:
            os.makedirs(folder, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise OSError("not writable")
            self.core.set_property({"CACHE_DIR": folder})
            return folder
        except Exception as exc:
            print(f"edge-edet: warning: OpenVINO model cache {folder} cannot be used ({exc}); compiling "
                  f"without it (set {CACHE_ENV} to another folder)", file=sys.stderr, flush=True)
            return None

    def _lower_score_floor(self, floor: float):
        """The model with the score-threshold constant of every NonMaxSuppression replaced by `floor`
        (nms onnx), or the file as it is with the host's floor lowered (nms none); an EfficientNMS plugin
        graph keeps its own.  The ONNX Runtime back-end does the same through an initializer override."""
        model = self.path
        if self.info.nms == "onnx":
            try:
                from openvino import op
            except ImportError:  # OpenVINO before 2025 keeps it under openvino.runtime
                from openvino.runtime import op
            model = self.core.read_model(self.path)
            lowered = 0
            for node in model.get_ops():
                if node.get_type_name() != "NonMaxSuppression" or node.get_input_size() <= 4:
                    continue
                threshold = node.input_value(4).get_node()
                if threshold.get_type_name() == "Constant":
                    shape = tuple(threshold.get_output_shape(0))
                    node.input(4).replace_source_output(op.Constant(np.full(shape, floor, np.float32)).output(0))
                    lowered += 1
            if not lowered:
                return self.path
        elif self.info.nms != "none":
            return model
        self.lowered_floor_from = float(self.info.score_threshold)
        self.info = dataclasses.replace(self.info, score_threshold=floor)
        return model

    def _property(self, name: str, default):
        try:
            return self.compiled.get_property(name)
        except Exception:  # a device that does not report it
            return default

    # -- inputs -----------------------------------------------------------------------------------
    def allocate_input(self, batch: int) -> np.ndarray:
        """OpenVINO's own input tensor, viewed as a numpy array: the letterbox writes into it and the
        infer request reads it there (set_input_tensor), with no copy."""
        self._check_batch(batch)
        tensor = self._ov.Tensor(self._ov.Type.u8, self._ov.Shape([batch] + list(self.info.input_size) + [3]))
        array = tensor.data
        with self._lock:
            self._tensors.append((array, tensor))  # kept alive as long as the back-end
        return array

    def _input_tensor(self, images: np.ndarray):
        """The tensor the request reads: a buffer of allocate_input as it is, anything else wrapped."""
        for array, tensor in self._tensors:
            if images is array:
                return tensor
        return self._ov.Tensor(np.ascontiguousarray(images), shared_memory=True)

    def _check_batch(self, batch: int) -> None:
        if batch < 1 or batch > self.max_batch or (not self.dynamic_batch and batch != self.max_batch):
            allowed = f"1..{self.max_batch}" if self.dynamic_batch else str(self.max_batch)
            raise EdgeEdetError(f"a batch of {batch} images does not fit this model's batch ({allowed})")

    def _check_images(self, images: np.ndarray) -> None:
        expected = tuple(self.info.input_size) + (3,)
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                or tuple(images.shape[1:]) != expected:
            got = f"{images.dtype} {list(images.shape)}" if isinstance(images, np.ndarray) else type(images).__name__
            raise EdgeEdetError(f"the model takes uint8 images [batch, {expected[0]}, {expected[1]}, 3], got {got}")
        self._check_batch(images.shape[0])

    # -- inference --------------------------------------------------------------------------------
    def submit(self, images: np.ndarray) -> Pending:
        """Start an idle request on `images` (waiting for one if all are busy) and return at once."""
        self._check_images(images)
        tensor = self._input_tensor(images)
        index = self._idle.get()
        try:
            request = self._requests[index]
            request.set_input_tensor(tensor)
            self._finished_at[index] = 0.0
            request.start_async()
        except BaseException:
            self._release(index)
            raise
        return _OpenVINOPending(self, index, (images, tensor))

    def _finished(self, index: int) -> None:
        self._finished_at[index] = time.perf_counter()

    def _release(self, index: int) -> None:
        self._idle.put(index)

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        return self.submit(images).result()

    def label(self) -> str:
        auto = ", chosen by --backend auto" if self.chosen_by == "auto" else ""
        return (f"openvino {self.version.split('-')[0]} ({self.device}, {self.hint} hint, {self.execution_mode} mode"
                f"{auto})")

    def describe(self) -> dict:
        return {"backend": self.name, "openvino": self.version, "device": self.device,
                "hint": self.hint, "execution_mode": self.execution_mode, "requests": self.in_flight,
                "model_cache": self.cache_dir, "loaded_from_cache": self.loaded_from_cache,
                "model": os.path.basename(self.path), "chosen_by": self.chosen_by, "label": self.label()}

    def close(self) -> None:
        """Wait for requests still running, then drop them and the compiled model."""
        for request in getattr(self, "_requests", []):
            try:
                request.wait()
            except Exception:
                pass
        self._requests, self._tensors = [], []
        self.compiled = None
