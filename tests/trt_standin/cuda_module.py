"""STAND-IN `pycuda.driver` and cuda-python `cuda.bindings.driver` for the TensorRT back-end's tests.

Not CUDA: device memory is host memory.  What it keeps from the real libraries is the part the
back-end can get wrong without a GPU, taken from pycuda's src/cpp/cuda.hpp:
  * a per-thread context stack: allocation, copies, streams and events need a current context
    ("no currently active context" otherwise);
  * `Context.detach()` of a context that is not current, from a thread other than the one that
    made it, cleans up nothing (pycuda silently skips it): recorded in `leaks`;
  * freeing an allocation or deleting an event whose context is not current on this thread is a
    failed clean-up (pycuda warns "... could not be cleaned up"): recorded in `leaks`.
The cuda-python stand-in captures a stream into a "graph" that replays the recorded enqueue, and
can be told to fail the capture (`fail_capture`), as an engine TensorRT cannot capture would.
"""
from __future__ import annotations

import itertools
import threading
import types

import numpy as np

_ids = itertools.count(0x7F0000001000, 0x1000)


class LogicError(RuntimeError):
    pass


def make_pycuda(device_name="Standin GPU", compute_capability=(8, 7), memory_mib=8192):
    """(pycuda package module, pycuda.driver module) stand-ins sharing one fake device."""
    local = threading.local()
    memory = {}  # address -> numpy uint8 array
    leaks = []
    contexts_alive = []

    def stack():
        if not hasattr(local, "stack"):
            local.stack = []
        return local.stack

    def current():
        return stack()[-1] if stack() else None

    def need_context(what):
        if current() is None:
            raise LogicError(f"{what} failed: no currently active context")
        return current()

    class Context:
        def __init__(self):
            self.thread = threading.get_ident()
            self.valid = True
            contexts_alive.append(self)

        def push(self):
            if not self.valid:
                raise LogicError("cannot push an invalid context")
            stack().append(self)

        @staticmethod
        def pop():
            if not stack():
                raise LogicError("context::pop: cannot pop non-current context")
            stack().pop()

        def detach(self):
            if not self.valid:
                raise LogicError("context::detach: cannot detach from invalid context")
            if current() is self:
                stack().pop()  # detach while current: destroyed, and popped implicitly
            elif self.thread != threading.get_ident():
                leaks.append("context detached out of thread while not current: not destroyed")
                self.valid = False
                return
            self.valid = False
            contexts_alive.remove(self)

    class Device:
        def __init__(self, index):
            if index >= 1:
                raise LogicError(f"cuDeviceGet failed: invalid device ordinal {index}")
            self.index = index

        @staticmethod
        def count():
            return 1

        def name(self):
            return device_name

        def compute_capability(self):
            return compute_capability

        def total_memory(self):
            return memory_mib << 20

        def make_context(self):
            context = Context()
            stack().append(context)
            return context

    class DeviceAllocation:
        def __init__(self, nbytes):
            self.context = need_context("cuMemAlloc")
            self.address = next(_ids)
            memory[self.address] = np.zeros(int(nbytes), np.uint8)

        def __int__(self):
            return self.address

        __index__ = __int__

        def free(self):
            if current() is not self.context:
                leaks.append("device allocation freed without its context current")
            memory.pop(self.address, None)

    class Stream:
        def __init__(self):
            need_context("cuStreamCreate")
            self.handle = next(_ids)
            self.captured = None

        def synchronize(self):
            need_context("cuStreamSynchronize")

    class Event:
        def __init__(self):
            self.context = need_context("cuEventCreate")

        def record(self, stream=None):
            need_context("cuEventRecord")

        def synchronize(self):
            need_context("cuEventSynchronize")

        def time_since(self, other):
            return 0.5

        def __del__(self):
            if current() is not self.context:
                leaks.append("event could not be cleaned up (context not current)")

    def init():
        return None

    def mem_alloc(nbytes):
        return DeviceAllocation(nbytes)

    def pagelocked_empty(shape, dtype):
        need_context("cuMemHostAlloc")
        return np.zeros(shape, dtype)

    def memcpy_htod_async(dest, src, stream=None):
        need_context("cuMemcpyHtoDAsync")
        raw = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        memory[int(dest)][:raw.size] = raw

    def memcpy_dtoh_async(dest, src, stream=None):
        need_context("cuMemcpyDtoHAsync")
        raw = dest.view(np.uint8).reshape(-1)
        raw[:] = memory[int(src)][:raw.size]

    driver = types.ModuleType("pycuda.driver", "STAND-IN pycuda.driver (host memory, no GPU)")
    for name, value in dict(init=init, Device=Device, Context=Context, mem_alloc=mem_alloc,
                            pagelocked_empty=pagelocked_empty, memcpy_htod_async=memcpy_htod_async,
                            memcpy_dtoh_async=memcpy_dtoh_async, Stream=Stream, Event=Event,
                            LogicError=LogicError).items():
        setattr(driver, name, value)
    driver._standin_memory = memory
    driver._standin_leaks = leaks
    driver._standin_contexts = contexts_alive
    driver._standin_stack = stack
    package = types.ModuleType("pycuda", "STAND-IN pycuda")
    package.driver = driver
    package.VERSION_TEXT = "standin"
    return package, driver


