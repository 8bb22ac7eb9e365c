"""TensorRT back-end: buffer plans, engine/version/GPU mismatch messages, load-failure explanations,
and the refusals that come before TensorRT (missing sidecar) - in plain Python.

Tests that need TensorRT + pycuda + a GPU skip with the reason.
"""

import numpy as np
import pytest

from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo, MetadataError, write_sidecar
from edge_edet.runtime import Detector
from edge_edet.runtime.backends import open_backend
from edge_edet.runtime.backends.tensorrt_backend import (engine_mismatch, explain_load_failure, rebuild_hint,
                                                         version_loads, version_parts)
from edge_edet.runtime.buffer_plan import TensorSpec, plan_buffers


def info(size=(64, 64), batch=1, dynamic=False, **extra):
    return DeployInfo(model="lite0", input_size=size, labels=["person"], mean=(127.5,) * 3, std=(127.5,) * 3,
                      batch=batch, dynamic_batch=dynamic, extra=extra)


def nms_specs(batch=1, size=(64, 64), k=100):
    return [TensorSpec("images", True, (batch,) + size + (3,), "uint8"),
            TensorSpec("num_detections", False, (batch, 1), "int32"),
            TensorSpec("detection_boxes", False, (batch, k, 4), "float32"),
            TensorSpec("detection_scores", False, (batch, k), "float32"),
            TensorSpec("detection_classes", False, (batch, k), "int32")]


# -- buffer plan -----------------------------------------------------------------------------------
def test_static_engine_buffers():
    plan = plan_buffers(nms_specs(batch=2), info())
    assert plan.max_batch == 2 and not plan.dynamic_batch
    assert plan.output_names == ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
    assert plan.nbytes("images") == 2 * 64 * 64 * 3
    assert plan.nbytes("detection_boxes") == 2 * 100 * 4 * 4
    assert plan.shape_at("detection_scores", 1) == (1, 100)
    plan.check_batch(2)
    with pytest.raises(MetadataError, match="outside"):
        plan.check_batch(3)


def test_dynamic_engine_buffers_are_sized_for_the_profile_maximum():
    plan = plan_buffers(nms_specs(batch=-1), info(batch=8, dynamic=True), profile_batch=(1, 4, 8))
    assert plan.dynamic_batch and plan.max_batch == 8 and plan.min_batch == 1
    assert plan.shapes["images"] == (8, 64, 64, 3) and plan.shapes["num_detections"] == (8, 1)
    assert plan.shape_at("images", 3) == (3, 64, 64, 3)
    with pytest.raises(MetadataError, match="no optimisation profile"):
        plan_buffers(nms_specs(batch=-1), info())


def test_raw_outputs_are_accepted():
    specs = [TensorSpec("images", True, (1, 64, 64, 3), "uint8"),
             TensorSpec("boxes", False, (1, 756, 4), "float32"), TensorSpec("scores", False, (1, 756, 90), "float32")]
    assert plan_buffers(specs, info()).nbytes("scores") == 756 * 90 * 4


def test_engines_that_break_the_contract_are_refused():
    specs = nms_specs()
    with pytest.raises(MetadataError, match="single `images` input"):
        plan_buffers([TensorSpec("input", True, (1, 64, 64, 3), "uint8")] + specs[1:], info())
    with pytest.raises(MetadataError, match="not uint8"):
        plan_buffers([TensorSpec("images", True, (1, 3, 64, 64), "float32")] + specs[1:], info())
    with pytest.raises(MetadataError, match="sidecar says 96x96"):
        plan_buffers(specs, info(size=(96, 96)))
    with pytest.raises(MetadataError, match="not the edge_edet outputs"):
        plan_buffers(specs[:2], info())
    dependent = specs[:2] + [TensorSpec("detection_boxes", False, (1, -1, 4), "float32")] + specs[3:]
    with pytest.raises(MetadataError, match="data-dependent"):
        plan_buffers(dependent, info())


# -- mismatch and failure messages -------------------------------------------------------------------
REBUILD = rebuild_hint("d0.trt", {"source_onnx": "d0.onnx"})


