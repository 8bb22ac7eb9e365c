"""The builder's and the TensorRT back-end's real code against a STAND-IN TensorRT per real version.

Each stand-in (tests/trt_standin) is generated from the API that version's real Python bindings
report about themselves (the wheel imported here with stub NVIDIA libraries; recorded once and
cached): its classes, pybind11 signatures, properties and enums are exactly that version's, so a
flow that reaches for a name its version lacks, passes an argument pybind11 would refuse, calls a
property or assigns a method fails here with the version in the message.  The stand-in builds no
kernels; the flows' TensorRT calls, arguments, types and order are what is checked.  pycuda and
cuda-python are stand-ins too (host memory, asynchronous until synchronized, context rules kept).
Skipped with the reason when the wheels cannot be had, except under CI=true, where that fails.
"""
import json
import os
import re
import sys
import threading

import numpy as np
import pytest

from test_engine_build import make_onnx
from trt_standin import VERSIONS, api_or_skip, build_module
from trt_standin.calls import PROJECT_CALLS
from trt_standin.cuda_module import make_cuda_python, make_pycuda

from edge_edet.engine.builder import build_engine
from edge_edet.engine.plan import BuildOptions
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import read_sidecar

DLA_VERSIONS = {"8.6.1", "10.3.0", "10.7.0"}  # the recorded versions with DLA (11.4.1 has no bindings wheel)


@pytest.fixture(params=list(VERSIONS), scope="module")
def api(request):
    return api_or_skip(request.param)


def fp16_converter_standin(onnx_path, engine_path, log):
    """Stand-in for the precision module's FP16 converter (which wants a real network; the tiny
    graphs here have none): writes the tiny FP16 graph.  The real conversion is tested in
    test_engine_build.py on an exported model."""
    target = os.path.splitext(engine_path)[0] + "_fp16.onnx"
    return make_onnx(target, precision="fp16", dynamic="dyn" in os.path.basename(onnx_path), batch=4
                     if "dyn" in os.path.basename(onnx_path) else 1)


def install(api, monkeypatch):
    """The stand-in tensorrt of one version, with stand-in pycuda on one stand-in GPU, installed as the
    real modules for the rest of the test."""
    monkeypatch.setattr("edge_edet.engine.builder.convert_to_fp16", fp16_converter_standin)
    module = build_module(api)
    package, driver = make_pycuda()
    module._standin_gpu = driver._standin_gpu
    module._standin_pycuda = driver
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    return module


@pytest.fixture
def trt(api, monkeypatch):
    return install(api, monkeypatch)


def major(trt):
    return int(trt.__version__.split(".")[0])


def build(tmp_path, name="m", log=None, **kwargs):
    engine = str(tmp_path / f"{name}.trt")
    lines = []
    result = build_engine(BuildOptions(onnx=kwargs.pop("onnx"), engine=engine, **kwargs),
                          log=log or lines.append)
    result.lines = lines
    return result


def cache_file(tmp_path, header="TRT-8502-EntropyCalibration2"):
    path = tmp_path / "m.calib"
    path.write_text(f"{header}\nimages: 3c010a14\nx: 3d8a3d71\n")
    return str(path)


