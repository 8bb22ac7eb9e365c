"""The builder's and the TensorRT back-end's real code against a STAND-IN TensorRT per real version.

Each stand-in (tests/trt_standin) is generated from that version's real Python bindings wheel
(downloaded once, about 7 MB for the six): its classes and enums have exactly that version's
names, so a flow that reaches for a name its version lacks fails here with the name and the
version.  The stand-in builds no kernels; the flows' TensorRT calls, arguments and order are what
is checked.  pycuda and cuda-python are stand-ins too (host memory, context rules kept).
Skipped, with the reason, when the registry cannot be reached.
"""
import json
import os
import sys
import threading

import numpy as np
import pytest

from test_engine_build import make_onnx
from trt_standin import VERSIONS, build_module, load_surface
from trt_standin.calls import PROJECT_CALLS
from trt_standin.cuda_module import device_writer, make_cuda_python, make_pycuda

from edge_edet.engine.builder import build_engine
from edge_edet.engine.plan import BuildOptions
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import read_sidecar

USED = set()  # (owner, name) the flows touched, across every version
DLA_VERSIONS = {"8.6.1", "10.3.0", "10.7.0"}


@pytest.fixture(params=list(VERSIONS), scope="module")
def surface(request):
    found, reason = load_surface(request.param)
    if found is None:
        pytest.skip(reason)
    return found


def fp16_converter_standin(onnx_path, engine_path, log):
    """Stand-in for the precision module's FP16 converter (which wants a real network; the tiny
    graphs here have none): writes the tiny FP16 graph.  The real conversion is tested in
    test_engine_build.py on an exported model."""
    target = os.path.splitext(engine_path)[0] + "_fp16.onnx"
    return make_onnx(target, precision="fp16", dynamic="dyn" in os.path.basename(onnx_path), batch=4
                     if "dyn" in os.path.basename(onnx_path) else 1)


@pytest.fixture
def trt(surface, monkeypatch):
    """The stand-in tensorrt of one version, with stand-in pycuda, installed as the real modules."""
    monkeypatch.setattr("edge_edet.engine.builder.convert_to_fp16", fp16_converter_standin)
    module = build_module(surface)
    package, driver = make_pycuda()
    module._standin_device_writer = device_writer(driver._standin_memory)
    module._standin_pycuda = driver
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)
    yield module
    USED.update(module._standin_access.used)


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


def test_qdq_graph(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx", precision="int8"))
    assert result.precision == "int8"


def test_dynamic_batch_profile(trt, tmp_path):
    result = build(tmp_path, onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4), precision="fp16",
                   batch=(1, 2, 4))
    info = read_sidecar(result.engine)
    assert info.dynamic_batch and info.batch == 4 and info.extra["batch_profile"] == [1, 2, 4]


def test_dla_on_and_off(trt, tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx", precision="fp16")
    if trt.__version__ not in DLA_VERSIONS:
        with pytest.raises(EdgeEdetError, match="no DLA support"):
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


def test_backend_init_failure_cleans_up_through_close(trt, tmp_path):
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    result = build(tmp_path, onnx=make_onnx(tmp_path / "dyn.onnx", dynamic=True, batch=4), precision="fp16",
                   batch=(1, 2, 4))
    with pytest.raises(EdgeEdetError, match="--cuda-graph needs a static-batch"):
        TensorRTBackend(result.engine, cuda_graph=True)
    driver = trt._standin_pycuda
    assert driver._standin_leaks == [] and driver._standin_contexts == [] and driver._standin_stack() == []


@pytest.mark.parametrize("fail", [False, True])
def test_cuda_graph_capture_or_plain_enqueue(trt, tmp_path, monkeypatch, fail):
    cuda, bindings, driver = make_cuda_python(fail_capture=fail)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", driver)
    from edge_edet.runtime.backends.tensorrt_backend import TensorRTBackend

    result = build(tmp_path, onnx=make_onnx(tmp_path / "m.onnx"))
    backend = TensorRTBackend(result.engine, cuda_graph=True)
    assert (backend.graph is None) is fail and backend.describe()["cuda_graph"] is (not fail)
    assert backend.infer(np.zeros((1, 64, 64, 3), np.uint8))["num_detections"].tolist() == [[1]]
    assert ("launch" in driver._standin_calls) is (not fail)
    backend.close()


# -- what the flows touched is what the API table lists ----------------------------------------------------
def test_api_table_lists_every_call_the_flows_make():
    if not USED:
        pytest.skip("no conformance flow ran in this session (run the whole file)")
    listed = {(owner, name) for owner, name, _ in PROJECT_CALLS}
    assert USED <= listed, f"calls missing from tests/trt_standin/calls.py: {sorted(USED - listed)}"


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
        found, reason = load_surface(version)
        if found is None:
            pytest.skip(reason)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "tensorrt_api.md"
    done = subprocess.run([sys.executable, os.path.join(repo, "scripts", "trt_api_table.py"), "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with open(os.path.join(repo, "docs", "tensorrt_api.md")) as handle:
        assert handle.read() == out.read_text(), "run `python scripts/trt_api_table.py` and commit docs/tensorrt_api.md"
