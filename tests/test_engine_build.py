"""Engine builder: TensorRT version dispatch (8.5 / 10.x / 11.x), argument checks, pre-flight
refusals, the per-layer precision proof and the sidecar - all in plain Python on the CPU.

TensorRT cannot be installed here: the tests that need it skip with the reason.  The deploy ONNX
files are tiny hand-made graphs that carry the contract (metadata, `images` uint8 input, NMS
outputs) plus what marks a precision (float16 Cast, Q/DQ) or a plugin (EfficientNMS_TRT).
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_edet.cli import main as cli_main
from edge_edet.engine import layer_report
from edge_edet.engine.builder import (BuildResult, check_writable_file, engine_extra, enum_member,
                                      explain_build_failure, explain_parse_failure, missing_plugin_message,
                                      network_creation_flags, preflight, registered_plugins, build_engine,
                                      _sidecar_info, configure)
from edge_edet.engine.calibrator import describe_cache, read_cache_bytes
from edge_edet.engine.graph import inspect_onnx
from edge_edet.engine.plan import (BuildOptions, make_plan, parse_batch, verify_precision, lowest_precision)
from edge_edet.engine.versions import TrtVersion
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo, read_sidecar, write_onnx_metadata, write_sidecar

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def deploy_info(batch=1, dynamic=False, size=(64, 64)):
    return DeployInfo(model="lite0", input_size=size, labels=["person", "car"], mean=(127.5,) * 3,
                      std=(127.5,) * 3, batch=batch, dynamic_batch=dynamic)


def make_onnx(path, precision="fp32", dynamic=False, batch=1, plugin=None, metadata=True, size=(64, 64),
              input_dtype=TensorProto.UINT8, k=10):
    """A tiny graph with the deploy contract; precision marked by a float16 Cast or Q/DQ nodes
    ("int8_fp16": Q/DQ with float16 scales at opset 19 and the metadata of `calibrate --fp16`)."""
    b = "batch" if dynamic else batch
    height, width = size
    nodes = [helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT)]
    inits, last = [], "x"
    if precision == "fp16":
        nodes += [helper.make_node("Cast", [last], ["x16"], to=TensorProto.FLOAT16),
                  helper.make_node("Cast", ["x16"], ["x32"], to=TensorProto.FLOAT)]
        last = "x32"
    elif precision in ("int8", "int8_fp16"):
        half = precision == "int8_fp16"
        inits += [numpy_helper.from_array(np.array(0.02, np.float16 if half else np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z")]
        if half:
            nodes.append(helper.make_node("Cast", [last], ["x16"], to=TensorProto.FLOAT16))
            last = "x16"
        nodes += [helper.make_node("QuantizeLinear", [last, "s", "z"], ["xq"]),
                  helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"])]
        last = "xd"
        if half:
            nodes.append(helper.make_node("Cast", [last], ["xd32"], to=TensorProto.FLOAT))
            last = "xd32"
    nodes.append(helper.make_node("ReduceMean", [last], ["pooled"], keepdims=1))
    if plugin:
        nodes.append(helper.make_node(plugin, ["pooled"], ["num_detections", "detection_boxes",
                                                           "detection_scores", "detection_classes"]))
    outputs = [helper.make_tensor_value_info("num_detections", TensorProto.INT32, [b, 1]),
               helper.make_tensor_value_info("detection_boxes", TensorProto.FLOAT, [b, k, 4]),
               helper.make_tensor_value_info("detection_scores", TensorProto.FLOAT, [b, k]),
               helper.make_tensor_value_info("detection_classes", TensorProto.INT32, [b, k])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", input_dtype,
                                                                             [b, height, width, 3])],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19 if precision == "int8_fp16" else 17)])
    if metadata:
        info = deploy_info(batch=batch, dynamic=dynamic, size=size)
        if precision.startswith("int8"):
            info.precision, info.extra = "int8", {"int8": {"fp16_compute": precision == "int8_fp16"}}
        write_onnx_metadata(model, info)
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def graphs(tmp_path):
    """name -> GraphFacts of the tiny graphs."""
    made = {}
    for name, kwargs in {"fp32": {}, "fp16": {"precision": "fp16"}, "int8": {"precision": "int8"},
                         "int8_fp16": {"precision": "int8_fp16"},
                         "dyn": {"dynamic": True, "batch": 8},
                         "nms_plugin": {"plugin": "EfficientNMS_TRT"}}.items():
        made[name] = inspect_onnx(make_onnx(tmp_path / f"{name}.onnx", **kwargs))
    return made


def opts(tmp_path, **kwargs):
    return BuildOptions(onnx=str(tmp_path / "m.onnx"), engine=str(tmp_path / "m.trt"), **kwargs)


def plan_for(version, facts, tmp_path, board=None, **kwargs):
    return make_plan(version, facts, opts(tmp_path, **kwargs), board=board)


# -- versions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,gen", [("8.5.2.2", "8.x"), ("8.6.1", "8.x"), ("10.3.0", "10.x"),
                                      ("10.16.1", "10.x"), ("11.0.0", "11.x"), ("11.4.1.post2", "11.x")])
def test_version_generation(text, gen):
    assert TrtVersion.parse(text).generation == gen


def test_too_old_and_unreadable_versions_are_refused():
    with pytest.raises(EdgeEdetError, match="older than 8.5"):
        TrtVersion.parse("8.4.3").generation
    with pytest.raises(EdgeEdetError, match="cannot read"):
        TrtVersion.parse("unknown")


@pytest.mark.parametrize("text,dla", [("8.5.2", True), ("10.3.0", True), ("10.7.0", True), ("10.8.0", False),
                                      ("11.0.0", False), ("11.4.0", False), ("11.4.1", True), ("11.4.1.post2", True),
                                      ("11.5.0", False), ("12.0.0", False)])
def test_dla_support_table(text, dla):
    assert TrtVersion.parse(text).supports_dla is dla


AGX_ORIN, ORIN_NX = "NVIDIA Jetson AGX Orin Developer Kit", "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"
THOR, ORIN_NANO = "NVIDIA Jetson AGX Thor Developer Kit", "NVIDIA Jetson Orin Nano Developer Kit"


@pytest.mark.parametrize("text,board,refused", [
    ("8.5.2", "NVIDIA Jetson AGX Xavier Developer Kit", None), ("10.3.0", ORIN_NX, None), ("10.3.0", AGX_ORIN, None),
    ("10.3.0", ORIN_NANO, "Orin Nano has none"), ("11.4.1", AGX_ORIN, None), ("11.4.1", None, None),
    ("11.4.1", ORIN_NX, "only on Jetson AGX Orin"), ("11.4.1", THOR, "Thor has none"),
    ("11.4.0", AGX_ORIN, "Windows on ARM"), ("11.5.0", AGX_ORIN, "does not support JetPack"),
    ("11.2.0", AGX_ORIN, "11.4.1"), ("10.8.0", AGX_ORIN, "10.7 was the last")])
def test_dla_support_by_device_and_version(text, board, refused):
    """NVIDIA's "Working with DLA" (11.4.1): "Supported: NVIDIA Jetson AGX Orin when using NVIDIA JetPack
    7.2.2 or later ... Not supported: NVIDIA Jetson Thor, which has no DLA"; 11.5.0: JetPack not supported.
    Off a Jetson (board None) the GPU's own DLA core count decides at build time."""
    refusal = TrtVersion.parse(text).dla_refusal(board)
    assert (refusal is None) if refused is None else (refused in refusal)


