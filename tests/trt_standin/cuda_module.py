"""STAND-IN `pycuda.driver` and cuda-python `cuda.bindings.driver` for the TensorRT back-end's tests.

Not CUDA: device memory is host memory.  What it keeps from the real libraries is the part the
back-end can get wrong without a GPU:
  * asynchrony: `memcpy_htod_async`, `memcpy_dtoh_async`, a TensorRT enqueue and a graph launch are
    queued on their stream and run only when the host waits for them (`Stream.synchronize()`,
    `Event.synchronize()` of an event recorded after them, `Context.synchronize()`), reading the
    host buffer at that moment, as a DMA engine does.  Reading outputs before the wait reads stale
    memory, and changing an input buffer before the copy ran changes what the GPU sees;
  * pycuda's context rules (src/cpp/cuda.hpp): a per-thread context stack, so allocations, copies,
    streams and events need a current context ("no currently active context" otherwise);
    `Context.detach()` of a context that is not current, from another thread, destroys nothing;
    freeing memory or deleting an event without its context current is a failed clean-up
    (pycuda warns "... could not be cleaned up"): both recorded in `leaks`;
  * stream capture (cuda-python): work enqueued on a capturing stream is recorded into a graph, not
    run; a launch replays it.  `fail_at` makes one step fail as CUDA or TensorRT would: "begin"
    (cuStreamBeginCapture: not capturable), "enqueue" (TensorRT's enqueue refuses to be captured and
    returns False; the capture itself still ends with a graph), "end" (cuStreamEndCapture:
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, no graph), "instantiate" (cuGraphInstantiate fails).
    Graphs and executable graphs alive are counted, so a leaked graph is seen.
"""
from __future__ import annotations

import itertools
import threading
import types
from typing import Callable, Dict, List, Optional

import numpy as np

_ids = itertools.count(0x7F0000001000, 0x1000)
CUDA_SUCCESS = 0
CUDA_ERROR_INVALID_VALUE = 1
CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900
CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901


class LogicError(RuntimeError):
    pass


class Gpu:
    """The one stand-in device: memory, per-stream queues of pending work, stream capture."""

    def __init__(self):
        self.memory: Dict[int, np.ndarray] = {}
        self.queues: Dict[int, List[Callable[[], None]]] = {}
        self.captures: Dict[int, List[Callable[[], None]]] = {}
        self.fail_enqueue_while_capturing = False
        self.lock = threading.RLock()

    def enqueue(self, handle: int, work: Callable[[], None]) -> None:
        with self.lock:
            if handle in self.captures:
                self.captures[handle].append(work)
            else:
                self.queues.setdefault(handle, []).append(work)

    def capturing(self, handle: int) -> bool:
        return handle in self.captures

    def run(self, handle: int, until: Optional[Callable[[], None]] = None) -> None:
        """Run the stream's pending work in order (up to and including `until`, if given)."""
        with self.lock:
            queue = self.queues.setdefault(handle, [])
            while queue:
                work = queue.pop(0)
                work()
                if work is until:
                    return

    def run_all(self) -> None:
        for handle in list(self.queues):
            self.run(handle)

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())


def make_pycuda(device_name="Standin GPU", compute_capability=(8, 7), memory_mib=8192, gpu: Optional[Gpu] = None):
    """(pycuda package module, pycuda.driver module) stand-ins on one stand-in GPU (driver._standin_gpu)."""
    gpu = gpu or Gpu()
    local = threading.local()
    memory = gpu.memory
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

        @staticmethod
        def synchronize():
            need_context("cuCtxSynchronize")
            gpu.run_all()

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

        def synchronize(self):
            need_context("cuStreamSynchronize")
            gpu.run(self.handle)

    class Event:
        def __init__(self):
            self.context = need_context("cuEventCreate")
            self.marker = None
            self.stream = None
            self.done = False

        def record(self, stream=None):
            need_context("cuEventRecord")
            self.stream = stream.handle if stream is not None else 0
            self.done = False

            def marker():
                self.done = True

            self.marker = marker
            gpu.enqueue(self.stream, marker)
            return self

        def synchronize(self):
            need_context("cuEventSynchronize")
            if self.marker is not None and not self.done:
                gpu.run(self.stream, until=self.marker)
            return self

        def query(self):
            return self.done

        def time_since(self, other):
            if not (self.done and other.done):
                raise LogicError("cuEventElapsedTime failed: device not ready (an event has not completed)")
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
        address = int(dest)

        def copy():  # reads the host buffer when the copy runs, not when it is queued
            raw = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
            memory[address][:raw.size] = raw

        gpu.enqueue(stream.handle if stream is not None else 0, copy)

    def memcpy_dtoh_async(dest, src, stream=None):
        need_context("cuMemcpyDtoHAsync")
        address = int(src)

        def copy():
            raw = dest.view(np.uint8).reshape(-1)
            raw[:] = memory[address][:raw.size]

        gpu.enqueue(stream.handle if stream is not None else 0, copy)

    driver = types.ModuleType("pycuda.driver", "STAND-IN pycuda.driver (host memory, no GPU)")
    for name, value in dict(init=init, Device=Device, Context=Context, mem_alloc=mem_alloc,
                            pagelocked_empty=pagelocked_empty, memcpy_htod_async=memcpy_htod_async,
                            memcpy_dtoh_async=memcpy_dtoh_async, Stream=Stream, Event=Event,
                            LogicError=LogicError).items():
        setattr(driver, name, value)
    driver._standin_gpu = gpu
    driver._standin_memory = memory
    driver._standin_leaks = leaks
    driver._standin_contexts = contexts_alive
    driver._standin_stack = stack
    package = types.ModuleType("pycuda", "STAND-IN pycuda")
    package.driver = driver
    package.VERSION_TEXT = "standin"
    return package, driver


