"""The OpenVINO back-end (`--backend openvino|auto`): same detections as ONNX Runtime, OpenVINO's own input
tensors, asynchronous requests, the model cache, FP16/INT8 graphs as they are, bench side by side, Triton.

Everything runs the real OpenVINO from the registry on the real bundled person detector.  OpenVINO is in the
[test] extra: under CI=true a missing openvino fails these tests instead of skipping them.  Only the CPU
device exists here (an Intel GPU or NPU cannot be tested on these machines).
"""
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import REPO, require_module, shared_path
from edge_edet.contract.errors import EdgeEdetError

OPENVINO_MISSING = "openvino is not installed (pip install -e '.[openvino]'; it is in the [test] extra)"
openvino = None


def require_openvino():
    """OpenVINO, or a skip saying how to install it; under CI=true a missing one fails (conftest)."""
    global openvino
    openvino = require_module("openvino", OPENVINO_MISSING)


@pytest.fixture(scope="module", autouse=True)
def own_model_cache(tmp_path_factory):
    """Compiled blobs of this module go to a folder of its own, not the user's ~/.cache."""
    previous = os.environ.get("EDGE_EDET_OPENVINO_CACHE")
    os.environ["EDGE_EDET_OPENVINO_CACHE"] = str(tmp_path_factory.mktemp("ov_cache"))
    yield
    if previous is None:
        os.environ.pop("EDGE_EDET_OPENVINO_CACHE", None)
    else:
        os.environ["EDGE_EDET_OPENVINO_CACHE"] = previous


@pytest.fixture(scope="module")
def person(tmp_path_factory):
    """The bundled person detector's deploy ONNX (lite0 320, real weights: real people in real frames)."""
    require_openvino()
    from edge_edet.cli import main

    path = str(tmp_path_factory.mktemp("person") / "person.onnx")
    assert main(["export", "--model", "lite0", "--weights", "person", "--output", path]) == 0
    return path


@pytest.fixture(scope="module")
def person_fp16(person):
    """The same detector converted to FP16 (`edge-edet convert`): a graph `--backend auto` runs on OpenVINO."""
    from edge_edet.cli import main

    path = person.replace(".onnx", "_fp16.onnx")
    assert main(["convert", "--precision", "fp16", person, path]) == 0
    return path


@pytest.fixture(scope="module")
def frames():
    """12 person_coco/val images and 30 frames of the pedestrian video."""
    import cv2

    from edge_edet.contract.frames import iter_frames

    folder = shared_path("data", "person_coco", "val")
    images = [cv2.imread(os.path.join(folder, name)) for name in sorted(os.listdir(folder))[:12]]
    video = list(iter_frames(shared_path("data", "video", "people_walking.mp4"), limit=30))
    return images + video


def detectors(path, **openvino_options):
    from edge_edet.runtime import Detector

    return Detector.from_file(path, backend="onnxruntime"), Detector.from_file(path, backend="openvino",
                                                                                **openvino_options)


def assert_same_detections(reference, other, box_tol=0.05, score_tol=1e-4):
    assert len(reference.boxes) == len(other.boxes)
    np.testing.assert_allclose(other.boxes, reference.boxes, atol=box_tol)
    np.testing.assert_allclose(other.scores, reference.scores, atol=score_tol)
    assert list(other.class_ids) == list(reference.class_ids)


# -- same results ---------------------------------------------------------------------------------
def test_same_detections_as_onnxruntime_on_images_and_video(person, frames):
    ort, ov = detectors(person)
    try:
        assert ov.backend.name == "openvino" and ov.backend.execution_mode == "accuracy"
        found = 0
        for frame in frames:
            mine, theirs = ort.detect(frame)[0], ov.detect(frame)[0]
            assert_same_detections(mine, theirs)
            found += len(mine.boxes)
        assert found > len(frames)  # real people were found, so the comparison compared something
    finally:
        ort.close()
        ov.close()


