"""Triton scale-out: `edge-edet serve` (PyTriton), `edge-edet triton-repo`, the triton:// back-end.

Every server here is the real Triton Inference Server bundled in nvidia-pytriton, started by the
test on free loopback ports and stopped at the end; the model is a real lite0 deploy ONNX with a
dynamic batch.  The one stand-in is SlowBackend (the real ONNX Runtime back-end plus a sleep),
which makes a real server answer slowly.
"""
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import IN_CI, REPO, require_module, shared_path
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo

grpcclient = require_module("tritonclient.grpc", "tritonclient is part of the test extra")
from tritonclient.grpc import model_config_pb2  # noqa: E402
from google.protobuf import text_format  # noqa: E402

HAVE_PYTRITON = True
try:
    import pytriton  # noqa: F401
except ImportError:
    HAVE_PYTRITON = False
# under CI=true (.ci/run installs it) these tests run regardless and fail on the missing module
needs_pytriton = pytest.mark.skipif(not HAVE_PYTRITON and not IN_CI,
                                    reason="nvidia-pytriton absent (.ci/run installs it --no-deps)")
START_TIMEOUT_S = 120


def free_ports(count=3):
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def cli(*argv, timeout=120):
    return subprocess.run([sys.executable, "-m", "edge_edet", *argv], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def one_sentence(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edge-edet: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def video():
    return shared_path("data", "video", "people_walking.mp4")


@pytest.fixture(scope="module")
def deploy_onnx(tmp_path_factory):
    """A real lite0 deploy graph with a dynamic batch of 1..4 (random weights, low threshold: boxes come out)."""
    import edge_edet
    from edge_edet.export import export_onnx

    path = str(tmp_path_factory.mktemp("model") / "person.onnx")
    model = edge_edet.create_model("lite0", num_classes=2, input_size=320)
    export_onnx(model, path, labels=["person", "bicycle"], score_threshold=0.001, dynamic_batch=4, log=lambda *a: None)
    return path


class ServeProcess:
    """`python -m edge_edet serve ...` on free loopback ports, ready when the model answers."""

    def __init__(self, model, name="person", ports=None, extra=()):
        self.http, self.grpc, self.metrics = ports or free_ports()
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_edet", "serve", "--engine", model, "--name", name,
             "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics),
             *extra], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own process group: kill() takes tritonserver and the stub too
        self.output = ""
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc}")
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}: {self.proc.stdout.read()}")
            try:
                if client.is_model_ready(name, client_timeout=2):
                    break
            except Exception:
                pass
            time.sleep(0.3)
        else:
            self.kill()
            raise AssertionError("serve did not become ready in time")
        client.close()

    @property
    def uri(self):
        return f"triton://127.0.0.1:{self.grpc}/{self.name}"

    def terminate(self, sig=signal.SIGTERM, timeout=60, group=False):
        """`sig` to serve, or to its whole process group (Ctrl-C in a terminal, `timeout`, systemd)."""
        if group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        self.output, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        """SIGKILL to the whole server (serve, tritonserver, stub), as when its machine goes down.
        serve starts tritonserver in a process group of its own, so that group is killed as well."""
        groups = {self.proc.pid}
        for task in glob.glob(f"/proc/{self.proc.pid}/task/*/children"):
            try:
                with open(task) as handle:
                    children = handle.read().split()
            except OSError:
                continue
            for child in children:
                try:
                    groups.add(os.getpgid(int(child)))
                except ProcessLookupError:
                    pass
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def server(deploy_onnx):
    if not HAVE_PYTRITON:
        require_module("pytriton", "nvidia-pytriton absent (.ci/run installs it --no-deps)")
    process = ServeProcess(deploy_onnx)
    yield process
    code = process.terminate(signal.SIGTERM, group=True)  # as `timeout` or systemd stop it
    assert code == 0, process.output  # a clean stop on SIGTERM
    assert "stopped (SIGTERM)" in process.output
    # Triton and its stub, in their own group, are stopped in order by serve: no stub killed mid-way
    assert "leaked shared_memory" not in process.output, process.output
    # a CPU machine: no GPU metrics asked for, so no NVML complaint; the start line counts right
    assert "Failed to initialize NVML" not in process.output, process.output
    assert "(lite0 320x320, 2 classes, fp32" in process.output, process.output


