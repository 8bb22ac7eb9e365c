"""Inference back-ends behind one interface (see base.Backend), chosen by file extension or URI, and for a
deploy .onnx by `backend`: onnxruntime, openvino or auto (the chooser below)."""
import os

from ...contract.errors import EdgeEdetError
from ...contract.names import AUTO_BACKEND, ENGINE_EXTENSIONS, ONNX_BACKENDS, ONNX_EXTENSION
from .openvino_backend import OpenVINOCompileError

# a deploy .onnx: back-end name -> (module, class)
ONNX_RUNNERS = {
    "onnxruntime": ("onnxruntime_backend", "OnnxRuntimeBackend"),
    "openvino": ("openvino_backend", "OpenVINOBackend"),
}
# `auto` on a CPU: the graph precisions OpenVINO runs faster than ONNX Runtime, measured with
# `edge-edet bench --backend onnxruntime,openvino` (docs/openvino.md): FP16 1.25x, INT8 Q/DQ 2.4x.  FP32 is
# level (0.96-1.02x, accuracy mode, 2-core AMD EPYC), so ONNX Runtime keeps it unless --backend openvino.
OPENVINO_FASTER = ("fp16", "int8")
OPENVINO_OPTIONS = ("device", "execution_mode")  # options only OpenVINO takes: asking for one asks for it


def _runner(name: str):
    import importlib

    module, cls = ONNX_RUNNERS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _gpu_onnxruntime() -> bool:
    """onnxruntime-gpu with a CUDA or TensorRT provider: a GPU run, ONNX Runtime's."""
    from ...contract.machine import onnxruntime_providers

    available = onnxruntime_providers() or ()
    return any(p in available for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))


def choose_onnx_backend(path: str, providers=None, openvino_options: bool = False) -> str:
    """`auto`: OpenVINO for a CPU run where it is installed and faster for this graph's precision;
    ONNX Runtime when its execution providers were named, when it has a GPU provider, or otherwise."""
    if openvino_options:
        return "openvino"  # a --device or --execution-mode: only OpenVINO takes them
    if providers or not _installed("openvino") or _gpu_onnxruntime():
        return "onnxruntime"
    from ...contract.metadata import read_onnx_metadata

    return "openvino" if read_onnx_metadata(path).precision in OPENVINO_FASTER else "onnxruntime"


def open_backend(path: str, providers=None, backend: str = AUTO_BACKEND, **options):
    """A TensorRT engine (.trt/.engine/.plan), a Triton server (triton://HOST:PORT/MODEL), or a deploy .onnx
    through `backend`: onnxruntime, openvino or auto.  The back-end's `chosen_by` says how it was picked."""
    from .triton_backend import is_triton_uri

    backend = (backend or AUTO_BACKEND).lower()
    if backend != AUTO_BACKEND and backend not in ONNX_BACKENDS:
        raise EdgeEdetError(f"unknown back-end '{backend}'; choose {', '.join((AUTO_BACKEND,) + ONNX_BACKENDS)}")
    if is_triton_uri(path):
        _only_for_onnx(backend, options, path)
        from .triton_backend import TritonBackend

        return TritonBackend(path, **options)
    if os.path.isdir(path):
        raise EdgeEdetError(f"model {path} is a folder; give the .onnx or engine file inside it")
    if not os.path.isfile(path):
        raise EdgeEdetError(f"model file {path} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext == ONNX_EXTENSION:
        if options.pop("cuda_graph", False):
            from ...contract.cli import warn

            warn("--cuda-graph applies to TensorRT engines only; ignored for this ONNX model")
        openvino_only = {key: options.pop(key) for key in OPENVINO_OPTIONS if options.get(key) is not None}
        if backend == AUTO_BACKEND:
            runner = _open_auto(path, providers, openvino_only, options)
        else:
            runner = _open_onnx(backend, path, providers, openvino_only, options)
            runner.chosen_by = "asked"
        return runner
    if ext in ENGINE_EXTENSIONS:
        _only_for_onnx(backend, options, path)
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, **options)
    raise EdgeEdetError(f"{path}: unknown model type '{ext}'; expected .onnx or a TensorRT engine "
                        f"({', '.join(ENGINE_EXTENSIONS)})")


def _open_onnx(backend: str, path: str, providers, openvino_only: dict, options: dict):
    if backend == "openvino":
        if providers:
            raise EdgeEdetError("--providers names ONNX Runtime execution providers; OpenVINO takes --device "
                                "(CPU, GPU, NPU, AUTO)")
        return _runner(backend)(path, **openvino_only, **options)
    if openvino_only:
        flags = ", ".join("--" + key.replace("_", "-") for key in openvino_only)
        raise EdgeEdetError(f"{flags} applies to OpenVINO (--backend openvino); ONNX Runtime takes --providers")
    return _runner(backend)(path, providers=providers, **options)


def _open_auto(path: str, providers, openvino_only: dict, options: dict):
    """The chooser's pick; a graph OpenVINO cannot compile runs on ONNX Runtime instead, with a warning."""
    backend = choose_onnx_backend(path, providers, bool(openvino_only))
    try:
        runner = _open_onnx(backend, path, providers, openvino_only, options)
    except OpenVINOCompileError as exc:
        if openvino_only:
            raise
        from ...contract.cli import warn

        warn(f"{exc}; running it with ONNX Runtime instead")
        runner = _open_onnx("onnxruntime", path, providers, {}, options)
    runner.chosen_by = AUTO_BACKEND
    return runner


def _only_for_onnx(backend: str, options: dict, path: str) -> None:
    """--backend and an OpenVINO --device choose how a .onnx runs; an engine or a server runs as it is."""
    if backend != AUTO_BACKEND:
        raise EdgeEdetError(f"--backend {backend} applies to .onnx models; {path} runs on "
                            f"{'its Triton server' if '://' in path else 'TensorRT'} (leave --backend out)")
    if isinstance(options.get("device"), str) or options.get("execution_mode"):
        raise EdgeEdetError(f"--device and --execution-mode are OpenVINO's and apply to .onnx models; "
                            f"{path} runs as it is (leave them out)")