# -- version dispatch ---------------------------------------------------------------------------------
def test_trt11_fp16_from_fp32_graph_converts_first_and_sets_no_flag(graphs, tmp_path):
    plan = plan_for("11.4.1", graphs["fp32"], tmp_path, precision="fp16")
    assert plan.strongly_typed and plan.convert_fp16
    assert plan.builder_flags == [] and plan.network_flags == []
    assert plan.target_precision == "fp16"
    assert any("converting" in note for note in plan.notes)


def test_trt11_never_uses_removed_precision_flags_or_calibrators(graphs, tmp_path):
    for facts in (graphs["fp32"], graphs["fp16"], graphs["int8"]):
        for precision in (None, "fp16", "best", "int8", "fp32"):
            try:
                plan = plan_for("11.0.0", facts, tmp_path, precision=precision)
            except EdgeEdetError:
                continue
            assert not {"FP16", "INT8", "BF16", "FP8"} & set(plan.builder_flags)
            assert plan.calibration_cache is None and plan.strongly_typed


def test_trt11_int8_needs_a_qdq_graph_and_refuses_a_cache(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="Q/DQ.*edge-edet calibrate"):
        plan_for("11.2.0", graphs["fp32"], tmp_path, precision="int8")
    cache = tmp_path / "c.calib"
    cache.write_text("TRT-8502-EntropyCalibration2\nx: 3c010a14\n")
    with pytest.raises(EdgeEdetError, match="removed implicit INT8"):
        plan_for("11.2.0", graphs["fp32"], tmp_path, precision="int8", calib_cache=str(cache))
    plan = plan_for("11.2.0", graphs["int8"], tmp_path)
    assert plan.target_precision == "int8" and not plan.convert_fp16


@pytest.mark.parametrize("graph", ["fp16", "int8"])
def test_trt10_builds_fp16_and_qdq_graphs_strongly_typed(graphs, tmp_path, graph):
    plan = plan_for("10.3.0", graphs[graph], tmp_path)
    assert plan.strongly_typed and plan.network_flags == ["STRONGLY_TYPED"] and plan.builder_flags == []
    assert plan.target_precision == graph