def make_cuda_python(gpu: Gpu, fail_at: Optional[str] = None):
    """STAND-IN cuda-python `cuda.bindings.driver` with the stream-capture calls the back-end makes.

    Returns (cuda package, cuda.bindings, cuda.bindings.driver); driver._standin_calls lists the calls,
    driver._standin_graphs / _standin_execs the graphs still alive."""
    if fail_at not in (None, "begin", "enqueue", "end", "instantiate"):
        raise ValueError(f"fail_at {fail_at!r}")
    driver = types.ModuleType("cuda.bindings.driver", "STAND-IN cuda-python driver")
    calls, graphs, execs = [], {}, {}
    gpu.fail_enqueue_while_capturing = fail_at == "enqueue"

    class CUresult(int):
        pass

    class CUstream(int):
        pass

    class CUgraph(int):
        pass

    class CUgraphExec(int):
        pass

    mode = types.SimpleNamespace(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL=1)

    def cuStreamBeginCapture(stream, capture_mode):
        calls.append("begin")
        if fail_at == "begin":
            return (CUresult(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED),)
        gpu.captures[int(stream)] = []
        return (CUresult(CUDA_SUCCESS),)

    def cuStreamEndCapture(stream):
        calls.append("end")
        work = gpu.captures.pop(int(stream), None)
        if work is None:
            return CUresult(CUDA_ERROR_INVALID_VALUE), CUgraph(0)
        if fail_at == "end":
            return CUresult(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED), CUgraph(0)
        graph = CUgraph(next(_ids))
        graphs[int(graph)] = work
        return CUresult(CUDA_SUCCESS), graph

    def cuGraphInstantiate(graph, flags):
        calls.append("instantiate")
        if fail_at == "instantiate" or int(graph) not in graphs:
            return CUresult(CUDA_ERROR_INVALID_VALUE), CUgraphExec(0)
        exec_ = CUgraphExec(next(_ids))
        execs[int(exec_)] = list(graphs[int(graph)])
        return CUresult(CUDA_SUCCESS), exec_

    def cuGraphLaunch(graph_exec, stream):
        calls.append("launch")
        if int(graph_exec) not in execs:
            return (CUresult(CUDA_ERROR_INVALID_VALUE),)
        for work in execs[int(graph_exec)]:
            gpu.enqueue(int(stream), work)
        return (CUresult(CUDA_SUCCESS),)

    def cuGraphExecDestroy(graph_exec):
        calls.append("exec destroy")
        return (CUresult(CUDA_SUCCESS if execs.pop(int(graph_exec), None) is not None else CUDA_ERROR_INVALID_VALUE),)

    def cuGraphDestroy(graph):
        calls.append("graph destroy")
        return (CUresult(CUDA_SUCCESS if graphs.pop(int(graph), None) is not None else CUDA_ERROR_INVALID_VALUE),)

    for name, value in dict(CUresult=CUresult, CUstream=CUstream, CUgraph=CUgraph, CUgraphExec=CUgraphExec,
                            CUstreamCaptureMode=mode, cuStreamBeginCapture=cuStreamBeginCapture,
                            cuStreamEndCapture=cuStreamEndCapture, cuGraphInstantiate=cuGraphInstantiate,
                            cuGraphLaunch=cuGraphLaunch, cuGraphExecDestroy=cuGraphExecDestroy,
                            cuGraphDestroy=cuGraphDestroy).items():
        setattr(driver, name, value)
    driver._standin_calls = calls
    driver._standin_graphs = graphs
    driver._standin_execs = execs
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver = driver
    cuda = types.ModuleType("cuda")
    cuda.bindings = bindings
    return cuda, bindings, driver