# -- the triton:// address --------------------------------------------------------------------
def test_triton_uri_parsing():
    from edge_edet.runtime.backends.triton_backend import parse_triton_uri

    assert parse_triton_uri("triton://127.0.0.1:8001/person") == ("127.0.0.1", 8001, "person")
    assert parse_triton_uri("TRITON://gpu-server:9001/d0_fp16.v2") == ("gpu-server", 9001, "d0_fp16.v2")
    assert parse_triton_uri("triton://[::1]:8001/m") == ("::1", 8001, "m")
    for bad in ("triton://host/person", "triton://host:abc/person", "triton://:8001/person", "triton://host:8001/",
                "triton://host:8001/a/b", "triton://host:70000/m", "triton://host:8001/m?x=1", "triton://h:1/m#f"):
        with pytest.raises(EdgeEdetError, match="expected triton://HOST:PORT/MODEL"):
            parse_triton_uri(bad)


def test_malformed_uri_is_one_sentence(video):
    result = cli("run", "--engine", "triton://127.0.0.1/person", "--source", video, "--headless")
    assert result.returncode == 2
    assert "expected triton://HOST:PORT/MODEL" in one_sentence(result.stderr)


def test_server_down_at_start_names_the_address(video, tmp_path):
    port = free_ports(1)[0]
    out = tmp_path / "out.mp4"
    started = time.time()
    result = cli("run", "--engine", f"triton://127.0.0.1:{port}/person", "--source", video, "--headless",
                 "--output", str(out))
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert f"no Triton server answers at 127.0.0.1:{port}" in line
    assert time.time() - started < 60
    assert not out.exists() and os.listdir(tmp_path) == []  # nothing half-written


# -- served batch rules (metadata only) ------------------------------------------------------------
def _info(batch, dynamic):
    return DeployInfo(model="lite0", input_size=(320, 320), labels=["person"], mean=(0, 0, 0), std=(1, 1, 1),
                      batch=batch, dynamic_batch=dynamic)


def test_served_batch_rules():
    from edge_edet.serve.tensors import served_batch

    assert served_batch(_info(4, True), None, "m") == 4
    assert served_batch(_info(4, True), 2, "m") == 2
    assert served_batch(_info(1, False), None, "m") == 1
    assert served_batch(_info(2, False), 1, "m") == 2  # a static export is served at its own size
    with pytest.raises(EdgeEdetError, match="--max-batch 8 is above the batch of m .4.; re-export"):
        served_batch(_info(4, True), 8, "m")
    with pytest.raises(EdgeEdetError, match="static batch of 1"):
        served_batch(_info(1, False), 4, "m")


@pytest.mark.parametrize("batch,dynamic,max_batch,expected_max,lead,batcher", [
    (1, False, 1, 0, [1], False),  # the default export: Triton must not batch a fixed batch dimension
    (2, False, 2, 0, [2], False),
    (4, True, 4, 4, [], True),  # --dynamic-batch 4: Triton batches up to 4
    (4, True, 1, 1, [], False)])
def test_repository_batching_follows_tritons_rule(batch, dynamic, max_batch, expected_max, lead, batcher):
    """Triton's onnxruntime and TensorRT back-ends require dimension 0 of the model to be variable (-1)
    whenever max_batch_size > 0: a static export is served with max_batch_size 0 and its full dims."""
    from edge_edet.serve.repository import model_config

    config = model_config(_info(batch, dynamic), "m", engine=False, max_batch=max_batch)
    assert config.max_batch_size == expected_max and config.HasField("dynamic_batching") is batcher
    assert list(config.input[0].dims) == lead + [320, 320, 3]
    assert [list(t.dims) for t in config.output] == [lead + [1], lead + [100, 4], lead + [100], lead + [100]]


