"""TensorRT back-end (.trt / .engine / .plan) on pycuda: pinned buffers, one stream, one context.

How it runs (TensorRT 8.5, 10.x and 11.x alike, through the name-based tensor API):
  * the sidecar `<engine>.json` is read first (input size, labels, thresholds, and the TensorRT
    version / GPU the engine was built with, so a mismatch is named before TensorRT fails on it);
  * one CUDA context is made for this back-end (`Device.make_context`, never `pycuda.autoinit`)
    and pushed/popped around every call, so whichever thread runs inference has it current: the
    "no currently active context" error of worker threads cannot happen;
  * every buffer is allocated once at the engine's largest batch: page-locked host arrays, device
    arrays, `set_tensor_address` once; each batch then does async copy in, `execute_async_v3`,
    async copies of the (small) outputs back, one `stream.synchronize()`;
  * `cuda_graph=True` captures the enqueue once into a CUDA graph (static-shape engines) and
    replays it, through cuda-python's driver API (pycuda has no graph API);
  * `time_gpu` measures the enqueue alone with CUDA events, like trtexec's "GPU Compute Time".

The TensorRT names used here and the versions that have them: docs/tensorrt_api.md (generated
from the real bindings; tests/test_trt_conformance.py runs this back-end against a stand-in of
each version, with stand-in pycuda and cuda-python).  pycuda calls: pycuda doc/driver.rst and
src/cpp/cuda.hpp (context stack, detach semantics); cuda-python: cuda-bindings docstrings.
"""
from __future__ import annotations

import itertools
import os
import sys
import threading
from typing import Dict, List, Optional

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import DeployInfo, read_sidecar
from ...contract.names import INPUT_NAME
from ..buffer_plan import TensorSpec, plan_buffers
from .base import Backend

PYCUDA_HINT = ("pip install pycuda (on a Jetson: `sudo apt install python3-dev` first, and CUDA's nvcc on "
               "PATH, e.g. export PATH=/usr/local/cuda/bin:$PATH)")


# -- pure helpers (tested without TensorRT) -------------------------------------------------------
def version_parts(version: str) -> tuple:
    """'10.3.0.26' -> (10, 3, 0, 26); '10.3' -> (10, 3, 0): the numbers a version string gives."""
    parts = []
    for text in str(version).split(".")[:4]:
        digits = "".join(itertools.takewhile(str.isdigit, text))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts + [0] * (3 - len(parts))) if parts else (-1, -1, -1)


# a version-compatible plan also loads on these later majors (NVIDIA's version-compatibility pages:
# "engines built with TensorRT 8 work with TensorRT 9 and TensorRT 10"; "built with TensorRT 10 work with 11")
VERSION_COMPATIBLE_MAJORS = {(8, 9), (8, 10), (9, 10), (10, 11)}


def version_loads(built: str, here: str, version_compatible: bool) -> bool:
    """Whether TensorRT `here` loads an engine built by `built`.

    A standard engine needs the exact version, build number included where both sides record it
    ('10.3.0.26' != '10.3.0.30').  A version-compatible one loads on the same or a later release of
    the same major, or of the next supported major (8.6 -> 10.x, 10.x -> 11.x)."""
    b, h = version_parts(built), version_parts(here)
    common = min(len(b), len(h))
    if b[:common] == h[:common]:
        return True
    if not version_compatible or h < b:
        return False
    return h[0] == b[0] or (b[0], h[0]) in VERSION_COMPATIBLE_MAJORS