def device_writer(memory):
    """The stand-in execution context's 'kernel': one detection per image, written to the outputs."""

    def write(io, addresses, shapes, stream):
        images = next(t for t in io if t["input"])
        shape = shapes.get(images["name"], tuple(images["shape"]))
        batch = int(shape[0])
        pixels = memory[addresses[images["name"]]][: int(np.prod(shape))].reshape(shape)
        for tensor in io:
            if tensor["input"]:
                continue
            out_shape = (batch,) + tuple(tensor["shape"][1:])
            out = np.zeros(out_shape, tensor["dtype"])
            if tensor["name"] == "num_detections":
                out[:] = 1
            elif tensor["name"] == "detection_boxes":
                out[:, 0] = (1.0, 2.0, 10.0, 20.0)
            elif tensor["name"] == "detection_scores":
                out[:, 0] = pixels.reshape(batch, -1).mean(axis=1) / 255.0  # depends on the input: proves the copy in
            raw = out.view(np.uint8).reshape(-1)
            memory[addresses[tensor["name"]]][: raw.size] = raw

    return write


def make_cuda_python(fail_capture=False):
    """STAND-IN cuda-python `cuda.bindings.driver` with the stream-capture calls the back-end makes."""
    driver = types.ModuleType("cuda.bindings.driver", "STAND-IN cuda-python driver")
    calls = []

    class CUresult(int):
        pass

    class CUstream(int):
        pass

    mode = types.SimpleNamespace(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL=1)

    def cuStreamBeginCapture(stream, capture_mode):
        calls.append("begin")
        return (CUresult(900 if fail_capture else 0),)  # 900: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED

    def cuStreamEndCapture(stream):
        calls.append("end")
        return CUresult(0), "graph"

    def cuGraphInstantiate(graph, flags):
        calls.append("instantiate")
        return CUresult(0), "exec"

    def cuGraphLaunch(graph_exec, stream):
        calls.append("launch")
        return (CUresult(0),)

    def cuGraphExecDestroy(graph_exec):
        calls.append("exec destroy")
        return (CUresult(0),)

    def cuGraphDestroy(graph):
        calls.append("graph destroy")
        return (CUresult(0),)

    for name, value in dict(CUstream=CUstream, CUstreamCaptureMode=mode, cuStreamBeginCapture=cuStreamBeginCapture,
                            cuStreamEndCapture=cuStreamEndCapture, cuGraphInstantiate=cuGraphInstantiate,
                            cuGraphLaunch=cuGraphLaunch, cuGraphExecDestroy=cuGraphExecDestroy,
                            cuGraphDestroy=cuGraphDestroy).items():
        setattr(driver, name, value)
    driver._standin_calls = calls
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver = driver
    cuda = types.ModuleType("cuda")
    cuda.bindings = bindings
    return cuda, bindings, driver
