"""Inference back-ends behind one interface (see base.Backend); chosen by file extension or URI."""
import os

from ...contract.errors import EdgeEdetError
from ...contract.names import ENGINE_EXTENSIONS, ONNX_EXTENSION


def open_backend(path: str, providers=None, **options):
    """ONNX Runtime for .onnx; TensorRT for .trt/.engine/.plan; a Triton server for triton://HOST:PORT/MODEL."""
    from .triton_backend import is_triton_uri

    if is_triton_uri(path):
        from .triton_backend import TritonBackend

        return TritonBackend(path, **options)
    if os.path.isdir(path):
        raise EdgeEdetError(f"model {path} is a folder; give the .onnx or engine file inside it")
    if not os.path.isfile(path):
        raise EdgeEdetError(f"model file {path} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext == ONNX_EXTENSION:
        from .onnxruntime_backend import OnnxRuntimeBackend

        if options.pop("cuda_graph", False):
            from ...contract.cli import warn

            warn("--cuda-graph applies to TensorRT engines only; ignored for this ONNX model")
        return OnnxRuntimeBackend(path, providers=providers, **options)
    if ext in ENGINE_EXTENSIONS:
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, **options)
    raise EdgeEdetError(f"{path}: unknown model type '{ext}'; expected .onnx or a TensorRT engine "
                        f"({', '.join(ENGINE_EXTENSIONS)})")