def test_trt10_fp32_graph_takes_builder_flags_and_a_calibration_cache(graphs, tmp_path):
    plan = plan_for("10.3.0", graphs["fp32"], tmp_path, precision="fp16")
    assert not plan.strongly_typed and plan.builder_flags == ["FP16"] and plan.network_flags == []
    cache = tmp_path / "c.calib"
    cache.write_text("TRT-100300-EntropyCalibration2\nimages: 3c010a14\n")
    plan = plan_for("10.3.0", graphs["fp32"], tmp_path, precision="int8", calib_cache=str(cache))
    assert plan.builder_flags == ["INT8", "FP16"] and plan.calibration_cache == str(cache)
    assert any("deprecated since TensorRT 10.1" in note for note in plan.notes)
    with pytest.raises(EdgeEdetError, match="--calib-cache"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, precision="int8")


def test_trt85_uses_explicit_batch_and_builder_flags(graphs, tmp_path):
    plan = plan_for("8.5.2.2", graphs["fp32"], tmp_path, precision="fp16")
    assert plan.network_flags == ["EXPLICIT_BATCH"] and plan.builder_flags == ["FP16"]
    assert not plan.strongly_typed and not plan.progress_monitor
    plan = plan_for("8.5.2.2", graphs["int8"], tmp_path)
    assert plan.builder_flags == ["INT8", "FP16"] and plan.target_precision == "int8"
    plan = plan_for("8.5.2.2", graphs["fp16"], tmp_path)
    assert plan.builder_flags == ["FP16"]


@pytest.mark.parametrize("version", ["10.3.0", "11.4.1"])
def test_int8_fp16_graph_builds_strongly_typed_and_must_prove_fp16_layers(graphs, tmp_path, version):
    facts = graphs["int8_fp16"]
    assert facts.precision == "int8" and facts.fp16_compute and facts.opset == 19
    plan = plan_for(version, facts, tmp_path)
    assert plan.strongly_typed and plan.target_precision == "int8" and plan.expect_fp16 and not plan.builder_flags
    assert any("INT8 + FP16" in note for note in plan.notes)
    plain = plan_for(version, graphs["int8"], tmp_path)
    assert not plain.expect_fp16 and any("calibrate --fp16" in note for note in plain.notes)
    assert "no FP16 layer" in verify_precision("int8", {"int8": 80, "fp32": 60}, expect_fp16=True)
    assert verify_precision("int8", {"int8": 80, "fp16": 60, "fp32": 2}, expect_fp16=True) is None


def test_int8_fp16_graph_is_refused_by_tensorrt_8_with_the_fix(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="opset 19 .* up to 17.*calibrate without --fp16"):
        plan_for("8.5.2", graphs["int8_fp16"], tmp_path)
    assert plan_for("8.5.2", graphs["int8"], tmp_path).builder_flags == ["INT8", "FP16"]  # 8.x: flags add FP16


def test_precision_must_agree_with_a_reduced_precision_graph(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="already a fp16 graph"):
        plan_for("10.3.0", graphs["fp16"], tmp_path, precision="int8")
    with pytest.raises(EdgeEdetError, match="already a int8 graph"):
        plan_for("8.5.2", graphs["int8"], tmp_path, precision="fp32")
    cache = tmp_path / "c.calib"
    cache.write_text("TRT-8502-EntropyCalibration2\nimages: 3c010a14\n")
    with pytest.raises(EdgeEdetError, match="drop --calib-cache"):
        plan_for("8.5.2", graphs["int8"], tmp_path, calib_cache=str(cache))


def test_best_falls_back_to_fp16_without_a_cache(graphs, tmp_path):
    plan = plan_for("10.3.0", graphs["fp32"], tmp_path, precision="best")
    assert plan.builder_flags == ["FP16"] and any("best without --calib-cache" in n for n in plan.notes)
    assert plan_for("11.1.0", graphs["fp32"], tmp_path, precision="best").convert_fp16


def test_dla_rules(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="10.7 was the last"):
        plan_for("10.8.0", graphs["fp32"], tmp_path, precision="fp16", dla_core=0)
    with pytest.raises(EdgeEdetError, match="11.4.1"):
        plan_for("11.4.0", graphs["fp16"], tmp_path, dla_core=0)
    with pytest.raises(EdgeEdetError, match="FP16 or INT8 only"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, dla_core=0)
    with pytest.raises(EdgeEdetError, match="--gpu-fallback only"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, precision="fp16", gpu_fallback=True)
    plan = plan_for("11.4.1", graphs["fp16"], tmp_path, board=AGX_ORIN, dla_core=1, gpu_fallback=True)
    assert plan.dla_core == 1 and "GPU_FALLBACK" in plan.builder_flags
    with pytest.raises(EdgeEdetError, match="Thor has none"):
        plan_for("11.4.1", graphs["fp16"], tmp_path, board=THOR, dla_core=0)
    plan = plan_for("8.5.2", graphs["fp32"], tmp_path, precision="fp16", dla_core=0)
    assert plan.dla_core == 0 and any("gpu-fallback" in n for n in plan.notes)