# -- the stand-in itself: pybind11's rules on the real signatures --------------------------------------------
def test_the_standin_refuses_what_pybind11_refuses(trt, tmp_path):
    """Each call below is one the real bindings of this version refuse; the stand-in must refuse it too,
    naming the version (a conformance suite that let these through would prove nothing)."""
    import pathlib

    builder = trt.Builder(trt.Logger())
    config = builder.create_builder_config()
    parser = trt.OnnxParser(builder.create_network(0), trt.Logger())
    onnx_path = make_onnx(tmp_path / "m.onnx")
    workspace = trt.MemoryPoolType.WORKSPACE
    cases = {
        "a str for an int": lambda: config.set_memory_pool_limit(workspace, str(1 << 20)),
        "a float for an int": lambda: config.set_memory_pool_limit(workspace, 1.5e6),
        "a missing argument": lambda: config.set_memory_pool_limit(workspace),
        "an unknown keyword": lambda: parser.parse_from_file(path=onnx_path),
        "too many arguments": lambda: parser.parse_from_file(onnx_path, True),
        "a Path for a str": lambda: parser.parse_from_file(pathlib.Path(onnx_path)),
        "an enum of another type": lambda: config.set_flag(trt.DeviceType.DLA),
        "None where not optional": lambda: config.set_flag(None),
        "an int for an enum": lambda: config.set_flag(0),
        "a property called": lambda: parser.num_errors(),
        "a method assigned": lambda: setattr(config, "set_flag", None),
        "a read-only property set": lambda: setattr(builder, "num_DLA_cores", 1),
        "an unknown attribute set": lambda: setattr(config, "not_a_tensorrt_name", 1),
        "an absent enum member": lambda: trt.BuilderFlag.NOT_A_FLAG,
        "an absent method": lambda: config.set_not_a_method(),
        "a class without constructor": lambda: trt.IBuilderConfig(),
        "an auto-named keyword": lambda: trt.Dims([1, 2]).__getitem__(arg0=0),
        "a wrong property value": lambda: setattr(config, "profiling_verbosity", "DETAILED"),
    }
    for what, call in cases.items():
        with pytest.raises((TypeError, AttributeError), match=re.escape(trt.__version__)):
            call()
            pytest.fail(f"the stand-in accepted {what}")

    class NoBaseInit(trt.ILogger):
        def __init__(self):  # forgets trt.ILogger.__init__(self): pybind11 refuses the object
            pass

    with pytest.raises(TypeError, match="must be called"):
        NoBaseInit()


def test_calls_the_real_bindings_accept_pass(trt, tmp_path):
    """The other half: what pybind11 takes (its own keyword names, ints with __index__, buffers, lists for
    Dims, positional or keyword) the stand-in takes too."""
    builder = trt.Builder(logger=trt.Logger(trt.Logger.WARNING))
    config = builder.create_builder_config()
    network = builder.create_network(flags=0)
    parser = trt.OnnxParser(network=network, logger=trt.Logger())
    assert parser.parse_from_file(model=make_onnx(tmp_path / "m.onnx")) is True
    config.set_memory_pool_limit(pool=trt.MemoryPoolType.WORKSPACE, pool_size=np.int64(1 << 20))
    config.set_flag(flag=trt.BuilderFlag.GPU_FALLBACK)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", min=[1, 64, 64, 3], opt=(1, 64, 64, 3), max=trt.Dims([1, 64, 64, 3]))
    for blob in (b"", bytearray(), memoryview(b"")):
        assert isinstance(config.create_timing_cache(serialized_timing_cache=blob), trt.ITimingCache)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED


def test_return_types_are_the_real_ones(trt, tmp_path):
    """Dims, not a tuple; IHostMemory, not bytes; None (a null pointer) for a corrupt timing cache."""
    logger = trt.Logger()
    builder = trt.Builder(logger)
    network = builder.create_network(0 if major(trt) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    trt.OnnxParser(network, logger).parse_from_file(make_onnx(tmp_path / "m.onnx"))
    config = builder.create_builder_config()
    serialized = builder.build_serialized_network(network, config)
    assert isinstance(serialized, trt.IHostMemory) and not isinstance(serialized, (bytes, bytearray))
    assert serialized.nbytes == len(bytes(serialized)) > 0
    with pytest.raises(TypeError):
        len(serialized)  # a buffer, not a sequence
    engine = trt.Runtime(logger).deserialize_cuda_engine(serialized)
    shape = engine.get_tensor_shape("images")
    assert isinstance(shape, trt.Dims) and not isinstance(shape, tuple) and tuple(shape) == (1, 64, 64, 3)
    assert shape == (1, 64, 64, 3) and shape[1:] == (64, 64, 3)
    assert config.create_timing_cache(b"\x00 not a timing cache") is None
    assert isinstance(config.create_timing_cache(b"").serialize(), trt.IHostMemory)


# -- builds ------------------------------------------------------------------------------------------
def test_fp32_build(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"))
    assert result.precision == "fp32" and result.layer_counts["int8"] == 0
    extra = read_sidecar(result.engine).extra
    assert extra["tensorrt_version"] == trt.__version__ and extra["engine_precision"] == "fp32"


def test_fp16_flag_path_and_conversion(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), precision="fp16")
    assert result.precision == "fp16"
    if major(trt) >= 11:
        assert result.plan.convert_fp16 and not result.plan.builder_flags
    else:
        assert result.plan.builder_flags == ["FP16"]


def test_fp16_graph_strongly_typed(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx", precision="fp16"))
    assert result.precision == "fp16"
    assert result.plan.strongly_typed is (major(trt) >= 10)


def test_int8_from_a_calibration_cache(trt, tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx")
    if major(trt) >= 11:
        with pytest.raises(EdgeEdetError, match="removed implicit INT8"):
            build(tmp_path, onnx=onnx_path, precision="int8", calib_cache=cache_file(tmp_path))
        return
    # a MinMax cache written for another TensorRT: the builder must still serve it to IInt8EntropyCalibrator2
    result = build(tmp_path, onnx=onnx_path, precision="int8",
                   calib_cache=cache_file(tmp_path, "TRT-8502-MinMaxCalibration"))
    assert result.precision == "int8" and result.layer_counts["int8"] >= 1


def test_legacy_int8_builds_where_deprecation_warnings_are_errors(trt, tmp_path):
    """TensorRT 10.1+ deprecates the calibrator path and its bindings warn through Python: with warnings
    turned into errors (python -W error, pytest filterwarnings) the 10.x INT8-from-cache build must still work."""
    import warnings

    if major(trt) >= 11:  # no calibrator path at all: refused by the plan before TensorRT is touched
        with pytest.raises(EdgeEdetError, match="removed implicit INT8"):
            build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), precision="int8", calib_cache=cache_file(tmp_path))
        return

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), precision="int8", calib_cache=cache_file(tmp_path))
    assert result.precision == "int8"
    if trt.__version__ != "8.6.1":  # the stand-in does warn, as the 10.x bindings do
        with pytest.warns(DeprecationWarning, match="int8_calibrator"):
            trt.Builder(trt.Logger()).create_builder_config().int8_calibrator = None