def test_eval_score_floor_is_lowered_in_openvino_too(person, frames):
    from edge_edet.eval.runner import OFFICIAL_SCORE_THRESHOLD
    from edge_edet.runtime import Detector

    ort, ov = (Detector.from_file(person, backend=name, score_floor=OFFICIAL_SCORE_THRESHOLD)
               for name in ("onnxruntime", "openvino"))
    try:
        assert ov.backend.lowered_floor_from == ort.backend.lowered_floor_from > OFFICIAL_SCORE_THRESHOLD
        assert ov.info.score_threshold == OFFICIAL_SCORE_THRESHOLD
        mine, theirs = ort.detect(frames[0])[0], ov.detect(frames[0])[0]
        assert len(theirs.boxes) == len(mine.boxes) == 100  # the low-score boxes AP needs come out
        np.testing.assert_allclose(theirs.scores, mine.scores, atol=1e-4)
    finally:
        ort.close()
        ov.close()


def test_ap_through_openvino_equals_onnxruntime_on_a_small_set(person):
    from edge_edet.eval.coco import load_coco
    from edge_edet.eval.runner import evaluate_detector

    coco = load_coco(shared_path("data", "person_coco", "val.json"))
    images = shared_path("data", "person_coco", "val")
    ort, ov = detectors(person)
    try:
        reports = [evaluate_detector(d, coco, images, max_images=40, progress=False) for d in (ort, ov)]
    finally:
        ort.close()
        ov.close()
    assert reports[0]["detections"] == reports[1]["detections"] > 0
    assert reports[1]["backend"]["backend"] == "openvino"
    assert abs(reports[0]["metrics"]["AP"] - reports[1]["metrics"]["AP"]) < 0.002
    assert reports[0]["metrics"]["AP"] > 0.05  # a real score, not two zeros agreeing


@pytest.mark.slow
def test_fp16_and_int8_graphs_run_as_they_are(person, person_fp16, frames, tmp_path):
    from edge_edet.cli import main

    fp16, int8 = person_fp16, str(tmp_path / "person_int8.onnx")
    assert main(["calibrate", "--model", person, "--images", shared_path("data", "person_coco", "train"),
                 "--num-images", "8", "--output", int8]) == 0
    for path in (fp16, int8):
        ort, ov = detectors(path)
        try:
            assert ov.info.precision == ("fp16" if path == fp16 else "int8")
            for frame in frames[::4]:
                mine, theirs = ort.detect(frame)[0], ov.detect(frame)[0]
                if path == fp16:  # the same fp16 arithmetic: the same boxes
                    assert_same_detections(mine, theirs, box_tol=0.1, score_tol=1e-3)
                else:  # OpenVINO runs the Q/DQ pairs as int8 kernels, ONNX Runtime as float: the sure ones agree
                    for box, score in zip(mine.boxes, mine.scores):
                        if score > 0.5:
                            overlaps = [iou(box, other) for other in theirs.boxes]
                            best = int(np.argmax(overlaps))
                            assert overlaps[best] > 0.7 and abs(theirs.scores[best] - score) < 0.1
        finally:
            ort.close()
            ov.close()


def iou(a, b):
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# -- how it runs ----------------------------------------------------------------------------------
def test_input_buffers_are_openvinos_own_tensors(person, frames):
    from edge_edet.runtime import Detector

    detector = Detector.from_file(person, backend="openvino")
    try:
        backend = detector.backend
        buffer = detector.allocate_input()
        assert not buffer.flags.owndata  # OpenVINO's memory, seen through numpy
        detector.preprocess([frames[0]], out=buffer)
        pending = detector.submit(buffer)
        request = backend._requests[pending._index]
        outputs = pending.result()
        assert np.shares_memory(request.get_input_tensor().data, buffer)  # the request read it there: no copy
        copy = detector.infer(buffer.copy())  # any other array works too (wrapped, also without a copy)
        for name in outputs:
            np.testing.assert_array_equal(outputs[name], copy[name])
        assert outputs["num_detections"].flags.owndata  # outputs are copied out: the request can run again
    finally:
        detector.close()