def test_batch_profile(graphs, tmp_path):
    plan = plan_for("10.3.0", graphs["dyn"], tmp_path)
    assert plan.profile == ((1, 64, 64, 3), (8, 64, 64, 3), (8, 64, 64, 3))
    plan = plan_for("10.3.0", graphs["dyn"], tmp_path, batch=parse_batch("1:2:4"))
    assert [s[0] for s in plan.profile] == [1, 2, 4]
    with pytest.raises(EdgeEdetError, match="dynamic-batch graph"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, batch=(1, 2, 4))
    assert plan_for("10.3.0", graphs["fp32"], tmp_path).profile is None
    # --cameras N: tuned for N sources at once, still able to run fewer (and the export's maximum)
    assert [s[0] for s in plan_for("10.3.0", graphs["dyn"], tmp_path, cameras=4).profile] == [1, 4, 8]
    assert [s[0] for s in plan_for("10.3.0", graphs["dyn"], tmp_path, cameras=12).profile] == [1, 12, 12]
    with pytest.raises(EdgeEdetError, match="--cameras 4 needs a dynamic-batch graph"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, cameras=4)
    assert parse_batch("4") == (4, 4, 4)
    for bad in ("4:2:1", "a:b:c", "1:2", "0:1:2"):
        with pytest.raises(EdgeEdetError, match="--batch"):
            parse_batch(bad)


def test_compatibility_flags(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="8.6 or newer"):
        plan_for("8.5.2", graphs["fp32"], tmp_path, version_compatible=True)
    with pytest.raises(EdgeEdetError, match="--nms onnx"):
        plan_for("10.3.0", graphs["nms_plugin"], tmp_path, version_compatible=True)
    assert any("deprecated since TensorRT 10.12" in n for n in plan_for("10.12.0", graphs["nms_plugin"], tmp_path).notes)
    assert not any("10.12" in n for n in plan_for("10.3.0", graphs["nms_plugin"], tmp_path).notes)
    plan = plan_for("10.3.0", graphs["fp32"], tmp_path, version_compatible=True, hardware_compatible=True)
    assert "VERSION_COMPATIBLE" in plan.builder_flags and plan.hardware_compatibility == "AMPERE_PLUS"


def test_hardware_compatible_is_refused_on_a_jetson(tmp_path):
    from edge_edet.engine.plan import check_board

    options = opts(tmp_path, hardware_compatible=True)
    with pytest.raises(EdgeEdetError, match="not supported on Jetson"):
        check_board(options, "NVIDIA Jetson AGX Orin Developer Kit")
    check_board(options, None)  # a desktop GPU
    check_board(opts(tmp_path), "NVIDIA Jetson AGX Orin Developer Kit")


def test_argument_checks(graphs, tmp_path):
    with pytest.raises(EdgeEdetError, match="too small.*4 GB"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, workspace_mib=8)
    with pytest.raises(EdgeEdetError, match="must end in"):
        make_plan("10.3.0", graphs["fp32"], BuildOptions(onnx="m.onnx", engine=str(tmp_path / "m.bin")))
    with pytest.raises(EdgeEdetError, match="is not one of"):
        plan_for("10.3.0", graphs["fp32"], tmp_path, precision="int4")
    big = plan_for("10.3.0", graphs["fp32"], tmp_path, workspace_mib=4096)
    assert big.workspace_bytes == 4096 << 20 and any("--workspace 256" in n for n in big.notes)


# -- the ONNX and the paths, refused before the build ------------------------------------------------------
def test_graph_inspection(graphs, tmp_path):
    assert [graphs[n].precision for n in ("fp32", "fp16", "int8")] == ["fp32", "fp16", "int8"]
    assert graphs["dyn"].dynamic_batch and graphs["fp32"].static_batch == 1
    assert graphs["nms_plugin"].plugins == ["EfficientNMS_TRT"] and graphs["nms_plugin"].uses_efficient_nms
    assert graphs["fp32"].info.labels == ["person", "car"]