def test_qdq_graph(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx", precision="int8"))
    assert result.precision == "int8"


def test_int8_fp16_graph_builds_int8_with_fp16_layers(trt, tmp_path):
    """`calibrate --fp16`: strongly typed TensorRT builds the float layers between the INT8 ones in FP16;
    an engine whose float layers came out FP32 is refused.  TensorRT 8.x cannot parse it (opset 19)."""
    onnx_path = make_onnx(tmp_path / "m.onnx", precision="int8_fp16")
    if major(trt) < 10:
        with pytest.raises(EdgeEdetError, match="calibrate without --fp16"):
            build(tmp_path, onnx=onnx_path)
        return
    result = build(tmp_path, onnx=onnx_path)
    assert result.precision == "int8" and result.layer_counts["int8"] >= 1 and result.layer_counts["fp16"] >= 1
    plain = build(tmp_path, name="plain", onnx=make_onnx(tmp_path / "p.onnx", precision="int8"))
    assert plain.layer_counts["fp16"] == 0 and plain.layer_counts["fp32"] >= 1  # what strong typing does to Q/DQ alone
    trt._standin_drop_fp16_compute = True
    with pytest.raises(EdgeEdetError, match="no FP16 layer"):
        build(tmp_path, name="lost", onnx=onnx_path)


def test_dynamic_batch_profile(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4), precision="fp16",
                   batch=(1, 2, 4))
    info = read_sidecar(result.engine)
    assert info.dynamic_batch and info.batch == 4 and info.extra["batch_profile"] == [1, 2, 4]


def test_dla_on_and_off(trt, tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx", precision="fp16")
    if trt.__version__ not in DLA_VERSIONS:
        with pytest.raises(EdgeEdetError, match="DLA"):
            build(tmp_path, onnx=onnx_path, dla_core=0, gpu_fallback=True)
        return
    result = build(tmp_path, onnx=onnx_path, dla_core=1, gpu_fallback=True)
    assert read_sidecar(result.engine).extra["dla_core"] == 1
    with pytest.raises(EdgeEdetError, match="--dla-core 2 does not exist"):
        build(tmp_path, name="m2", onnx=onnx_path, dla_core=2)
    assert read_sidecar(build(tmp_path, name="gpu", onnx=onnx_path).engine).extra["dla_core"] is None


def test_timing_cache_saved_reused_and_a_corrupt_one_replaced(trt, tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx")
    cache = tmp_path / "t.cache"
    first = build(tmp_path, onnx=onnx_path, timing_cache=str(cache))
    assert cache.read_bytes() and os.path.isfile(first.engine)
    second = build(tmp_path, name="again", onnx=onnx_path, timing_cache=str(cache))
    assert any("bytes loaded" in line for line in second.lines)
    cache.write_bytes(b"\x00garbage")  # corrupt: create_timing_cache returns None
    third = build(tmp_path, name="corrupt", onnx=onnx_path, timing_cache=str(cache))
    assert any("corrupt" in line or "cannot use" in line for line in third.lines)
    assert os.path.isfile(third.engine) and cache.read_bytes().startswith(b"EDGE_EDET_STANDIN_TIMING")


def test_a_timing_cache_that_fails_to_serialize_does_not_cost_the_engine(trt, tmp_path):
    trt._standin_timing_serialize_fails = True
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), timing_cache=str(tmp_path / "t.cache"))
    assert os.path.isfile(result.engine) and os.path.isfile(result.engine + ".json")
    assert any("timing cache was not saved" in line for line in result.lines)
    assert not (tmp_path / "t.cache").exists()