def _write_onnx(tmp_path, **info):
    """A tiny graph with the deploy contract and this metadata (test_engine_build's graph)."""
    from dataclasses import replace

    import onnx
    from test_engine_build import deploy_info, make_onnx

    from edge_edet.contract.metadata import write_onnx_metadata

    path = make_onnx(tmp_path / "tiny.onnx", plugin="EfficientNMS_TRT" if info.get("nms") == "efficientnms" else None)
    model = onnx.load(path)
    write_onnx_metadata(model, replace(deploy_info(), **info))
    onnx.save(model, path)
    return path


def test_efficientnms_export_is_refused_for_onnx_runtime(tmp_path, capsys):
    from edge_edet.cli import main as cli_main

    model = _write_onnx(tmp_path, nms="efficientnms")
    http, grpc, metrics = free_ports()
    for argv in (["triton-repo", "--engine", model, "--repo", str(tmp_path / "repo")],
                 ["serve", "--engine", model, "--http-port", str(http), "--grpc-port", str(grpc),
                  "--metrics-port", str(metrics)]):
        assert cli_main(argv) == 2
        line = one_sentence(capsys.readouterr().err)
        assert "EfficientNMS_TRT" in line and "--nms onnx" in line and "plan" in line, line
    assert sorted(os.listdir(tmp_path)) == ["tiny.onnx"]  # no repository written


def test_triton_repo_names_the_version_compatible_flag_and_warns_on_a_min_batch_above_one(tmp_path, capsys):
    """Triton's TensorRT back-end loads a version-compatible plan only with
    --backend-config=tensorrt,version-compatible=true; an engine whose profile starts above 1 refuses
    Triton's batch-1 requests."""
    from edge_edet.cli import main as cli_main
    from edge_edet.contract.metadata import write_sidecar
    from edge_edet.serve.tensors import VERSION_COMPATIBLE_FLAG

    assert VERSION_COMPATIBLE_FLAG == "--backend-config=tensorrt,version-compatible=true"
    plan = tmp_path / "d0.plan"
    plan.write_bytes(b"a TensorRT plan")
    write_sidecar(str(plan), DeployInfo(model="d0", input_size=(512, 512), labels=["person"], mean=(0, 0, 0),
                                        std=(1, 1, 1), batch=8, dynamic_batch=True, precision="fp16",
                                        extra={"version_compatible": True, "batch_profile": [2, 4, 8]}))
    assert cli_main(["triton-repo", "--engine", str(plan), "--repo", str(tmp_path / "repo")]) == 0
    captured = capsys.readouterr()
    assert f"tritonserver --model-repository {tmp_path / 'repo'} {VERSION_COMPATIBLE_FLAG}" in captured.out
    assert "smallest batch is 2" in captured.err and "--batch 1:4:8" in captured.err
    write_sidecar(str(plan), DeployInfo(model="d0", input_size=(512, 512), labels=["person"], mean=(0, 0, 0),
                                        std=(1, 1, 1), batch=8, dynamic_batch=True, precision="fp16",
                                        extra={"batch_profile": [1, 4, 8]}))
    assert cli_main(["triton-repo", "--engine", str(plan), "--repo", str(tmp_path / "repo2")]) == 0
    captured = capsys.readouterr()
    assert "--backend-config" not in captured.out and "warning" not in captured.err
    with open(os.path.join(REPO, "docs", "scale_out.md")) as handle:
        assert VERSION_COMPATIBLE_FLAG in handle.read()


def test_serve_passes_threads_device_and_mode_to_the_back_end_once(monkeypatch, tmp_path):
    """--threads, --device and --execution-mode reach the served back-end through one dict (backend_options)."""
    from edge_edet.commands import serve as serve_command
    from edge_edet.serve import server as server_module

    seen = {}
    monkeypatch.setattr(server_module, "serve", lambda options, log=print: seen.setdefault("options", options) and 0)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    serve_command.main(["--engine", str(model), "--threads", "1", "--backend", "openvino", "--device", "CPU",
                        "--execution-mode", "performance"])
    options = seen["options"]
    assert options.backend_options == {"threads": 1, "device": "CPU", "execution_mode": "performance"}
    assert not hasattr(options, "threads")