def test_missing_corrupt_and_foreign_onnx_are_refused(tmp_path):
    with pytest.raises(EdgeEdetError, match="does not exist"):
        inspect_onnx(str(tmp_path / "none.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(EdgeEdetError, match="not a readable ONNX"):
        inspect_onnx(str(bad))
    with pytest.raises(EdgeEdetError, match="not exported by `edge-edet export`"):
        inspect_onnx(make_onnx(tmp_path / "foreign.onnx", metadata=False))
    with pytest.raises(EdgeEdetError, match="not uint8"):
        inspect_onnx(make_onnx(tmp_path / "float_in.onnx", input_dtype=TensorProto.FLOAT))


def test_unwritable_outputs_are_refused_before_building(tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx")
    with pytest.raises(EdgeEdetError, match="does not exist"):
        preflight(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "no" / "dir" / "m.trt")))
    (tmp_path / "adir.trt").mkdir()
    with pytest.raises(EdgeEdetError, match="is a folder"):
        preflight(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "adir.trt")))
    if os.path.isdir("/proc/self"):  # not writable even for root
        with pytest.raises(EdgeEdetError, match="not writable"):
            check_writable_file("/proc/edge_edet_probe.trt", "engine")
    with pytest.raises(EdgeEdetError, match="timing cache"):
        preflight(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "m.trt"),
                               timing_cache=str(tmp_path / "nodir" / "t.cache")))
    facts = preflight(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "m.trt")))
    assert facts.precision == "fp32" and not list(tmp_path.glob(".edge_edet_probe*"))


def test_calibration_cache_checks(tmp_path):
    with pytest.raises(EdgeEdetError, match="does not exist.*edge-edet calibrate"):
        read_cache_bytes(str(tmp_path / "none.calib"))
    junk = tmp_path / "junk.calib"
    junk.write_bytes(b"\x89PNG\x00\x01")
    with pytest.raises(EdgeEdetError, match="not a TensorRT calibration cache"):
        read_cache_bytes(str(junk))
    header_only = tmp_path / "h.calib"
    header_only.write_text("TRT-8502-EntropyCalibration2\n")
    with pytest.raises(EdgeEdetError, match="no tensor scales"):
        read_cache_bytes(str(header_only))
    good = b"TRT-8502-EntropyCalibration2\nimages: 3c010a14\nx: 3d8a3d71\n"
    assert describe_cache(good) == {"trt_version": "8502", "algorithm": "EntropyCalibration2", "tensors": 2}


def tensorrt_installed():
    try:
        import tensorrt  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed: the no-TensorRT message is not reachable")
def test_build_without_tensorrt_says_what_it_needs(tmp_path):
    onnx_path = make_onnx(tmp_path / "m.onnx")
    with pytest.raises(EdgeEdetError) as info:
        build_engine(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "m.trt")), log=lambda s: None)
    message = str(info.value)
    assert "needs TensorRT" in message and "JetPack" in message and "pip install tensorrt" in message
    assert not (tmp_path / "m.trt").exists() and not (tmp_path / "m.trt.json").exists()