def test_throughput_hint_keeps_several_requests_in_flight_in_order(person, frames):
    from edge_edet.runtime import Detector

    latency = Detector.from_file(person, backend="openvino")
    throughput = Detector.from_file(person, backend="openvino", streams=2)
    try:
        assert latency.backend.hint == "latency" and throughput.backend.hint == "throughput"
        in_flight = throughput.backend.in_flight
        assert in_flight >= 2
        buffers = [throughput.allocate_input() for _ in range(in_flight)]
        for buffer, frame in zip(buffers, frames):
            throughput.preprocess([frame], out=buffer)
        pendings = [throughput.submit(buffer) for buffer in buffers]  # all running at once, none waited for
        for pending, buffer in zip(pendings, buffers):
            expected = latency.infer(buffer.copy())
            got = pending.result()
            for name in expected:
                np.testing.assert_allclose(got[name], expected[name], atol=1e-3)
            assert pending.done_at is not None
    finally:
        latency.close()
        throughput.close()


class AsyncStandIn:
    """Stand-in of an asynchronous back-end (a named fake: it checks the pipeline, not OpenVINO): batch k
    finishes only once batch k+1 has been submitted (or after 1 s, marked "alone"), so a pipeline that
    waited for each batch before submitting the next would show it."""

    in_flight = 2

    def __init__(self):
        self.events = []
        self.count = 0
        self.changed = threading.Condition()

    def submit(self, batch):
        with self.changed:
            index = self.count
            self.count += 1
            self.events.append(f"submit {index}")
            self.changed.notify_all()
        standin = self

        class Pending:
            done_at = None

            def result(self):
                with standin.changed:
                    overlapped = standin.changed.wait_for(lambda: standin.count > index + 1, timeout=1.0)
                    standin.events.append(f"result {index}" + ("" if overlapped else " alone"))
                time.sleep(0.01)
                self.done_at = time.perf_counter()
                return {"n": np.array([index])}

        return Pending()


def test_pipeline_submits_the_next_batch_while_the_engine_runs_one(tmp_path):
    import cv2

    from edge_edet.contract.letterbox import letterbox
    from edge_edet.contract.metadata import DeployInfo
    from edge_edet.runtime.detections import Detections
    from edge_edet.runtime.pipeline import Pipeline
    from edge_edet.runtime.sources import open_source

    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(6):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((48, 64, 3), 40 * index, np.uint8))
    engine = AsyncStandIn()

    class Detector:
        info = DeployInfo(model="standin", input_size=(32, 32), labels=["thing"], mean=(0, 0, 0), std=(1, 1, 1))
        input_size = (32, 32)
        backend = engine

        def batch_size_for(self, count):
            return 1

        def allocate_input(self, batch):
            return np.zeros((batch, 32, 32, 3), np.uint8)

        def preprocess(self, frames, out):
            return out, [letterbox(f, self.input_size, out=out[i])[1] for i, f in enumerate(frames)]

        def submit(self, batch):
            return engine.submit(batch)

        def infer(self, batch):  # warm-up
            return {"n": np.array([1])}

        def postprocess(self, outputs, scales, shapes):
            return [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])]

    summary = Pipeline(Detector(), open_source(str(folder)), [], overlay=False).run()
    assert summary["frames"] == 6
    results = [event for event in engine.events if event.startswith("result")]
    assert results == [f"result {i}" for i in range(5)] + ["result 5 alone"]  # each overlapped the next submission
    # engine-only time counts the engine's busy span once however batches overlapped: never above the wall time
    infer = summary["stages"]["infer"]
    assert infer["count"] == 6 and infer["mean_ms"] * 6 <= summary["elapsed_s"] * 1000 + 1


def test_second_start_loads_from_the_model_cache(person, tmp_path):
    from edge_edet.runtime.backends.openvino_backend import OpenVINOBackend

    folder = tmp_path / "cache"
    first = OpenVINOBackend(person, cache_dir=str(folder))
    first.close()
    assert not first.loaded_from_cache and any(name.endswith(".blob") for name in os.listdir(folder))
    second = OpenVINOBackend(person, cache_dir=str(folder))
    try:
        assert second.loaded_from_cache and second.describe()["model_cache"] == str(folder)
    finally:
        second.close()
    off = OpenVINOBackend(person, cache_dir="")
    assert off.cache_dir is None and not off.loaded_from_cache
    off.close()