def test_rebuild_hint_names_the_command():
    assert REBUILD == "rebuild it here with `edge-edet build --onnx d0.onnx --engine d0.trt`"
    assert version_parts("10.3.0.26") == (10, 3, 0, 26) and version_parts("8.5") == (8, 5, 0)
    assert version_parts("11.4.1.post2") == (11, 4, 1) and version_parts("junk") == (-1, -1, -1)


def test_version_check_includes_the_build_number_and_only_supported_compatible_majors():
    assert version_loads("10.3.0.26", "10.3.0.26", False)
    assert not version_loads("10.3.0.26", "10.3.0.30", False)  # the standard runtime needs the exact build
    assert version_loads("10.3.0", "10.3.0.30", False)  # the build number was not recorded: cannot tell
    assert version_loads("10.3.0.26", "10.7.0.23", True) and version_loads("8.6.1", "10.3.0", True)
    assert version_loads("10.13.3.9", "11.4.0.106", True)
    assert not version_loads("8.6.1", "11.0.0", True)  # 8 -> 11 is not supported
    assert not version_loads("10.7.0", "10.3.0", True)  # never backwards
    message = engine_mismatch({"tensorrt_version": "8.6.1", "version_compatible": True}, "11.4.0", {}, "d0.trt", REBUILD)
    assert "8.6 -> 9 / 10, 10 -> 11" in message
    assert "exact version" in engine_mismatch({"tensorrt_version": "10.3.0.26"}, "10.3.0.30", {}, "d0.trt", REBUILD)


def test_engine_from_another_tensorrt_or_gpu_is_named_before_loading():
    extra = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "gpu_name": "Orin"}
    message = engine_mismatch(extra, "8.5.2.2", {"compute_capability": "8.7"}, "d0.trt", REBUILD)
    assert "TensorRT 10.3.0" in message and "8.5.2.2" in message and "edge-edet build" in message
    assert engine_mismatch(extra, "10.3.0.30", {"compute_capability": "8.7"}, "d0.trt", REBUILD) is None
    assert "10.3.1" in engine_mismatch(extra, "10.3.1", {}, "d0.trt", REBUILD)  # patch releases differ too
    assert engine_mismatch(dict(extra, version_compatible=True), "10.7.0", {}, "d0.trt", REBUILD) is None
    assert engine_mismatch(dict(extra, version_compatible=True), "8.6.1", {}, "d0.trt", REBUILD)  # only forward
    message = engine_mismatch(extra, "10.3.0", {"name": "Xavier", "compute_capability": "7.2"}, "d0.trt", REBUILD)
    assert "Orin (compute 8.7)" in message and "Xavier (compute 7.2)" in message
    assert engine_mismatch(dict(extra, hardware_compatible=True), "10.3.0", {"compute_capability": "8.6"},
                           "d0.trt", REBUILD) is None
    assert engine_mismatch({}, "10.3.0", {}, "d0.trt", REBUILD) is None  # nothing recorded, nothing to say


@pytest.mark.parametrize("log,expected", [
    (["1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization (Serialization assertion "
      "magicTagRead == kMAGIC_TAG failed.Magic tag does not match)"], "truncated or corrupt"),
    (["The engine plan file is not compatible with this version of TensorRT, expecting library version 8.5.2.2 "
      "got 10.3.0.26, please rebuild."], "another TensorRT version"),
    (["getPluginCreator could not find plugin: EfficientNMS_TRT version: 1"], "plugin"),
    (["The engine plan file is generated on an incompatible device, expecting compute 8.7 got compute 7.2, "
      "please rebuild."], "another GPU"),
    ([], "cannot load"),
])
def test_load_failures_are_explained(log, expected):
    message = explain_load_failure(log, "d0.trt", {"tensorrt_version": "10.3.0"}, "8.5.2.2", REBUILD)
    assert expected in message


# -- refusals before TensorRT -----------------------------------------------------------------------------
def test_missing_sidecar_says_how_to_make_one(tmp_path):
    engine = tmp_path / "d0.engine"
    engine.write_bytes(b"\x00" * 64)
    with pytest.raises(MetadataError, match="edge-edet build --onnx"):
        open_backend(str(engine))
    with pytest.raises(MetadataError, match="has no sidecar"):
        Detector.from_file(str(engine))


