"""`edge-edet serve`: one deploy model on NVIDIA Triton Inference Server, through PyTriton.

PyTriton starts the real Triton server (bundled in nvidia-pytriton) and binds a Python function
as the model; ours runs the runtime's back-end (OpenVINO or ONNX Runtime for .onnx, as --backend
chooses; TensorRT for engines), one per instance.  Triton's dynamic batcher gathers single frames
from many clients into the model's batch (a `--dynamic-batch N` export batches for real; a static
one is served at its own size).  The artifact's metadata is published as the `edge_edet` parameter of the model config,
so clients (the triton:// back-end) read input size, labels and thresholds from the server.

Order of work: ports and arguments first, then the model, then the server: a mistake costs
nothing and leaves nothing behind.  SIGINT / SIGTERM stop the server cleanly.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from ..contract.cli import counted
from ..contract.errors import EdgeEdetError
from ..contract.fileio import remove_stale_work_folders
from ..contract.machine import nvml_available
from ..contract.metadata import METADATA_KEY
from ..runtime.backends import open_backend
from ..runtime.backends.triton_backend import MODEL_NAME, is_triton_uri
from .environment import check_ports_free, use_own_libpython
from .tensors import batching, check_servable, input_spec, output_specs, served_batch, serving_warnings

LOOPBACK = "127.0.0.1"
DEFAULT_QUEUE_DELAY_US = 2000
RESTRICTED_ENDPOINTS = ("shared-memory", "model-repository", "trace", "logging")
INSTALL = "pip install nvidia-pytriton==0.7.0 --no-deps (its other needs come with pip install -e \".[serve]\")"


@dataclass
class ServeOptions:
    model_path: str
    name: Optional[str] = None
    host: str = LOOPBACK
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: Optional[int] = None
    max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US
    instances: int = 1
    providers: Optional[List[str]] = None
    backend: str = "auto"  # what runs a .onnx: onnxruntime, openvino or auto (runtime.backends.open_backend)
    verbose: bool = False
    backend_options: dict = field(default_factory=dict)  # threads, device, execution mode (contract.cli.backend_options)


def model_name(path: str, name: Optional[str]) -> str:
    """--name, or the file's stem: one folder name of a Triton model repository (MODEL_NAME), never a
    path ('..', 'a/b') nor a hidden folder."""
    chosen = name if name is not None else os.path.splitext(os.path.basename(path))[0]
    if not MODEL_NAME.match(chosen):
        given = "--name" if name is not None else f"the model name taken from {os.path.basename(path)}"
        raise EdgeEdetError(f"{given} '{chosen}' is not a Triton model name: use up to 255 letters, digits, '_', "
                            f"'.' and '-', not starting with '.'" + ("" if name is not None else "; pass --name"))
    return chosen


def make_infer_function(backend, output_names: List[str]) -> Callable:
    """The function Triton calls with a gathered batch: uint8 images [n,H,W,3] -> the four outputs."""
    from pytriton.decorators import batch

    @batch
    def infer(images):
        count = images.shape[0]
        if not backend.dynamic_batch and count < backend.max_batch:  # static export: pad to its size
            padded = np.zeros((backend.max_batch,) + images.shape[1:], np.uint8)
            padded[:count] = images
            images = padded
        result = backend.infer(np.ascontiguousarray(images, dtype=np.uint8))
        return {name: np.ascontiguousarray(result[name][:count]) for name in output_names}

    return infer


class Server:
    """A started PyTriton server with one model; `stop()` ends it (also on exceptions in `with`)."""

    def __init__(self, options: ServeOptions, log: Callable[[str], None] = print):
        self.options, self.log = options, log
        path = options.model_path
        if is_triton_uri(path):
            raise EdgeEdetError(f"serve takes a model file (.onnx or a TensorRT engine), not the address {path}")
        self.name = model_name(path, options.name)
        if options.instances < 1:
            raise EdgeEdetError("--instances must be at least 1")
        check_ports_free(options.host, (("--http-port", options.http_port), ("--grpc-port", options.grpc_port),
                                        ("--metrics-port", options.metrics_port)))
        self.backends = []
        self.triton = None
        self._log_dir = None
        self._keep_log = False
        self.log_file = ""
        try:
            self._open_model()
            self._start()
        except BaseException:
            self.stop(keep_log=True)  # a failed start names its log
            raise

    # -- model --------------------------------------------------------------------------------
    def _open_model(self) -> None:
        options = self.options
        backend_options = dict(options.backend_options)
        if os.path.splitext(options.model_path)[1].lower() == ".onnx" and os.path.isfile(options.model_path):
            from ..contract.metadata import read_onnx_metadata  # refused before ONNX Runtime loads it

            check_servable(read_onnx_metadata(options.model_path), options.model_path, onnx_runtime=True)
        first = open_backend(options.model_path, providers=options.providers, backend=options.backend,
                             **backend_options)
        self.backends.append(first)
        self.info = first.info
        check_servable(self.info, options.model_path)
        self.batch = served_batch(self.info, options.max_batch, options.model_path)
        for warning in serving_warnings(self.info):
            self.log(warning)
        for _ in range(options.instances - 1):
            self.backends.append(open_backend(options.model_path, providers=options.providers, backend=options.backend,
                                              **backend_options))

    # -- server -------------------------------------------------------------------------------
    def _start(self) -> None:
        try:
            from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
            from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig
        except ImportError:
            raise EdgeEdetError(f"edge-edet serve needs PyTriton: {INSTALL}") from None
        from .pytriton_compat import patch_model, server_in_own_process_group

        options = self.options
        use_own_libpython()
        remove_stale_work_folders()  # log folders of servers that were killed (kill -9) or failed to start
        self._log_dir = tempfile.mkdtemp(prefix=f"edge_edet_triton_{os.getpid()}_")
        self.log_file = os.path.join(self._log_dir, "triton.log")
        config = TritonConfig(http_address=options.host, http_port=options.http_port, grpc_address=options.host,
                              grpc_port=options.grpc_port, metrics_address=options.host,
                              metrics_port=options.metrics_port, log_verbose=0,
                              log_file=None if options.verbose else self.log_file, exit_timeout_secs=5,
                              # GPU metrics need NVML: without it Triton's DCGM prints "Error: Failed to
                              # initialize NVML" on the console (every CPU machine, every Jetson)
                              allow_gpu_metrics=nvml_available())
        # PyTriton guards these endpoints with a generated token; statistics stay open (read-only) so
        # clients can split network time from inference and read the mean batch size
        security = TritonSecurityConfig(restricted_endpoints=list(RESTRICTED_ENDPOINTS))
        self.triton = Triton(config=config, security_config=security)
        rule = batching(self.info, self.batch)  # a static export is served whole: max_batch_size 0, full dims
        inputs = [Tensor(name=spec.name, dtype=spec.dtype, shape=rule.lead + spec.dims)
                  for spec in [input_spec(self.info)]]
        outputs = [Tensor(name=spec.name, dtype=spec.dtype, shape=rule.lead + spec.dims)
                   for spec in output_specs(self.info)]
        self.triton.bind(
            model_name=self.name,
            infer_func=[make_infer_function(b, [o.name for o in outputs]) for b in self.backends],
            inputs=inputs, outputs=outputs,
            config=ModelConfig(max_batch_size=rule.max_batch_size, batching=rule.max_batch_size > 0,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=options.max_queue_delay_us
                                                      if rule.dynamic_batcher else 0)),
            strict=True)
        model = self._bound_model()
        model._get_triton_model_config().backend_parameters[METADATA_KEY] = self.info.to_json()
        patch_model(model)
        try:
            with server_in_own_process_group():
                self.triton.run()
        except EdgeEdetError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgeEdetError(f"Triton did not start ({first}); its log: {self.log_file}") from None

    def _bound_model(self):
        """PyTriton has no public hook for config parameters: reach its one bound model (0.7.0 layout)."""
        manager = getattr(self.triton, "_model_manager", None)
        models = list(getattr(manager, "models", []) or [])
        if len(models) != 1 or not hasattr(models[0], "_get_triton_model_config"):
            raise EdgeEdetError(f"this nvidia-pytriton is not the 0.7.0 that edge_edet knows; {INSTALL}")
        return models[0]

    def describe(self) -> str:
        info, o = self.info, self.options
        height, width = info.input_size
        if self.info.dynamic_batch:
            batching = f"dynamic batches of up to {self.batch} (queue delay {o.max_queue_delay_us} us)"
        else:
            batching = (f"static batch {self.batch} (export with --dynamic-batch N to batch frames from many "
                        f"clients)")
        return (f"serving {self.name} ({info.model} {height}x{width}, {counted(len(info.labels), 'class')}, "
                f"{info.precision}, {self.backends[0].label()}, {o.instances} instance(s)), {batching}, "
                f"on grpc {o.host}:{o.grpc_port}, "
                f"http {o.host}:{o.http_port}, metrics {o.host}:{o.metrics_port}\n"
                f"clients: edge-edet run --engine triton://{o.host}:{o.grpc_port}/{self.name} --source ...")

    def is_alive(self) -> bool:
        return self.triton is not None and self.triton.is_alive()

    def stop(self, keep_log: bool = False) -> None:
        if self.triton is not None:
            try:
                self.triton.stop()
            finally:
                self.triton = None
        for backend in self.backends:
            backend.close()
        self.backends = []
        self._keep_log = self._keep_log or keep_log
        if self._log_dir and not self._keep_log:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve(options: ServeOptions, log: Callable[[str], None] = print) -> int:
    """Start, announce, and serve until SIGINT / SIGTERM; exit 1 if the server dies on its own."""
    stop = threading.Event()
    received = []

    def handle(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handle)
    try:
        with Server(options, log=log) as server:
            log(server.describe())
            log("Ctrl-C stops")
            sys.stdout.flush()
            while not stop.wait(0.5):
                if not server.is_alive():
                    server.stop(keep_log=True)
                    raise EdgeEdetError(f"the Triton server stopped on its own; its log: {server.log_file}")
        log(f"stopped ({received[0] if received else 'done'})")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