def test_compile_properties_follow_the_streams_and_the_mode():
    require_openvino()
    import openvino.properties as props
    import openvino.properties.hint as hints

    from edge_edet.runtime.backends.openvino_backend import compile_config

    one = compile_config("CPU", 1, "accuracy", 0)
    assert one[hints.performance_mode] == hints.PerformanceMode.LATENCY
    assert one[hints.execution_mode] == hints.ExecutionMode.ACCURACY and props.inference_num_threads not in one
    many = compile_config("CPU", 4, "performance", 2)
    assert many[hints.performance_mode] == hints.PerformanceMode.THROUGHPUT and many[hints.num_requests] == 4
    assert many[hints.execution_mode] == hints.ExecutionMode.PERFORMANCE and many[props.inference_num_threads] == 2
    assert props.inference_num_threads not in compile_config("GPU", 1, "accuracy", 2)  # a CPU setting only


# -- choosing it ----------------------------------------------------------------------------------
def test_auto_picks_openvino_where_it_is_faster_and_says_so(person, person_fp16, monkeypatch):
    from edge_edet.runtime import Detector
    from edge_edet.runtime import backends

    for path, expected in ((person_fp16, "openvino"), (person, "onnxruntime")):  # FP16 faster; FP32 level
        detector = Detector.from_file(path)
        try:
            assert detector.backend.name == expected and detector.backend.chosen_by == "auto"
            assert "chosen by --backend auto" in detector.backend.label()
        finally:
            detector.close()
    assert backends.choose_onnx_backend(person_fp16, providers=["cpu"]) == "onnxruntime"  # ORT's providers named
    assert backends.choose_onnx_backend(person, openvino_options=True) == "openvino"  # --device asks for it
    monkeypatch.setattr(backends, "_installed", lambda module: False)
    assert backends.choose_onnx_backend(person_fp16) == "onnxruntime"  # not installed: ONNX Runtime


def test_auto_falls_back_to_onnxruntime_when_openvino_cannot_compile(person_fp16, monkeypatch, capsys):
    from edge_edet.runtime import Detector
    from edge_edet.runtime.backends import openvino_backend

    def refuse(*args, **kwargs):
        raise openvino_backend.OpenVINOCompileError("OpenVINO cannot compile it for CPU: (a stand-in refusal)")

    monkeypatch.setattr(openvino_backend.OpenVINOBackend, "__init__", refuse)
    detector = Detector.from_file(person_fp16)
    try:
        assert detector.backend.name == "onnxruntime" and detector.backend.chosen_by == "auto"
    finally:
        detector.close()
    assert "running it with ONNX Runtime instead" in capsys.readouterr().err
    with pytest.raises(EdgeEdetError, match="cannot compile"):
        Detector.from_file(person_fp16, backend="openvino")  # asked for by name: its refusal stands