def test_libpython_folder_goes_first():
    from edge_edet.serve.environment import python_library_dir, use_own_libpython

    env = {"LD_LIBRARY_PATH": "/opt/other:/usr/lib"}
    folder = python_library_dir()
    result = use_own_libpython(env)
    if folder:  # this interpreter has a shared libpython: its folder is searched first
        assert result.split(os.pathsep)[0] == folder and result.endswith("/opt/other:/usr/lib")
        assert use_own_libpython(dict(env, LD_LIBRARY_PATH=result)) == result  # not added twice
    else:
        assert result == "/opt/other:/usr/lib"


def test_pytriton_proxy_patch_rejects_unknown_proxy():
    from edge_edet.serve.pytriton_compat import HELPER, patch_proxy_source

    proxy = ("request[input_name] = input_tensor.as_numpy()\n"
             "output_tensors=[pb_utils.Tensor(name, value) for name, value in casted.items()]\n")
    patched = patch_proxy_source(proxy)
    assert "_edge_edet_array(input_tensor)" in patched and "_edge_edet_tensor(pb_utils, name, value)" in patched
    assert patched.endswith(HELPER)
    compile(patched, "model.py", "exec")
    with pytest.raises(EdgeEdetError, match="differs from the one edge_edet knows"):
        patch_proxy_source("something else")


# -- triton-repo ------------------------------------------------------------------------------------
TRITON_TYPES = {1: "TYPE_FP32", 2: "TYPE_UINT8", 6: "TYPE_INT32"}  # onnx.TensorProto element types


@pytest.mark.slow
def test_repository_config_matches_the_onnx(deploy_onnx, tmp_path):
    import onnx

    repo = tmp_path / "repo"
    result = cli("triton-repo", "--engine", deploy_onnx, "--repo", str(repo), "--instances", "2")
    assert result.returncode == 0, result.stderr
    folder = repo / "person"
    assert sorted(os.listdir(folder)) == ["1", "config.pbtxt", "labels.txt"]
    assert (folder / "1" / "model.onnx").read_bytes() == open(deploy_onnx, "rb").read()
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    graph = onnx.load(deploy_onnx, load_external_data=False).graph
    assert config.name == "person" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 4 and config.dynamic_batching.max_queue_delay_microseconds == 2000
    assert config.instance_group[0].count == 2
    for declared, real in [(config.input, graph.input), (config.output, graph.output)]:
        assert [t.name for t in declared] == [v.name for v in real]
        for tensor, value in zip(declared, real):
            shape = value.type.tensor_type.shape.dim
            assert not shape[0].dim_value  # the ONNX's batch dimension is dynamic ...
            assert list(tensor.dims) == [d.dim_value for d in shape[1:]]  # ... and the rest match exactly
            assert model_config_pb2.DataType.Name(tensor.data_type) == TRITON_TYPES[value.type.tensor_type.elem_type]
    props = {p.key: p.value for p in onnx.load(deploy_onnx, load_external_data=False).metadata_props}
    assert json.loads(config.parameters["edge_edet"].string_value) == json.loads(props["edge_edet"])
    assert (folder / "labels.txt").read_text().splitlines() == ["person", "bicycle"]
    classes = [t for t in config.output if t.name == "detection_classes"][0]
    assert classes.label_filename == "labels.txt"