def engine_mismatch(extra: dict, trt_version: Optional[str], gpu: dict, engine: str, rebuild: str) -> Optional[str]:
    """A sentence if the sidecar says this engine was built for another TensorRT or GPU, else None.

    TensorRT engines load only on the TensorRT version that built them (unless built
    version-compatible: see version_loads) and on the GPU model (compute capability, unless
    hardware-compatible) they were built for.
    """
    built_trt = extra.get("tensorrt_version")
    if built_trt and trt_version and not version_loads(built_trt, trt_version, bool(extra.get("version_compatible"))):
        if extra.get("version_compatible"):
            return (f"engine {engine} was built version-compatible by TensorRT {built_trt}, which TensorRT "
                    f"{trt_version} cannot load (only the same or a later release of that major, or of the next "
                    f"major: 8.6 -> 9 / 10, 10 -> 11): {rebuild}")
        return (f"engine {engine} was built by TensorRT {built_trt} but this machine has TensorRT "
                f"{trt_version}; engines only load on the exact version that built them: {rebuild}")
    built_cc = extra.get("compute_capability")
    here_cc = gpu.get("compute_capability")
    if built_cc and here_cc and built_cc not in ("unknown",) and not extra.get("hardware_compatible"):
        if str(built_cc) != str(here_cc):
            return (f"engine {engine} was built for {extra.get('gpu_name', 'another GPU')} (compute {built_cc}) "
                    f"but this GPU is {gpu.get('name', '?')} (compute {here_cc}); {rebuild}")
    return None


def explain_load_failure(errors: List[str], engine: str, extra: dict, trt_version: str, rebuild: str) -> str:
    """One sentence for a failed deserialize_cuda_engine, from what TensorRT logged."""
    text = " ".join(errors).lower()
    last = errors[-1].strip() if errors else "TensorRT gave no reason"
    if "plugin" in text:
        return (f"engine {engine} needs a TensorRT plugin this machine lacks ({last}); the EfficientNMS_TRT "
                f"plugin comes with TensorRT's libnvinfer_plugin - or export with `--nms onnx` and rebuild")
    if "version" in text and ("compatib" in text or "expecting" in text or "mismatch" in text):
        return (f"engine {engine} was built by another TensorRT version (built with "
                f"{extra.get('tensorrt_version', 'unknown')}, this is {trt_version}): {rebuild}")
    if "device" in text or "compute capability" in text or "sm " in text or "platform" in text:
        return f"engine {engine} was built for another GPU ({last}): {rebuild}"
    if "magic" in text or "serializ" in text or "corrupt" in text or "size" in text:
        return f"engine {engine} is not a readable TensorRT engine (truncated or corrupt: {last}); {rebuild}"
    return f"TensorRT cannot load engine {engine}: {last}"


def rebuild_hint(engine: str, extra: dict) -> str:
    onnx = extra.get("source_onnx") or "MODEL.onnx"
    return f"rebuild it here with `edge-edet build --onnx {onnx} --engine {engine}`"