def test_cli_build_errors_are_one_sentence(tmp_path, capsys):
    code = cli_main(["build", "--onnx", str(tmp_path / "none.onnx"), "--engine", str(tmp_path / "x.trt")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("edge-edet: error: ") and "Traceback" not in err
    assert "does not exist" in err
    code = cli_main(["build", "--onnx", make_onnx(tmp_path / "m.onnx"), "--engine", str(tmp_path / "x.trt"),
                     "--batch", "4:1:2"])
    assert code == 2 and "MIN <= OPT <= MAX" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one profile or the other
        cli_main(["build", "--onnx", "m.onnx", "--engine", "x.trt", "--batch", "1:2:4", "--cameras", "4"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_scripts_help_without_tensorrt_or_torch():
    code = ("import runpy, sys; sys.argv = ['build_engine.py', '--help']\n"
            "try:\n    runpy.run_path('build_engines/build_engine.py', run_name='__main__')\n"
            "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "assert 'torch' not in sys.modules, 'build_engine.py imported torch'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--calib-cache" in done.stdout and "--dla-core" in done.stdout and "11.x" in done.stdout
    done = subprocess.run(["bash", "build_engines/build_all.sh", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "MODELS" in done.stdout and "PRECISIONS" in done.stdout


def test_build_all_refuses_bad_arguments_before_exporting(tmp_path):
    done = subprocess.run(["bash", "build_engines/build_all.sh", "lite0", "fp64"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "OUT": str(tmp_path)})
    assert done.returncode == 2 and "fp64" in done.stderr and not list(tmp_path.iterdir())
    done = subprocess.run(["bash", "build_engines/build_all.sh", "lite0", "int8"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "OUT": str(tmp_path)})
    assert done.returncode == 2 and "IMAGES" in done.stderr


def board_env(tmp_path, out):
    """A stock-Jetson stand-in for build_all.sh: tensorrt importable, torch and onnxruntime not."""
    stubs = tmp_path / "board_python"
    stubs.mkdir(exist_ok=True)
    (stubs / "tensorrt.py").write_text("__version__ = '10.3.0'  # stand-in: only the version is read\n")
    for missing in ("torch", "onnxruntime"):
        (stubs / f"{missing}.py").write_text(f"raise ImportError('no {missing} on this board')\n")
    return {**os.environ, "OUT": str(out), "PYTHONPATH": str(stubs), "EDGE_EDET": "false"}


def test_build_all_on_a_board_without_torch_or_onnxruntime(tmp_path):
    out = tmp_path / "engines"
    out.mkdir()
    run = lambda *args: subprocess.run(["bash", "build_engines/build_all.sh", *args], cwd=REPO,  # noqa: E731
                                       capture_output=True, text=True, timeout=60, env=board_env(tmp_path, out))
    done = run("lite0", "fp16")
    assert done.returncode == 2 and "needs PyTorch" in done.stderr and f"{out}/lite0.onnx" in done.stderr
    (out / "lite0.onnx").write_bytes(b"copied from the workstation")
    images = tmp_path / "images"
    images.mkdir()
    done = run("lite0", "int8", str(images))
    assert done.returncode == 2 and "needs ONNX Runtime" in done.stderr and f"{out}/lite0_int8.onnx" in done.stderr
    (out / "lite0_int8.onnx").write_bytes(b"copied too")
    done = run("lite0", "fp16,int8")  # every file is there: no export, no calibrate, no images needed
    steps = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert steps and all(" build " in line for line in steps), done.stdout + done.stderr
    assert any("lite0_int8.onnx" in line for line in steps)


# -- the precision proof ---------------------------------------------------------------------------------
TRT10_JSON = json.dumps({"Layers": [
    {"Name": "conv0", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "a", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
     "Outputs": [{"Name": "b", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
    {"Name": "conv1", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "b", "Format/Datatype": "Four wide channel vectorized row major Int8 format"}],
     "Outputs": [{"Name": "c", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "reformat", "LayerType": "Reformat",
     "Inputs": [{"Name": "c", "Format/Datatype": "Row major linear FP32"}],
     "Outputs": [{"Name": "d", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "nms", "LayerType": "NMS", "Inputs": [{"Name": "i", "Format/Datatype": "Row major linear Int32"}],
     "Outputs": [{"Name": "o", "Format/Datatype": "Row major linear Int32"}]}],
    "Bindings": ["images", "num_detections"]})

TRT11_JSON = json.dumps({"Layers": [
    {"Name": "conv0", "LayerType": "CaskConvolution", "Inputs": [{"Name": "a", "DataType": "Half", "Format": "kHWC8"}],
     "Outputs": [{"Name": "b", "DataType": "Half", "Format": "kHWC8"}]},
    {"Name": "cast", "LayerType": "Cast", "Inputs": [{"Name": "i", "DataType": "UInt8"}],
     "Outputs": [{"Name": "f", "DataType": "Float"}]},
    {"Name": "bf", "LayerType": "Gemm", "Inputs": [{"Name": "x", "DataType": "BFloat16"}], "Outputs": []}],
    "I/O Tensors": [{"Name": "images", "IOMode": "Input", "DataType": "UInt8"}]})


def test_layer_precisions_from_trt10_and_trt11_inspector_json():
    rows = layer_report.layer_precisions(layer_report.parse_engine_information(TRT10_JSON))
    assert [r["precision"] for r in rows] == ["fp16", "int8", "fp32", "other"]
    counts = layer_report.count_precisions(rows)
    assert counts == {"int8": 1, "fp16": 1, "fp32": 1, "other": 1}
    assert layer_report.summary_line(counts) == "4 layers: 1 INT8, 1 FP16, 1 FP32, 1 other (shape/index/NMS)"
    rows = layer_report.layer_precisions(layer_report.parse_engine_information(TRT11_JSON))
    assert [r["precision"] for r in rows] == ["fp16", "fp32", "fp16"]
    names_only = layer_report.parse_engine_information(json.dumps({"Layers": ["a", "b"]}))
    assert layer_report.count_precisions(layer_report.layer_precisions(names_only))["other"] == 2
    assert layer_report.parse_engine_information("not json") == []


def test_uint8_input_is_not_counted_as_int8():
    """TensorRT 8.x/10.x name the uint8 `images` input "Row major linear UInt8 format": not INT8."""
    assert layer_report.tensor_category("Row major linear UInt8 format") is None
    assert layer_report.tensor_category({"DataType": "UInt8"}) is None
    assert layer_report.tensor_category("Four wide channel vectorized row major Int8 format") == "int8"
    fp32_engine = json.dumps({"Layers": [
        {"Name": "reformat", "Inputs": [{"Format/Datatype": "Row major linear UInt8 format"}],
         "Outputs": [{"Format/Datatype": "Row major linear FP32 format"}]},
        {"Name": "conv", "Inputs": [{"Format/Datatype": "Row major linear FP32 format"}], "Outputs": []}]})
    counts = layer_report.count_precisions(layer_report.layer_precisions(
        layer_report.parse_engine_information(fp32_engine)))
    assert counts == {"int8": 0, "fp16": 0, "fp32": 2, "other": 0}
    assert "none of its 2 layers runs in INT8" in verify_precision("int8", counts)
    assert "all 2 layers run in FP32" in verify_precision("fp16", counts)


def test_a_silent_fp32_engine_is_refused():
    all_fp32 = {"int8": 0, "fp16": 0, "fp32": 120, "other": 8}
    assert "all 120 layers run in FP32" in verify_precision("fp16", all_fp32)
    assert "none of its" in verify_precision("int8", {"fp16": 50, "fp32": 3})
    assert verify_precision("fp16", {"fp16": 100, "fp32": 20}) is None
    assert verify_precision("int8", {"int8": 80, "fp16": 10}) is None
    assert verify_precision("fp16", {"other": 3}) is None  # nothing known, nothing to prove
    assert lowest_precision({"int8": 1, "fp16": 5}) == "int8" and lowest_precision({}) is None


# -- sidecar ---------------------------------------------------------------------------------------------
def test_sidecar_carries_onnx_metadata_and_engine_facts(graphs, tmp_path):
    options = BuildOptions(onnx=graphs["dyn"].path, engine=str(tmp_path / "d.trt"), precision="fp16",
                           batch=(1, 2, 4), workspace_mib=256)
    plan = make_plan("10.3.0", graphs["dyn"], options)
    counts = {"int8": 0, "fp16": 90, "fp32": 4, "other": 6}
    info = _sidecar_info(graphs["dyn"], plan, options, graphs["dyn"].path, TrtVersion.parse("10.3.0"), "fp16",
                         counts, layer_report.summary_line(counts), 321.44)
    (tmp_path / "d.trt").write_bytes(b"engine")
    write_sidecar(str(tmp_path / "d.trt"), info)
    back = read_sidecar(str(tmp_path / "d.trt"))
    assert back.labels == ["person", "car"] and back.input_size == (64, 64)
    assert back.precision == "fp16" and back.dynamic_batch and back.batch == 4
    extra = back.extra
    assert extra["engine_precision"] == "fp16" and extra["tensorrt_version"] == "10.3.0"
    assert {"gpu_name", "compute_capability", "built_at", "board"} <= set(extra)
    assert extra["build_seconds"] == 321.4 and extra["layer_precision"] == counts
    assert extra["layer_precision_summary"].startswith("100 layers: 0 INT8, 90 FP16")
    assert extra["build_flags"]["builder_flags"] == ["FP16"]
    assert extra["build_flags"]["workspace_bytes"] == 256 << 20
    assert extra["batch_profile"] == [1, 2, 4] and extra["source_onnx"] == "dyn.onnx"


def test_engine_extra_records_gpu_and_flags(graphs, tmp_path):
    options = opts(tmp_path, precision="fp16", dla_core=0, gpu_fallback=True)
    plan = make_plan("8.5.2", graphs["fp32"], options)
    extra = engine_extra(plan, options, "m.onnx", "8.5.2", "fp16", {"fp16": 1}, "1 layers", 12.0,
                         {"name": "Orin", "compute_capability": "8.7"}, "NVIDIA Jetson AGX Orin")
    assert extra["gpu_name"] == "Orin" and extra["compute_capability"] == "8.7" and extra["dla_core"] == 0
    assert extra["build_flags"]["builder_flags"] == ["FP16", "GPU_FALLBACK"]
    assert extra["build_flags"]["network_flags"] == ["EXPLICIT_BATCH"]
    json.dumps(extra)  # the sidecar must serialise


# -- argument plumbing against the stand-in tensorrt of real versions (tests/trt_standin) ---------------
def standin_tensorrt(version):
    """STAND-IN tensorrt generated from the real `version` bindings' API (skips when the wheel cannot be
    had, fails under CI=true)."""
    from trt_standin import api_or_skip, build_module

    return build_module(api_or_skip(version))


def test_flags_are_looked_up_by_name_and_never_silently_dropped(graphs, tmp_path):
    trt10, trt8, trt11 = standin_tensorrt("10.3.0"), standin_tensorrt("8.6.1"), standin_tensorrt("11.0.0.114")
    plan = plan_for("10.3.0", graphs["fp16"], tmp_path)
    strongly = 1 << int(trt10.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert network_creation_flags(trt10, plan) == strongly
    plan = plan_for("8.5.2", graphs["fp32"], tmp_path, precision="fp16")
    assert network_creation_flags(trt8, plan) == 1 << int(trt8.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    assert network_creation_flags(trt11, plan_for("11.0.0", graphs["fp16"], tmp_path)) == 0
    with pytest.raises(EdgeEdetError, match="has no BuilderFlag.FP16"):  # the hasattr trap, made loud
        enum_member(trt11.BuilderFlag, "FP16", "BuilderFlag", "11.0.0")
    import inspect
    assert "hasattr" not in inspect.getsource(configure)


def test_missing_efficient_nms_plugin_names_the_fix(graphs):
    available = registered_plugins(standin_tensorrt("10.3.0"))  # all_creators (10.0+)
    assert available == {"EfficientNMS_TRT"} and registered_plugins(standin_tensorrt("8.6.1")) == available
    message = missing_plugin_message(graphs["nms_plugin"], "11.0.0", {"BatchedNMS_TRT"})
    assert "EfficientNMS_TRT" in message and "--nms onnx" in message
    assert missing_plugin_message(graphs["fp32"], "11.0.0", {"BatchedNMS_TRT"}) is None
    parse = explain_parse_failure(["No importer registered for op: EfficientNMS_TRT"], graphs["nms_plugin"], "11.0.0")
    assert "--nms onnx" in parse


def test_build_failures_are_explained(graphs, tmp_path):
    cache = tmp_path / "c.calib"
    cache.write_text("TRT-8502-EntropyCalibration2\nimages: 3c010a14\n")
    plan = plan_for("8.5.2", graphs["fp32"], tmp_path, precision="int8", calib_cache=str(cache))
    assert "re-run `edge-edet calibrate" in explain_build_failure(["Calibration failure occurred"], plan)
    assert "--workspace 256" in explain_build_failure(["out of memory while allocating"], plan)
    assert "could not build" in explain_build_failure([], plan)


# -- real TensorRT ---------------------------------------------------------------------------------------
def test_real_fp16_build_proves_its_precision(tmp_path, deploy_lite0):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack on a Jetson, or "
                                                 "`pip install tensorrt` with an NVIDIA GPU)")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed (needed to name the GPU)")
    onnx_path = deploy_lite0
    result = build_engine(BuildOptions(onnx=onnx_path, engine=str(tmp_path / "lite0.trt"), precision="fp16",
                                       workspace_mib=512), log=print)
    assert isinstance(result, BuildResult) and result.layer_counts["fp16"] > 0
    assert read_sidecar(result.engine).extra["tensorrt_version"] == trt.__version__


# -- a real exported graph (lite0, random weights, 256 px) through the whole pre-build path -----------
@pytest.fixture(scope="module")
def exported(deploy_lite0):
    return deploy_lite0


def test_real_export_dispatch_and_trt11_fp16_conversion(exported, tmp_path):
    from edge_edet.engine.builder import convert_to_fp16

    facts = preflight(BuildOptions(onnx=exported, engine=str(tmp_path / "lite0.trt")))
    assert facts.precision == "fp32" and facts.input_shape == (1, 256, 256, 3) and not facts.plugins
    assert facts.output_names == ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
    assert plan_for("8.5.2", facts, tmp_path, precision="fp16").builder_flags == ["FP16"]
    assert plan_for("10.3.0", facts, tmp_path, precision="fp16").builder_flags == ["FP16"]
    plan = plan_for("11.4.1", facts, tmp_path, precision="fp16")
    assert plan.convert_fp16 and plan.builder_flags == []
    converted = convert_to_fp16(exported, str(tmp_path / "lite0.trt"), log=lambda s: None)
    assert converted == str(tmp_path / "lite0_fp16.onnx")
    fp16 = inspect_onnx(converted)
    assert fp16.precision == "fp16" and fp16.info.labels == facts.info.labels
    again = plan_for("11.4.1", fp16, tmp_path)  # the converted graph builds as it is
    assert not again.convert_fp16 and again.target_precision == "fp16"
    assert plan_for("10.3.0", fp16, tmp_path).network_flags == ["STRONGLY_TYPED"]


def test_calibration_cache_is_retargeted_to_the_installed_tensorrt():
    """TensorRT ignores a cache written for another version: the builder rewrites the header only."""
    from edge_edet.engine.calibrator import cache_for_version
    from edge_edet.precision.cache import format_calibration_cache, parse_calibration_cache

    scales = {"images_cast": 0.0123, "/model/conv_stem/Conv_output_0": 1.5e-3}
    old = format_calibration_cache(scales, "8.5.2").encode()
    new = cache_for_version(old, "10.3.0")
    assert new.splitlines()[0] == b"TRT-100300-EntropyCalibration2"
    version, _, parsed = parse_calibration_cache(new.decode())
    assert version == 100300 and parsed == parse_calibration_cache(old.decode())[2]