@pytest.mark.slow
def test_repository_never_overwrites_without_force(deploy_onnx, tmp_path):
    repo = tmp_path / "repo"
    (repo / "other" / "1").mkdir(parents=True)
    (repo / "other" / "config.pbtxt").write_text('name: "other"')
    result = cli("triton-repo", "--engine", deploy_onnx, "--repo", str(repo))
    assert result.returncode == 2 and "--force" in one_sentence(result.stderr)
    assert sorted(os.listdir(repo)) == ["other"] and sorted(os.listdir(tmp_path)) == ["repo"]
    result = cli("triton-repo", "--engine", deploy_onnx, "--repo", str(repo), "--force", "--name", "det", "--max-batch", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(repo)) == ["det", "other"] and sorted(os.listdir(tmp_path)) == ["repo"]
    config = text_format.Parse((repo / "det" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.max_batch_size == 2 and config.name == "det"


@pytest.mark.slow
def test_repository_bad_input(deploy_onnx, tmp_path):
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not an onnx file")
    repo = tmp_path / "repo"
    for argv, expected in [(("--engine", str(foreign)), "not a readable ONNX file"),
                           (("--engine", deploy_onnx, "--max-batch", "8"), "--max-batch 8 is above the batch"),
                           (("--engine", str(tmp_path / "missing.onnx")), "does not exist"),
                           (("--engine", deploy_onnx, "--name", "a/b"), "not a Triton model name")]:
        result = cli("triton-repo", *argv, "--repo", str(repo))
        assert result.returncode == 2 and expected in one_sentence(result.stderr), result.stderr
        assert sorted(os.listdir(tmp_path)) == ["foreign.onnx"]  # nothing half-written


# -- serve and the triton:// back-end against a real server -------------------------------------------
@pytest.mark.slow
def test_served_model_matches_local_and_publishes_metadata(server, deploy_onnx, video):
    import cv2

    from edge_edet.runtime import Detector

    local = Detector.from_file(deploy_onnx)
    remote = Detector.from_file(server.uri)
    try:
        assert remote.input_size == (320, 320) and remote.labels == ["person", "bicycle"]  # from the server
        assert remote.info.to_json() == local.info.to_json()
        assert remote.backend.dynamic_batch and remote.backend.max_batch == 4
        capture = cv2.VideoCapture(video)
        frames = [capture.read()[1] for _ in range(3)]
        capture.release()
        for mine, theirs in zip(local.detect(frames), remote.detect(frames)):
            assert len(mine.boxes) > 0 and len(mine.boxes) == len(theirs.boxes)
            np.testing.assert_allclose(mine.boxes, theirs.boxes, atol=1e-3)
            np.testing.assert_allclose(mine.scores, theirs.scores, atol=1e-5)
            assert mine.labels == theirs.labels
    finally:
        remote.close()
        local.close()


@pytest.mark.slow
def _settled_stats(client, name, timeout=10.0):
    """The model's statistics once two reads 0.3 s apart agree: the server counts a request after it has
    answered it, so a read straight after an earlier test's (or this one's) last answer can come too early."""
    previous = client.get_inference_statistics(name, as_json=True)["model_stats"][0]
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.3)
        current = client.get_inference_statistics(name, as_json=True)["model_stats"][0]
        if current.get("inference_count") == previous.get("inference_count"):
            return current
        previous = current
    return previous


def test_dynamic_batching_gathers_frames_from_many_clients(server):
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc}")
    before = _settled_stats(client, server.name)
    images = np.random.default_rng(0).integers(0, 255, (1, 320, 320, 3), dtype=np.uint8)

    def send():
        own = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc}")
        for _ in range(4):
            request = grpcclient.InferInput("images", [1, 320, 320, 3], "UINT8")
            request.set_data_from_numpy(images)
            assert own.infer(server.name, [request]).as_numpy("num_detections").shape == (1, 1)
        own.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    after = _settled_stats(client, server.name)
    inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert inferences == 16
    assert executions < inferences  # some executions carried more than one frame
    config = client.get_model_config(server.name, as_json=True)["config"]
    assert config["max_batch_size"] == 4 and "dynamic_batching" in config
    client.close()