def cli(*argv, timeout=300):
    return subprocess.run([sys.executable, "-m", "edge_edet", *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def one_sentence(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edge-edet"), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_wrong_backend_options_are_one_sentence(person, tmp_path):
    video = shared_path("data", "video", "people_walking.mp4")
    engine = tmp_path / "model.trt"
    engine.write_bytes(b"")
    available = set(openvino.Core().available_devices)
    cases = [(("--engine", person, "--backend", "onnxruntime", "--device", "CPU"), "--device applies to OpenVINO"),
             (("--engine", person, "--backend", "openvino", "--providers", "cpu"), "OpenVINO takes --device"),
             (("--engine", str(engine), "--backend", "openvino"), "applies to .onnx models"),
             (("--engine", "triton://127.0.0.1:9/m", "--device", "GPU"), "apply to .onnx models")]
    if not any(d.startswith("NPU") for d in available):
        cases.append((("--engine", person, "--device", "NPU"), "OpenVINO has no NPU device here"))
    for argv, expected in cases:
        result = cli("run", *argv, "--source", video, "--headless", "--max-frames", "1")
        assert result.returncode == 2 and expected in one_sentence(result.stderr), (argv, result.stderr)
    for argv, expected in [(("--backend", "tensorrt"), "is not a back-end"),
                           (("--device", "TPU"), "is not an OpenVINO device")]:  # argparse's own usage + error
        result = cli("run", "--engine", person, *argv, "--source", video)
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr


# -- the commands ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_streams_through_openvino_with_onnxruntimes_detections(person, tmp_path):
    video = shared_path("data", "video", "people_walking.mp4")
    lines = {}
    for backend in ("onnxruntime", "openvino"):
        jsonl = tmp_path / f"{backend}.jsonl"
        result = cli("run", "--engine", person, "--backend", backend, "--source", video, "--no-drop", "--headless",
                     "--max-frames", "25", "--json", str(jsonl))
        assert result.returncode == 0, result.stderr
        start = [line for line in result.stderr.splitlines() if line.startswith("edge-edet: running")][0]
        assert f"{backend} " in start  # the start line says which back-end runs ...
        assert f"back-end {backend} " in result.stdout  # ... and so does the exit summary
        lines[backend] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines["openvino"]) == len(lines["onnxruntime"]) == 25
    found = 0
    for mine, theirs in zip(lines["onnxruntime"], lines["openvino"]):
        assert len(mine["detections"]) == len(theirs["detections"])
        for a, b in zip(mine["detections"], theirs["detections"]):
            np.testing.assert_allclose(a["box"], b["box"], atol=0.1)
        found += len(mine["detections"])
    assert found > 25


@pytest.mark.slow
def test_bench_times_each_backend_and_ends_with_one_json_line(person, tmp_path):
    report = tmp_path / "bench.json"
    result = cli("bench", "--model", person, "--backend", "onnxruntime,openvino", "--iterations", "4",
                 "--warmup", "1", "--output", str(report))
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last["backends"]) == {"onnxruntime", "openvino"}
    for name, figures in last["backends"].items():
        assert 0 < figures["median_ms"] <= figures["p90_ms"]
    assert "openvino vs onnxruntime (median)" in result.stdout
    saved = json.loads(report.read_text())
    assert saved["backends"]["openvino"]["latency"]["iterations"] == 4
    assert saved["backends"]["openvino"]["backend"]["hint"] == "latency"
    assert saved["backend"]["backend"] == "onnxruntime"  # the first listed, where one-back-end readers look
    result = cli("bench", "--model", person, "--backend", "openvino,openvino")
    assert result.returncode == 2 and "names a back-end twice" in result.stderr


# -- Triton ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory):
    """lite0 256 with a dynamic batch of 1..2 (random weights, low threshold): what Triton batches."""
    require_openvino()
    import torch

    import edge_edet
    from edge_edet.export import export_onnx

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("dynamic") / "lite0.onnx")
    model = edge_edet.create_model("lite0", num_classes=2, input_size=256)
    export_onnx(model, path, labels=["person", "car"], score_threshold=0.001, dynamic_batch=2, log=lambda *a: None)
    return path


def load_like_tritons_openvino_backend(model_file, config):
    """What Triton's OpenVINO backend does with a repository model (its src/openvino.cc, read for the
    calls): read the file, declare the input's element type and "N..." layout, set the batch to
    max_batch_size, compile with the config's PERFORMANCE_HINT and NUM_STREAMS."""
    from openvino.preprocess import PrePostProcessor

    core = openvino.Core()
    model = core.read_model(model_file)
    ppp = PrePostProcessor(model)
    ppp.input("images").tensor().set_element_type(openvino.Type.u8)
    if config.max_batch_size:  # a batching config: "N..." layout, then the batch set to max_batch_size
        ppp.input("images").tensor().set_layout(openvino.Layout("N..."))
    model = ppp.build()
    if config.max_batch_size:
        openvino.set_batch(model, config.max_batch_size)
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    return core.compile_model(model, parameters["TARGET_DEVICE"],
                              {"PERFORMANCE_HINT": parameters["PERFORMANCE_HINT"],
                               "NUM_STREAMS": parameters["NUM_STREAMS"]})