def test_foreign_timing_cache_falls_back_to_an_empty_one(trt, tmp_path):
    cache = tmp_path / "t.cache"
    cache.write_bytes(b"EDGE_EDET_STANDIN_TIMING\n" + json.dumps({"device": "other-gpu", "entries": {}}).encode())
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), timing_cache=str(cache))
    assert any("another GPU or TensorRT" in line for line in result.lines)
    assert b"standin-gpu" in cache.read_bytes()


def test_progress_monitor_or_heartbeat(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"))
    phases = [line for line in result.lines if "steps)" in line]
    if major(trt) >= 10:
        assert result.plan.progress_monitor and phases and "Building engine (2 steps)" in phases[0]
    else:
        assert not result.plan.progress_monitor and not phases


def test_version_compatible_build_loads_back(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), version_compatible=True)
    assert read_sidecar(result.engine).extra["version_compatible"] is True


def test_a_silent_fp32_engine_is_refused_for_every_version(trt, tmp_path):
    trt._standin_force_fp32 = True
    with pytest.raises(EdgeEdetError, match="all .* layers run in FP32"):
        build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"), precision="fp16")
    assert not (tmp_path / "m.trt").exists()


# -- the TensorRT back-end -------------------------------------------------------------------------------
def backend_for(tmp_path, **kwargs):
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx", **kwargs.pop("graph", {})), **kwargs)
    return TensorRTBackend(result.engine)


def test_backend_loads_plans_buffers_and_infers_from_a_worker_thread(trt, tmp_path):
    backend = backend_for(tmp_path)
    assert backend.max_batch == 1 and not backend.dynamic_batch
    images = np.full((1, 64, 64, 3), 51, np.uint8)
    out = {}
    worker = threading.Thread(target=lambda: out.update(backend.infer(images)))
    worker.start()
    worker.join()
    assert out["num_detections"].tolist() == [[1]]
    assert out["detection_boxes"][0, 0].tolist() == [1.0, 2.0, 10.0, 20.0]
    assert out["detection_scores"][0, 0] == pytest.approx(0.2)  # 51/255: the input reached the device
    driver = trt._standin_pycuda
    assert len(backend.time_gpu(batch=1, iterations=3, warmup=1)) == 3
    backend.close()
    assert driver._standin_leaks == [] and driver._standin_contexts == []


def test_backend_dynamic_batch(trt, tmp_path):
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    result = build(tmp_path, onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4), precision="fp16",
                   batch=(1, 2, 4))
    backend = TensorRTBackend(result.engine)
    assert backend.dynamic_batch and backend.max_batch == 4
    out = backend.infer(np.zeros((3, 64, 64, 3), np.uint8))
    assert out["num_detections"].shape == (3, 1)
    buffer = backend.allocate_input(4)  # sized for four sources; a call with two reads its first rows
    buffer[:2] = 51
    assert backend._is_pinned(buffer[:2]) and not backend._is_pinned(buffer[1:3])
    assert not backend._is_pinned(np.zeros((2, 64, 64, 3), np.uint8))
    out = backend.infer(buffer[:2])
    assert out["num_detections"].shape == (2, 1) and out["detection_scores"][1, 0] == pytest.approx(0.2)
    backend.close()


def test_backend_closed_from_another_thread_leaks_nothing(trt, tmp_path):
    backend = backend_for(tmp_path)
    closer = threading.Thread(target=backend.close)
    closer.start()
    closer.join()
    driver = trt._standin_pycuda
    assert driver._standin_leaks == [] and driver._standin_contexts == []