@pytest.mark.slow
def test_run_streams_through_the_server(server, video, tmp_path):
    summary_path, json_path = tmp_path / "summary.json", tmp_path / "dets.jsonl"
    result = cli("run", "--engine", server.uri, "--source", video, "--no-drop", "--headless", "--max-frames", "12",
                 "--json", str(json_path), "--summary-json", str(summary_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["frames"] == 12 and summary["dropped"] == 0
    remote = summary["backend"]["remote"]
    assert summary["backend"]["backend"] == "triton" and remote["round_trip"]["count"] >= 12
    assert remote["server"]["requests"] >= 12 and remote["server"]["mean_compute_ms"] > 0
    # the client's round trip holds the server's time plus the network and (de)serialisation, so it is
    # longer, and the network share is exactly the difference of the two means
    trip, inside = remote["round_trip"]["mean_ms"], remote["server"]["mean_request_ms"]
    assert trip > inside > 0
    assert remote["network_ms"] == pytest.approx(trip - inside, abs=0.01) and remote["network_ms"] > 0
    assert "remote   round trip" in result.stdout and "network" in result.stdout
    lines = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(12))


@pytest.mark.slow
def test_several_sources_go_to_the_server_as_one_request_per_batch(server, video, tmp_path):
    """Four sources, one process: each batch of frames is one request, and the server's statistics
    (its dynamic batcher) see batches of more than one frame."""
    summary_path, json_path = tmp_path / "summary.json", tmp_path / "dets.jsonl"
    result = cli("run", "--engine", server.uri, *["--source", video] * 4, "--no-drop", "--headless",
                 "--max-frames", "6", "--json", str(json_path), "--summary-json", str(summary_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert summary["frames"] == 24 and summary["batch"] == 4 and summary["mean_batch"] > 1
    remote = summary["backend"]["remote"]
    assert remote["round_trip"]["count"] < 24  # fewer requests than frames (the warm-up included)
    assert remote["server"]["requests"] < 24 and remote["server"]["mean_batch"] > 1
    lines = [json.loads(line) for line in json_path.read_text().splitlines()]
    for source in range(4):
        assert [line["frame"] for line in lines if line["source"] == source] == list(range(6))


@pytest.mark.slow
def test_unknown_model_is_one_sentence(server, video):
    result = cli("run", "--engine", f"triton://127.0.0.1:{server.grpc}/nope", "--source", video, "--headless")
    assert result.returncode == 2
    assert f"the Triton server at 127.0.0.1:{server.grpc} has no model 'nope' ready" in one_sentence(result.stderr)


@pytest.mark.slow
def test_serve_bad_input(server, deploy_onnx, tmp_path):
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"\x08\x07garbage")
    http, grpc, metrics = free_ports()
    for argv, expected in [(("--engine", deploy_onnx, "--grpc-port", str(server.grpc)), "is already in use"),
                           (("--engine", str(foreign)), "not a readable ONNX file"),
                           (("--engine", deploy_onnx, "--max-batch", "8"), "--max-batch 8 is above the batch")]:
        ports = {"--http-port": str(http), "--grpc-port": str(grpc), "--metrics-port": str(metrics)}
        args = list(argv)
        for flag, value in ports.items():
            if flag not in args:
                args += [flag, value]
        result = cli("serve", *args, timeout=60)
        assert result.returncode == 2 and expected in one_sentence(result.stderr), result.stderr
    assert os.listdir(tmp_path) == ["foreign.onnx"]


@pytest.mark.slow
@needs_pytriton
def test_a_static_export_is_served_whole(tmp_path):
    """The default (batch-1) export: Triton's config says max_batch_size 0 with the full [1,H,W,3]
    dims, the client sends the frame whole, and the answer is ONNX Runtime's."""
    import edge_edet
    from edge_edet.export import export_onnx
    from edge_edet.runtime.backends import open_backend
    from edge_edet.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    path = str(tmp_path / "static.onnx")
    export_onnx(edge_edet.create_model("lite0", num_classes=2, input_size=256), path, labels=["person", "bicycle"],
                score_threshold=0.001, log=lambda *a: None)
    process = ServeProcess(path, name="static")
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{process.grpc}")
        config = client.get_model_config("static", as_json=True)["config"]
        client.close()
        assert int(config.get("max_batch_size", 0)) == 0 and config["input"][0]["dims"] == ["1", "256", "256", "3"]
        remote = open_backend(process.uri)
        assert remote.max_batch == 1 and not remote.dynamic_batch
        frame = np.random.default_rng(0).integers(0, 255, (1, 256, 256, 3), dtype=np.uint8)
        got, want = remote.infer(frame), OnnxRuntimeBackend(path).infer(frame)
        remote.close()
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
    finally:
        assert process.terminate() == 0, process.output


# -- faults -----------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_pytriton
def test_server_killed_mid_stream_reconnects_without_skipping(deploy_onnx, video, tmp_path):
    """--no-drop: the client says the server is gone, backs off, reconnects and loses no frame."""
    ports = free_ports()
    first = ServeProcess(deploy_onnx, ports=ports)
    json_path = tmp_path / "dets.jsonl"
    frames = 40
    client = subprocess.Popen([sys.executable, "-m", "edge_edet", "run", "--engine", first.uri, "--source", video,
                               "--no-drop", "--headless", "--max-frames", str(frames), "--json", str(json_path)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        watcher = grpcclient.InferenceServerClient(f"127.0.0.1:{first.grpc}")
        deadline = time.time() + 120
        while time.time() < deadline and served(watcher, first.name) < 8:  # mid-stream, by the server's count
            time.sleep(0.05)
        watcher.close()
        assert client.poll() is None
        first.kill()  # SIGKILL: no goodbye
        time.sleep(2.0)
        second = ServeProcess(deploy_onnx, ports=ports)
        out, err = client.communicate(timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
        first.kill()
        if second:
            second.terminate()
    assert client.returncode == 0, err
    assert "lost the Triton server at 127.0.0.1" in err and "reconnected to the Triton server" in err
    lines = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(frames))  # not one frame skipped
    assert "dropped 0" in out


def served(client, name):
    stats = client.get_inference_statistics(name, as_json=True)["model_stats"]
    return int(stats[0].get("inference_count", 0)) if stats else 0


class SlowBackend:
    """Stand-in: the real ONNX Runtime back-end plus a fixed sleep, so a real server answers slowly."""

    def __init__(self, inner, delay_s):
        self.inner, self.delay_s = inner, delay_s

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def infer(self, images):
        time.sleep(self.delay_s)
        return self.inner.infer(images)


@pytest.mark.slow
@needs_pytriton
def test_slow_server_live_source_keeps_only_the_newest_frame(deploy_onnx, video, monkeypatch):
    """A live (latest-frame) source on a slow server: frames are dropped at the source, latency stays flat."""
    from edge_edet.runtime import Detector
    from edge_edet.runtime.pipeline import Pipeline
    from edge_edet.runtime.sources import open_source
    from edge_edet.serve import server as serve_module

    delay = 0.4
    original = serve_module.open_backend
    monkeypatch.setattr(serve_module, "open_backend", lambda *a, **k: SlowBackend(original(*a, **k), delay))
    http, grpc, metrics = free_ports()
    options = serve_module.ServeOptions(deploy_onnx, name="slow", http_port=http, grpc_port=grpc, metrics_port=metrics)
    with serve_module.Server(options, log=lambda message: None):
        detector = Detector.from_file(f"triton://127.0.0.1:{grpc}/slow")
        source = open_source(video, drop=True, realtime=True, max_frames=60)  # a 10 fps 'camera'
        summary = Pipeline(detector, source, overlay=False).run()
        detector.close()
    assert summary["dropped"] > summary["frames"]  # most frames were replaced by newer ones at the source
    latency = summary["latency"]
    assert latency["p50_ms"] < 4 * delay * 1e3  # about one inference, not a growing queue
    assert latency["p99_ms"] < 6 * delay * 1e3


class RecordingSink:
    """Records (frame index, time delivered); asks to stop once `after` frames came after the reconnect."""

    needs_image = False

    def __init__(self):
        self.delivered = []
        self.stop_requested = False
        self.reconnected_at = None

    def write(self, frame, detections, image):
        now = time.monotonic()
        self.delivered.append((frame.index, now))
        if self.reconnected_at and sum(1 for _, t in self.delivered if t > self.reconnected_at) >= 5:
            self.stop_requested = True

    def close(self):
        pass


@pytest.mark.slow
@needs_pytriton
def test_server_killed_live_source_sends_the_newest_frame_next(deploy_onnx, video):
    """Latest-frame source: frames captured during the outage are dropped; the first frame after the
    reconnect is a fresh one, not the one that was in flight when the server died."""
    from edge_edet.runtime import Detector
    from edge_edet.runtime.pipeline import Pipeline
    from edge_edet.runtime.sources import open_source

    ports = free_ports()
    first = ServeProcess(deploy_onnx, ports=ports)
    second = None
    detector = Detector.from_file(first.uri)
    source = open_source(video, drop=True, realtime=True)  # a 10 fps 'camera'
    sink = RecordingSink()
    pipeline = Pipeline(detector, source, [sink], overlay=False)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("summary", pipeline.run()), daemon=True)
    runner.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(sink.delivered) < 5:
            time.sleep(0.05)
        first.kill()
        killed_at = time.monotonic()
        time.sleep(2.0)
        second = ServeProcess(deploy_onnx, ports=ports)
        sink.reconnected_at = time.monotonic()
        runner.join(timeout=120)
    finally:
        pipeline.stop("test over")
        runner.join(timeout=30)
        detector.close()
        first.kill()
        if second:
            second.terminate()
    summary = result["summary"]
    before = [index for index, t in sink.delivered if t <= killed_at]
    after = [index for index, t in sink.delivered if t > sink.reconnected_at]
    outage_frames = (sink.reconnected_at - killed_at) * 10  # frames the camera made while the server was away
    assert len(after) >= 5
    assert after[0] - before[-1] >= 0.8 * outage_frames  # the newest frame went next, not the stale one
    assert summary["dropped"] >= outage_frames * 0.8


@pytest.mark.slow
@needs_pytriton
def test_repository_is_read_by_a_real_tritonserver(deploy_onnx, tmp_path):
    """The tritonserver binary bundled in nvidia-pytriton has no ONNX Runtime back-end, so it cannot run
    the model; it does read the repository: our config gets as far as the back-end lookup, while a
    config with one wrong field is rejected while parsing."""
    import pytriton

    from edge_edet.serve.environment import use_own_libpython

    repo = tmp_path / "repo"
    assert cli("triton-repo", "--engine", deploy_onnx, "--repo", str(repo)).returncode == 0
    broken = repo / "broken"
    broken.mkdir()
    (broken / "config.pbtxt").write_text((repo / "person" / "config.pbtxt").read_text()
                                         .replace('name: "person"', 'name: "broken"')
                                         .replace("max_batch_size: 4", "max_batch_size: four"))
    root = os.path.dirname(pytriton.__file__)
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.join(os.path.dirname(root), "nvidia_pytriton.libs"))
    use_own_libpython(env)
    http, grpc, metrics = free_ports()
    proc = subprocess.Popen([os.path.join(root, "tritonserver", "bin", "tritonserver"), "--model-repository", str(repo),
                             "--backend-directory", os.path.join(root, "tritonserver", "backends"),
                             "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
                             "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
                             "--metrics-address", "127.0.0.1", "--exit-on-error=false"],
                            env=env, stdout=open(tmp_path / "triton.log", "w"), stderr=subprocess.STDOUT)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}")
        deadline, models = time.time() + 60, {}
        while time.time() < deadline and "person" not in models:
            try:
                models = {m["name"]: m for m in client.get_model_repository_index(as_json=True).get("models", [])
                          if m.get("reason")}
            except Exception:
                pass
            time.sleep(0.3)
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "unable to find backend library for backend 'onnxruntime'" in models["person"]["reason"]
    log = (tmp_path / "triton.log").read_text()
    assert "broken" in log and "four" in log  # the wrong field is named while parsing ...
    assert "broken" not in models or "backend library" not in models["broken"]["reason"]  # ... and never loaded