@pytest.mark.slow
@pytest.mark.parametrize("which", ["person", "dynamic"])
def test_triton_repo_for_tritons_openvino_backend(which, person, dynamic_onnx, frames, tmp_path):
    pytest.importorskip("tritonclient.grpc", reason="tritonclient is part of the test extra")
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from edge_edet.runtime import Detector

    path = person if which == "person" else dynamic_onnx
    repo = tmp_path / "repo"
    result = cli("triton-repo", "--engine", path, "--repo", str(repo), "--platform", "openvino", "--name", "m",
                 *(("--instances", "2") if which == "dynamic" else ()))
    assert result.returncode == 0, result.stderr
    config = text_format.Parse((repo / "m" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.backend == "openvino" and not config.platform and config.default_model_filename == "model.onnx"
    assert (repo / "m" / "1" / "model.onnx").read_bytes() == open(path, "rb").read()  # the ONNX as it is
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    assert parameters["TARGET_DEVICE"] == "CPU" and "edge_edet" in parameters
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    if which == "person":  # a static export: Triton does not batch it (max_batch_size 0, full dims)
        assert config.max_batch_size == 0 and parameters["PERFORMANCE_HINT"] == "LATENCY"
        assert parameters["NUM_STREAMS"] == "1" and "ENABLE_BATCH_PADDING" not in parameters
    else:
        assert config.max_batch_size == 2 and parameters["PERFORMANCE_HINT"] == "THROUGHPUT"
        assert parameters["NUM_STREAMS"] == "2" and parameters["ENABLE_BATCH_PADDING"] == "YES"
    compiled = load_like_tritons_openvino_backend(str(repo / "m" / "1" / "model.onnx"), config)
    local = Detector.from_file(path, backend="onnxruntime")
    try:
        count = max(1, config.max_batch_size)
        batch = np.zeros((count,) + local.input_size + (3,), np.uint8)
        local.preprocess(frames[:count], out=batch)
        served = {port.get_any_name(): value for port, value in compiled.create_infer_request().infer(batch).items()}
        expected = local.infer(batch)
        lead = (config.max_batch_size,) if config.max_batch_size else ()
        for tensor in config.output:  # the four outputs the config declares (with the batch when Triton batches)
            assert served[tensor.name].shape == lead + tuple(tensor.dims)
        if which == "person":  # real people: Triton's OpenVINO (bf16 where the CPU has it) finds them too
            count = int(expected["num_detections"][0, 0])
            assert count > 0 and abs(int(served["num_detections"][0, 0]) - count) <= 1
            assert iou(served["detection_boxes"][0, 0], expected["detection_boxes"][0, 0]) > 0.9
        else:
            np.testing.assert_array_equal(served["num_detections"], expected["num_detections"])
    finally:
        local.close()


@pytest.mark.slow
def test_triton_repo_platform_refusals(person, tmp_path):
    engine = tmp_path / "m.plan"
    engine.write_bytes(b"x")
    for argv, expected in [(("--engine", str(engine), "--platform", "openvino"), "is a TensorRT engine"),
                           (("--engine", person, "--platform", "tensorrt"), "is not one")]:
        result = cli("triton-repo", *argv, "--repo", str(tmp_path / "repo"))
        assert result.returncode == 2 and expected in one_sentence(result.stderr), result.stderr
    assert sorted(os.listdir(tmp_path)) == ["m.plan"]


@pytest.mark.slow
def test_serve_backend_openvino_answers_like_the_local_model(person, frames):
    pytest.importorskip("pytriton", reason="nvidia-pytriton absent (.ci/run installs it --no-deps)")
    import signal
    import socket

    import tritonclient.grpc as grpcclient

    from edge_edet.runtime import Detector

    ports = []
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    http, grpc, metrics = ports
    proc = subprocess.Popen([sys.executable, "-m", "edge_edet", "serve", "--engine", person, "--name", "person",
                             "--backend", "openvino", "--http-port", str(http), "--grpc-port", str(grpc),
                             "--metrics-port", str(metrics)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}")
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                if client.is_model_ready("person", client_timeout=2):
                    break
            except Exception:
                pass
            time.sleep(0.3)
        client.close()
        assert proc.poll() is None, proc.stdout.read()
        remote = Detector.from_file(f"triton://127.0.0.1:{grpc}/person")
        local = Detector.from_file(person, backend="openvino")
        try:
            for frame in frames[::6]:
                assert_same_detections(local.detect(frame)[0], remote.detect(frame)[0], box_tol=1e-3, score_tol=1e-6)
        finally:
            remote.close()
            local.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "openvino" in [line for line in output.splitlines() if line.startswith("serving person")][0]