def test_a_dla_engine_is_loaded_on_the_core_it_was_built_for(trt, tmp_path):
    """TensorRT runs a deserialized DLA engine on Runtime.DLA_core, which must be set before loading."""
    if trt.__version__ not in DLA_VERSIONS:  # refused before any engine exists
        with pytest.raises(EdgeEdetError, match="DLA"):
            backend_for(tmp_path, graph={"precision": "fp16"}, dla_core=1, gpu_fallback=True)
        return
    backend = backend_for(tmp_path, graph={"precision": "fp16"}, dla_core=1, gpu_fallback=True)
    assert backend.engine._data["loaded_on_dla_core"] == 1
    backend.close()
    (tmp_path / "gpu").mkdir()
    gpu_only = backend_for(tmp_path / "gpu")
    assert gpu_only.engine._data["loaded_on_dla_core"] == -1  # a GPU engine leaves the runtime's default alone
    gpu_only.close()


def test_outputs_are_read_only_after_the_stream_has_finished(trt, tmp_path):
    """The stand-in GPU runs queued copies and kernels only when the host waits: results read before
    stream.synchronize() would be stale.  Two different inputs in a row must give their own scores."""
    backend = backend_for(tmp_path)
    first = backend.infer(np.full((1, 64, 64, 3), 51, np.uint8))
    second = backend.infer(np.full((1, 64, 64, 3), 204, np.uint8))
    assert first["detection_scores"][0, 0] == pytest.approx(0.2) and second["detection_scores"][0, 0] == pytest.approx(0.8)
    assert trt._standin_gpu.pending() == 0  # nothing left queued once infer returned
    backend.close()


def test_backend_init_failure_cleans_up_through_close(trt, tmp_path):
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    result = build(tmp_path, onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4), precision="fp16",
                   batch=(1, 2, 4))
    with pytest.raises(EdgeEdetError, match="--cuda-graph needs a static-batch"):
        TensorRTBackend(result.engine, cuda_graph=True)
    driver = trt._standin_pycuda
    assert driver._standin_leaks == [] and driver._standin_contexts == [] and driver._standin_stack() == []


def install_cuda_python(trt, monkeypatch, fail_at=None):
    cuda, bindings, driver = make_cuda_python(trt._standin_gpu, fail_at=fail_at)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", driver)
    return driver


@pytest.mark.parametrize("fail_at", [None, "begin", "enqueue", "end", "instantiate"])
def test_cuda_graph_capture_or_plain_enqueue_whatever_step_fails(trt, tmp_path, monkeypatch, capsys, fail_at):
    """trtexec's rule: any failure while capturing (TensorRT's enqueue refusing, cuStreamEndCapture
    invalidated, cuGraphInstantiate failing) means "not capturable": run without a graph, and destroy
    whatever graph the failed capture left."""
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    driver = install_cuda_python(trt, monkeypatch, fail_at)
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"))
    backend = TensorRTBackend(result.engine, cuda_graph=True)
    assert (backend.graph is None) is (fail_at is not None) and backend.describe()["cuda_graph"] is (fail_at is None)
    if fail_at is not None:
        assert "--cuda-graph" in capsys.readouterr().err and not driver._standin_graphs and not driver._standin_execs
    out = backend.infer(np.full((1, 64, 64, 3), 102, np.uint8))
    assert out["num_detections"].tolist() == [[1]] and out["detection_scores"][0, 0] == pytest.approx(0.4)
    assert ("launch" in driver._standin_calls) is (fail_at is None)
    backend.close()
    assert not driver._standin_graphs and not driver._standin_execs  # nothing left alive on the device