def _tensorrt_and_pycuda():
    try:
        import pycuda.driver  # noqa: F401
        import tensorrt  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.skipif(_tensorrt_and_pycuda(), reason="TensorRT and pycuda are installed: the message is unreachable")
def test_engine_without_tensorrt_says_what_is_needed(tmp_path):
    engine = tmp_path / "d0.plan"
    engine.write_bytes(b"\x00" * 64)
    write_sidecar(str(engine), info())
    with pytest.raises(EdgeEdetError, match="needs (TensorRT|pycuda)"):
        open_backend(str(engine))


def test_backend_module_never_imports_torch_or_autoinit():
    import subprocess
    import sys

    code = ("import sys, edge_edet.runtime.backends.tensorrt_backend as m, edge_edet.runtime.buffer_plan\n"
            "assert 'torch' not in sys.modules\nsrc = open(m.__file__).read()\n"
            "assert 'import pycuda.autoinit' not in src and 'from pycuda import autoinit' not in src\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# -- real TensorRT + GPU ------------------------------------------------------------------------------------
def test_real_engine_runs_from_a_worker_thread(tmp_path, deploy_lite0):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack, or `pip install tensorrt` with a GPU)")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    import threading

    from edge_edet.engine.builder import build_engine
    from edge_edet.engine.plan import BuildOptions

    onnx_path = deploy_lite0
    engine = str(tmp_path / "lite0.trt")
    build_engine(BuildOptions(onnx=onnx_path, engine=engine, precision="fp16", workspace_mib=512), log=print)
    backend = open_backend(engine)
    result = {}
    worker = threading.Thread(target=lambda: result.update(backend.infer(np.zeros((1, 256, 256, 3), np.uint8))))
    worker.start()
    worker.join()  # the "no currently active context" bug would raise inside the thread
    assert result["num_detections"].shape == (1, 1)
    times = backend.time_gpu(batch=1, iterations=5, warmup=2)
    assert len(times) == 5 and all(t > 0 for t in times)
    backend.close()


def _iou(a, b):
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@pytest.mark.parametrize("precision,min_iou,max_score_diff", [("fp32", 0.9, 0.02), ("fp16", 0.8, 0.05)])
def test_real_engine_detections_match_onnx_runtime_on_the_same_frames(tmp_path, precision, min_iou, max_score_diff):
    """The first GPU this project meets checks the whole TensorRT path against the CPU reference: the
    bundled person detector, exported once, run by ONNX Runtime and by a TensorRT engine built from
    that ONNX on 20 real COCO frames; every confident ONNX Runtime detection must have a TensorRT twin."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (needs an NVIDIA GPU: JetPack, or "
                                           "`pip install tensorrt` on a desktop GPU); CI has none")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed (needs CUDA)")
    import glob
    import os

    import cv2

    from conftest import shared_path
    from edge_edet.cli import main as cli_main
    from edge_edet.engine.builder import build_engine
    from edge_edet.engine.plan import BuildOptions

    onnx_path = str(tmp_path / "person.onnx")
    assert cli_main(["export", "--model", "lite0", "--weights", "person", "--output", onnx_path]) == 0
    engine = str(tmp_path / f"person_{precision}.trt")
    build_engine(BuildOptions(onnx=onnx_path, engine=engine, precision=precision, workspace_mib=1024), log=print)
    reference, candidate = Detector.from_file(onnx_path), Detector.from_file(engine)
    frames = [cv2.imread(p) for p in sorted(glob.glob(os.path.join(shared_path("data", "person_coco", "val"),
                                                                    "*.jpg")))[:20]]
    matched = confident = 0
    for frame in frames:
        want, got = reference.detect(frame)[0], candidate.detect(frame)[0]
        for box, score in zip(want.boxes, want.scores):
            if score < 0.5:
                continue
            confident += 1
            ious = [_iou(box, other) for other in got.boxes]
            best = int(np.argmax(ious)) if ious else -1
            if best >= 0 and ious[best] >= min_iou and abs(got.scores[best] - score) <= max_score_diff:
                matched += 1
    assert confident >= 10, "the person detector found too few people to compare"
    assert matched >= 0.95 * confident, f"{matched} of {confident} ONNX Runtime detections have a TensorRT twin"
    reference.close()
    candidate.close()