# -- the back-end ---------------------------------------------------------------------------------
class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, path: str, device: int = 0, cuda_graph: bool = False, verbose: bool = False, **_ignored):
        self.path = path
        self.info: DeployInfo = read_sidecar(path)  # before TensorRT: a missing sidecar says how to make one
        extra = dict(self.info.extra or {})
        try:
            import tensorrt as trt
        except ImportError:
            raise EdgeEdetError(f"running {os.path.basename(path)} needs TensorRT, which is not installed here "
                                f"(JetPack on a Jetson; `pip install tensorrt` on a desktop GPU); "
                                f"or run the .onnx with ONNX Runtime") from None
        try:
            import pycuda.driver as cuda
        except ImportError:
            raise EdgeEdetError(f"the TensorRT back-end needs pycuda: {PYCUDA_HINT}") from None
        from ...contract.machine import gpu_info
        from ...contract.trt_logging import get_logger

        self.trt, self.cuda = trt, cuda
        self.trt_version = str(trt.__version__)
        rebuild = rebuild_hint(path, extra)
        self.gpu = gpu_info(device)
        problem = engine_mismatch(extra, self.trt_version, self.gpu, path, rebuild)
        if problem:
            raise EdgeEdetError(problem)
        with open(path, "rb") as handle:
            blob = handle.read()
        if not blob:
            raise EdgeEdetError(f"engine {path} is empty; {rebuild}")

        self._lock = threading.Lock()
        self.graph, self.context, self.engine, self.runtime = None, None, None, None
        self.device_buffers, self.host = {}, {}
        self._pinned_buffers = []
        self.context_cuda = None
        try:
            cuda.init()
            self.context_cuda = cuda.Device(device).make_context()  # current now; popped at the end of __init__
        except Exception as exc:  # no driver, no device N, device busy or out of memory
            raise EdgeEdetError(f"no usable CUDA device {device} for {os.path.basename(path)} ({exc}); "
                                f"`edge-edet doctor` shows what this machine has") from None
        try:
            self.logger = get_logger(trt, verbose)
            mark = self.logger.mark()
            trt.init_libnvinfer_plugins(self.logger, "")
            self.runtime = trt.Runtime(self.logger)
            if extra.get("version_compatible"):
                self.runtime.engine_host_code_allowed = True
            if extra.get("dla_core") is not None:  # IRuntime::setDLACore: "the DLA core that the deserialized
                # engine must execute on", set before loading it (tested on the stand-ins; needs a Jetson to confirm)
                self.runtime.DLA_core = int(extra["dla_core"])
            self.engine = self.runtime.deserialize_cuda_engine(blob)
            if self.engine is None:
                raise EdgeEdetError(explain_load_failure(self.logger.since(mark), path, extra, self.trt_version,
                                                         rebuild))
            self.plan = plan_buffers(self._tensor_specs(extra), self.info, path, self._profile_batch(extra))
            self.max_batch = self.plan.max_batch
            self.dynamic_batch = self.plan.dynamic_batch
            if cuda_graph and self.dynamic_batch:
                raise EdgeEdetError("--cuda-graph needs a static-batch engine (this one has a dynamic batch); "
                                    "build it without --batch or drop --cuda-graph")
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            for spec in [self.plan.input] + self.plan.outputs:
                self.host[spec.name] = cuda.pagelocked_empty(self.plan.shapes[spec.name], np.dtype(spec.dtype))
                self.device_buffers[spec.name] = cuda.mem_alloc(max(1, self.plan.nbytes(spec.name)))
                self.context.set_tensor_address(spec.name, int(self.device_buffers[spec.name]))
            self._batch = None
            self._set_batch(self.max_batch)
            if cuda_graph:
                self.graph = capture_or_none(self._enqueue_direct, self.stream)
        except BaseException:
            self.context_cuda.pop()  # close() pushes it again, frees everything in order, then detaches
            self.close()
            raise
        self.context_cuda.pop()

    # -- engine introspection --------------------------------------------------------------------
    def _tensor_specs(self, extra) -> List[TensorSpec]:
        trt, engine = self.trt, self.engine
        specs = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            specs.append(TensorSpec(name=name, is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                                    shape=tuple(int(d) for d in engine.get_tensor_shape(name)),
                                    dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name))
        return specs

    def _profile_batch(self, extra) -> Optional[tuple]:
        try:
            low, opt, high = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)
            return int(low[0]), int(opt[0]), int(high[0])
        except Exception:  # no profile (static engine), or a TensorRT without the name-based query
            profile = extra.get("batch_profile")
            return tuple(profile) if profile else None

    # -- execution (the context must be current: see _current) -----------------------------------
    def _set_batch(self, batch: int) -> None:
        if self.plan.dynamic_batch and batch != self._batch:
            if not self.context.set_input_shape(INPUT_NAME, self.plan.shape_at(INPUT_NAME, batch)):
                raise EdgeEdetError(f"TensorRT refused a batch of {batch} for {self.path}")
        self._batch = batch

    def _enqueue_direct(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise EdgeEdetError(f"TensorRT could not enqueue {self.path}: {' '.join(self.logger.errors[-1:])}")

    def _enqueue(self) -> None:
        if self.graph is not None:
            self.graph.launch()
        else:
            self._enqueue_direct()

    class _Current:
        def __init__(self, backend):
            self.backend = backend

        def __enter__(self):
            self.backend._lock.acquire()
            self.backend.context_cuda.push()

        def __exit__(self, *exc):
            try:
                self.backend.context_cuda.pop()
            finally:
                self.backend._lock.release()

    def _current(self):
        """Make this back-end's context current on the calling thread for one call."""
        return TensorRTBackend._Current(self)

    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != self.plan.input.shape[1:]:
            raise EdgeEdetError(f"the engine takes uint8 images {list(self.plan.shape_at(INPUT_NAME, 1)[1:])}, "
                                f"got {images.dtype} {list(images.shape)}")
        batch = images.shape[0]
        self.plan.check_batch(batch)
        cuda = self.cuda
        with self._current():
            self._set_batch(batch)
            host_in = images if self._is_pinned(images) else self.host[INPUT_NAME][:batch]
            if host_in is not images:  # a caller's own array: stage it in page-locked memory first
                np.copyto(host_in, images)
            cuda.memcpy_htod_async(self.device_buffers[INPUT_NAME], host_in, self.stream)
            self._enqueue()
            for name in self.plan.output_names:
                cuda.memcpy_dtoh_async(self.host[name][:batch], self.device_buffers[name], self.stream)
            self.stream.synchronize()
            return {name: self.host[name][:batch].copy() for name in self.plan.output_names}

    def allocate_input(self, batch: int) -> np.ndarray:
        """A page-locked input buffer: the letterbox writes the frame into it and infer() copies it to
        the GPU from there, with no staging copy (one host buffer per frame in flight)."""
        self.plan.check_batch(batch)
        with self._current():
            buffer = self.cuda.pagelocked_empty((batch,) + tuple(self.plan.shapes[INPUT_NAME][1:]), np.uint8)
        self._pinned_buffers.append(buffer)  # kept alive as long as the back-end
        return buffer

    def _is_pinned(self, images: np.ndarray) -> bool:
        """One of our page-locked buffers, or its first rows (a dynamic batch of fewer frames than the
        buffer holds: several sources, not all with a new frame).  A handful: one per batch in flight."""
        address = images.__array_interface__["data"][0]
        return images.flags.c_contiguous and any(
            address == buffer.__array_interface__["data"][0] and images.shape[0] <= buffer.shape[0]
            for buffer in self._pinned_buffers)

    def time_gpu(self, batch: int = 1, iterations: int = 100, warmup: int = 10) -> List[float]:
        """Milliseconds of GPU time per enqueue, measured with CUDA events (no host copies)."""
        self.plan.check_batch(batch)
        cuda = self.cuda
        times = []
        with self._current():
            self._set_batch(batch)
            start, end = cuda.Event(), cuda.Event()
            for _ in range(max(0, warmup)):
                self._enqueue()
            self.stream.synchronize()
            for _ in range(iterations):
                start.record(self.stream)
                self._enqueue()
                end.record(self.stream)
                end.synchronize()
                times.append(end.time_since(start))
            del start, end  # destroyed here, with their context current (pycuda leaks them otherwise)
        return times

    def describe(self) -> dict:
        extra = self.info.extra or {}
        return {"backend": self.name, "tensorrt": self.trt_version, "engine": os.path.basename(self.path),
                "gpu": self.gpu.get("name"), "compute_capability": self.gpu.get("compute_capability"),
                "precision": extra.get("engine_precision", self.info.precision),
                "layer_precision": extra.get("layer_precision_summary"), "built_with": extra.get("tensorrt_version"),
                "max_batch": self.max_batch, "dynamic_batch": self.dynamic_batch,
                "cuda_graph": self.graph is not None, "label": self.label()}

    def close(self) -> None:
        """Free the CUDA graph, the TensorRT objects and the buffers with the context current, then
        detach it while it is still current (pycuda then destroys it and pops it; detaching a context
        that is not current from another thread silently leaks it).  Written from pycuda's
        src/cpp/cuda.hpp and tested against a stand-in pycuda; not yet confirmed on a GPU."""
        context_cuda = getattr(self, "context_cuda", None)
        if context_cuda is None:
            return
        with self._lock:
            context_cuda.push()
            try:
                if getattr(self, "graph", None) is not None:
                    self.graph.close()
                    self.graph = None
                # TensorRT objects before the memory they point at (NVIDIA's order: context, engine, runtime)
                self.context = None
                self.engine = None
                self.runtime = None
                for buffer in getattr(self, "device_buffers", {}).values():
                    buffer.free()
                self.device_buffers, self.host = {}, {}
                self._pinned_buffers = []  # page-locked host memory, freed in context
                self.stream = None
            finally:
                self.context_cuda = None
                context_cuda.detach()

    def __del__(self):  # best effort; close() is the reliable way
        try:
            self.close()
        except Exception:
            pass


class CaptureError(RuntimeError):
    """The enqueue could not be captured into a CUDA graph (TensorRT: "not capturable")."""


def capture_or_none(enqueue, stream):
    """A CudaGraphReplay of `enqueue`, or None (plain enqueue) when the capture fails, as trtexec does.

    trtexec treats any failure during capture as "this engine is not capturable" and runs without a
    graph: cuStreamBeginCapture refusing, TensorRT's enqueue reporting an error while the stream is
    capturing (likely for engines with data-dependent shapes, such as the INMSLayer of `--nms onnx`),
    cuStreamEndCapture returning CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, or instantiation failing.
    So a failed capture is a warning, not an error.  Without cuda-python the user asked for
    something this install cannot do: that is an error naming the package."""
    try:
        return CudaGraphReplay(enqueue, stream)
    except CaptureError as exc:
        print(f"warning: --cuda-graph: {exc}; running with plain enqueue", file=sys.stderr)
        return None


class CudaGraphReplay:
    """Capture one TensorRT enqueue into a CUDA graph and replay it (cuda-python's driver API).

    TensorRT's guide: run the enqueue once before capturing (it may do deferred work), and capture
    only static shapes.  The I/O addresses are fixed at allocation time, so one capture holds.
    Every step's result is checked and a graph from a capture that failed anywhere is destroyed.
    Tested against a stand-in driver that fails at each step on request; needs a GPU to confirm
    which step a real engine with INMSLayer fails at.
    """

    def __init__(self, enqueue, stream):
        try:
            from cuda.bindings import driver
        except ImportError:
            try:
                from cuda import cuda as driver
            except ImportError:
                from ...contract.machine import cuda_python_hint  # the pin that fits this board (contract/jetpack.py)

                raise EdgeEdetError(f"--cuda-graph needs cuda-python: {cuda_python_hint()}") from None
        self.driver = driver
        self.stream = driver.CUstream(int(stream.handle))
        self.graph = self.exec = None
        enqueue()  # flush TensorRT's deferred setup outside the capture ...
        stream.synchronize()  # ... and let it finish before capturing (trtexec does the same)
        self._check(driver.cuStreamBeginCapture(self.stream, driver.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                    "begin capture")
        failure = None
        try:
            enqueue()
        except EdgeEdetError as exc:  # TensorRT refused to enqueue while the stream was capturing
            failure = exc
        finally:
            err, graph = driver.cuStreamEndCapture(self.stream)  # always end it: the stream is unusable otherwise
        if graph is not None and int(graph) != 0:
            self.graph = graph
        if failure is not None:
            self.close()
            raise CaptureError(f"the engine's enqueue failed while capturing ({failure})")
        if int(err) != 0:
            self.close()
            raise CaptureError(f"CUDA graph end capture failed ({err})")
        if self.graph is None:
            raise CaptureError("CUDA graph end capture returned no graph")
        if hasattr(driver, "cuGraphInstantiateWithFlags"):  # CUDA 11.x bindings; 12+ renamed it
            result = driver.cuGraphInstantiateWithFlags(self.graph, 0)
        else:
            result = driver.cuGraphInstantiate(self.graph, 0)
        if int(result[0]) != 0:
            self.close()
            raise CaptureError(f"CUDA graph instantiate failed ({result[0]})")
        self.exec = result[1]

    @staticmethod
    def _check(result, what: str):
        err = result[0]
        if int(err) != 0:
            raise CaptureError(f"CUDA graph {what} failed ({err})")

    def launch(self) -> None:
        err = self.driver.cuGraphLaunch(self.exec, self.stream)[0]
        if int(err) != 0:
            raise EdgeEdetError(f"CUDA graph launch failed ({err}); run without --cuda-graph")

    def close(self) -> None:
        if self.exec is not None:
            self.driver.cuGraphExecDestroy(self.exec)
        if self.graph is not None:
            self.driver.cuGraphDestroy(self.graph)
        self.exec = self.graph = None