# -- what the flows touched is what the API table lists ----------------------------------------------------
def exercise_flows(trt, tmp_path, monkeypatch):
    """Every TensorRT flow of the project once, on one version's stand-in: builds of each kind, the
    back-end (static, dynamic, CUDA graph, DLA where the version has it) and the doctor's plugin probe."""
    from edge_edet.contract.machine import efficient_nms_available
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    efficient_nms_available()
    onnx_path = make_onnx(tmp_path / "m.onnx")
    build(tmp_path, name="fp32", onnx=onnx_path, timing_cache=str(tmp_path / "t.cache"))
    build(tmp_path, name="fp32_again", onnx=onnx_path, timing_cache=str(tmp_path / "t.cache"))
    build(tmp_path, name="fp16", onnx=onnx_path, precision="fp16")
    build(tmp_path, name="qdq", onnx=make_onnx(tmp_path / "q.onnx", precision="int8"))
    build(tmp_path, name="vc", onnx=onnx_path, version_compatible=True, hardware_compatible=True)
    if major(trt) < 11:
        build(tmp_path, name="int8", onnx=onnx_path, precision="int8", calib_cache=cache_file(tmp_path))
    dynamic = build(tmp_path, name="dyn", onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4),
                    precision="fp16", batch=(1, 2, 4))
    backend = TensorRTBackend(dynamic.engine)
    backend.infer(np.zeros((3, 64, 64, 3), np.uint8))
    backend.close()
    install_cuda_python(trt, monkeypatch)
    backend = TensorRTBackend(build(tmp_path, name="graph", onnx=onnx_path).engine, cuda_graph=True)
    backend.infer(np.zeros((1, 64, 64, 3), np.uint8))
    backend.time_gpu(batch=1, iterations=2, warmup=1)
    backend.close()
    if trt.__version__ in DLA_VERSIONS:
        dla = build(tmp_path, name="dla", onnx=make_onnx(tmp_path / "h.onnx", precision="fp16"), dla_core=1,
                    gpu_fallback=True)
        TensorRTBackend(dla.engine).close()


def test_api_table_lists_every_call_the_flows_make(trt, tmp_path, monkeypatch):
    """docs/tensorrt_api.md lists tests/trt_standin/calls.py: every TensorRT name the flows touch must be
    there.  Runs the flows itself, so it holds alone (-k, a split run) as well as in the whole file."""
    exercise_flows(trt, tmp_path, monkeypatch)
    used = trt._standin_access.used
    listed = {(owner, name) for owner, name, _ in PROJECT_CALLS}
    assert len(used) > 40, f"the flows touched only {sorted(used)}"
    assert used <= listed, f"calls missing from tests/trt_standin/calls.py: {sorted(used - listed)}"


def test_one_tensorrt_logger_for_the_probe_the_builder_and_the_backend(trt, tmp_path):
    """TensorRT keeps the first logger it is given: the doctor probe must not hand it a temporary one,
    and a later build's errors must reach the logger the builder reads."""
    from edge_edet.contract.machine import efficient_nms_available
    from edge_edet.contract.trt_logging import get_logger

    assert efficient_nms_available() is True
    logger = get_logger(trt)
    assert trt._standin_state["plugin_logger"] is logger
    backend_for(tmp_path).close()
    assert trt._standin_state["global_logger"] is logger
    with pytest.raises(EdgeEdetError, match="cannot load engine|not a readable TensorRT engine"):
        from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

        engine = tmp_path / "m.trt"
        engine.write_bytes(b"junk")  # keeps the sidecar of the build above
        TensorRTBackend(str(engine))


def test_docs_api_table_is_what_the_script_writes(tmp_path):
    """docs/tensorrt_api.md is generated; a hand edit or a new call without regenerating fails here."""
    import subprocess

    for version in VERSIONS:
        api_or_skip(version)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "tensorrt_api.md"
    done = subprocess.run([sys.executable, os.path.join(repo, "scripts", "trt_api_table.py"), "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(repo, "docs", "tensorrt_api.md")) as handle:
        assert handle.read() == out.read_text(), "run `python scripts/trt_api_table.py` and commit docs/tensorrt_api.md"


def test_unreachable_wheels_fail_under_ci_and_skip_with_the_reason_elsewhere(tmp_path):
    """An empty cache and no package index: outside CI the conformance tests skip, saying why; under
    CI=true (where pip can always reach the index) the same run fails instead of passing on skips."""
    import subprocess

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")}
    env.update(EDGE_EDET_TRT_BINDINGS=str(tmp_path / "empty_cache"), PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1",
               PIP_FIND_LINKS="", PYTHONPATH=os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               os.path.join(repo, "tests", "test_trt_conformance.py"), "-k", "test_fp32_build and 10.3.0"]
    outside = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert outside.returncode == 0 and "1 skipped" in outside.stdout, outside.stdout + outside.stderr
    assert "SKIPPED" in outside.stdout and "tensorrt-cu12-bindings==10.3.0" in outside.stdout
    inside = subprocess.run(command, cwd=repo, env=dict(env, CI="true"), capture_output=True, text=True, timeout=300)
    assert inside.returncode == 1 and "CI=true: pip download tensorrt-cu12-bindings==10.3.0" in inside.stdout, \
        inside.stdout + inside.stderr
