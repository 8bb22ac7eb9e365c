"""The threaded pipeline and `edge-edet run` / demo/webcam.py, end to end on a real exported lite0.

Threading details use FakeDetector (a stand-in with the Detector's stage methods, named as a
fake); everything a user runs goes through a real deploy ONNX exported in a module fixture.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import REPO, dying_mjpeg_camera, shared_path
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo
from edge_edet.runtime.detections import Detections
from edge_edet.contract.letterbox import letterbox
from edge_edet.runtime.pipeline import Pipeline, benchmark_source
from edge_edet.commands.run import MAKE_BUNDLED, main
from edge_edet.runtime.sinks import Sink, VideoFileSink
from edge_edet.runtime.sources import open_source

VIDEO_FRAMES = 151


@pytest.fixture(scope="module")
def video():
    return shared_path("data", "video", "cars_short.mp4")


@pytest.fixture(scope="module")
def lite0_onnx(deploy_lite0):
    """The suite's deploy graph (conftest: lite0 at 256, COCO labels, low threshold so boxes come out)."""
    return deploy_lite0


def count_frames(path):
    cap = cv2.VideoCapture(path)
    count, shape = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape
    cap.release()
    return count, shape


def run_main(capsys, *argv):
    code = main(list(argv), prog="webcam.py")
    out, err = capsys.readouterr()
    return code, out, err


# -- threading, with a fake detector ---------------------------------------------------------------
class FakeDetector:
    """Fake of runtime.Detector: real letterbox, a slow fake engine, one fixed box per frame."""

    def __init__(self, fail_at=None):
        self.info = DeployInfo(model="fake", input_size=(64, 64), labels=["thing"], mean=(0, 0, 0), std=(1, 1, 1))
        self.input_size = (64, 64)
        self.buffers_seen = set()
        self.allocated = []
        self.calls = 0
        self.fail_at = fail_at
        self.threads = set()

    def batch_size_for(self, count):
        return 1

    def allocate_input(self, batch):
        buffer = np.zeros((batch,) + self.input_size + (3,), np.uint8)
        self.allocated.append(id(buffer))
        return buffer

    def preprocess(self, frames, out):
        scales = [letterbox(frame, self.input_size, out=out[i])[1] for i, frame in enumerate(frames)]
        return out, scales

    def infer(self, batch):
        self.threads.add(threading.current_thread().name)
        self.buffers_seen.add(id(batch))
        self.calls += 1
        if self.fail_at is not None and self.calls > self.fail_at:
            raise RuntimeError("engine fell over")
        time.sleep(0.002)
        return {"marker": np.array([self.calls])}

    def postprocess(self, outputs, scales, shapes):
        return [Detections(np.array([[1, 2, 30, 40]], np.float32), np.array([0.5], np.float32),
                           np.array([0], np.int32), ["thing"])]


class RecordingSink(Sink):
    needs_image = True

    def __init__(self, stop_after=None):
        self.indices, self.closed, self.stop_after = [], False, stop_after
        self.thread = None

    def write(self, frame, detections, image):
        self.thread = threading.current_thread()
        self.indices.append(frame.index)
        assert image is frame.image and len(detections) == 1
        if self.stop_after and len(self.indices) >= self.stop_after:
            self.stop_requested = True

    def close(self):
        self.closed = True


def test_every_frame_in_order_with_pooled_buffers(video):
    detector = FakeDetector()
    sink = RecordingSink()
    pipeline = Pipeline(detector, open_source(video), [sink], warmup=1)
    summary = pipeline.run()
    assert sink.indices == list(range(VIDEO_FRAMES)) and sink.closed
    assert sink.thread is threading.current_thread()  # sinks on the caller's thread (GUI needs it)
    assert detector.threads == {threading.current_thread().name, "infer"}  # warm-up here, frames on "infer"
    assert len(detector.buffers_seen) <= 4  # queue_size 2 + 2: the letterbox buffers are reused
    assert detector.buffers_seen <= set(detector.allocated)  # every frame goes in through a back-end buffer
    assert summary["frames"] == VIDEO_FRAMES and summary["dropped"] == 0
    assert all(summary["stages"][s]["count"] == VIDEO_FRAMES for s in ("capture", "pre", "infer", "post", "render"))
    assert summary["engine_fps"] > 0 and summary["end_to_end_fps"] > 0
    assert not [t for t in threading.enumerate() if t.name in ("pre", "infer", "post", "capture")]


class CapturePacedFakeDetector(FakeDetector):
    """Fake whose 'engine' is slower than capture by construction: each call waits for 3 new frames."""

    def __init__(self):
        super().__init__()
        self.source = None

    def infer(self, batch):
        if self.source is not None:
            target = self.source.frames_read + 3
            deadline = time.time() + 10
            while self.source.frames_read < target and self.source.frames_read < VIDEO_FRAMES and time.time() < deadline:
                time.sleep(0.002)
        return super().infer(batch)


def test_latest_frame_mode_drops_at_the_source_not_in_queues(video):
    detector = CapturePacedFakeDetector()
    sink = RecordingSink()
    source = open_source(video, drop=True, realtime=False)
    detector.source = source
    summary = Pipeline(detector, source, [sink], warmup=0).run()
    assert len(detector.buffers_seen) <= 2  # one waiting, one in the engine: no queue of stale frames
    assert summary["dropped"] > 0 and summary["frames"] + summary["dropped"] == VIDEO_FRAMES
    assert sink.indices == sorted(sink.indices) and len(sink.indices) < VIDEO_FRAMES


def test_engine_error_stops_everything_and_finalises_output(video, tmp_path):
    out = str(tmp_path / "out.mp4")
    sink = VideoFileSink(out, fps=30)
    pipeline = Pipeline(FakeDetector(fail_at=10), open_source(video), [sink], warmup=0)
    with pytest.raises(RuntimeError, match="engine fell over"):
        pipeline.run()
    count, _ = count_frames(out)
    assert 1 <= count <= 10  # what got through is a playable file
    assert not [t for t in threading.enumerate() if t.name in ("pre", "infer", "post", "capture")]


def test_stop_request_from_a_sink(video):
    sink = RecordingSink(stop_after=5)
    summary = Pipeline(FakeDetector(), open_source(video, loop=True), [sink]).run()
    assert sink.closed and 5 <= summary["frames"] < 30  # frames in flight drain, then it ends
    assert summary["ended"] == "stopped from the window"


# -- real model, the command users run ---------------------------------------------------------------
def test_run_video_end_to_end(lite0_onnx, video, tmp_path, capsys):
    out, dets, report = (str(tmp_path / n) for n in ("out.mp4", "dets.jsonl", "summary.json"))
    code, stdout, stderr = run_main(capsys, "--engine", lite0_onnx, "--source", video, "--no-drop", "--max-frames", "12",
                                    "--output", out, "--json", dets, "--summary-json", report)
    assert code == 0, stderr
    assert count_frames(out) == (12, (520, 520, 3))
    rows = [json.loads(line) for line in open(dets)]
    assert [r["frame"] for r in rows] == list(range(12))
    assert rows[3]["timestamp"] == pytest.approx(0.1, abs=1e-3)
    boxes = np.array([d["box"] for r in rows for d in r["detections"]])
    assert len(boxes) > 0 and boxes.min() >= 0 and boxes.max() <= 520
    from edge_edet.contract.metadata import read_onnx_metadata

    assert {d["label"] for r in rows for d in r["detections"]} <= set(read_onnx_metadata(lite0_onnx).labels)
    summary = json.load(open(report))
    assert summary["frames"] == 12 and summary["dropped"] == 0 and summary["model"] == "lite0"
    from edge_edet.runtime.backends import choose_onnx_backend

    assert summary["backend"]["backend"] == choose_onnx_backend(lite0_onnx) and summary["peak_rss_mb"] > 0
    for word in ("end-to-end FPS", "engine-only FPS", "infer", "render", "peak RSS"):
        assert word in stdout
    assert "no display found, running headless" in stderr  # no --headless: detected
    assert sorted(os.listdir(tmp_path)) == ["dets.jsonl", "out.mp4", "summary.json"]


def test_run_images_of_changing_size(lite0_onnx, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    sizes = [(240, 320), (500, 200), (64, 640)]
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    dets, out = str(tmp_path / "d.jsonl"), str(tmp_path / "o.avi")
    code, _, err = run_main(capsys, "--model", lite0_onnx, "--source", str(folder), "--headless", "--no-overlay",
                            "--json", dets, "--output", out)
    assert code == 0, err
    rows = [json.loads(line) for line in open(dets)]
    assert [(r["height"], r["width"]) for r in rows] == sizes
    for row in rows:
        for det in row["detections"]:
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 <= x2 <= row["width"] and 0 <= y1 <= y2 <= row["height"]
    assert count_frames(out) == (3, (240, 320, 3))


def test_benchmark_source(lite0_onnx, video):
    from edge_edet.runtime import Detector

    detector = Detector.from_file(lite0_onnx, threads=1)
    summary = benchmark_source(detector, video, max_frames=8)
    assert summary["frames"] == 8 and summary["dropped"] == 0 and summary["source"]["source"] == video
    assert summary["engine_fps"] > 0 and summary["end_to_end_fps"] > 0 and 0 < summary["end_to_end_vs_engine"]
    assert set(summary["stages"]) == {"capture", "pre", "infer", "post", "render"}
    assert all(row["p50_ms"] is not None and row["p99_ms"] >= row["p50_ms"] for row in summary["stages"].values())


def test_live_source_lost_mid_run_stops_cleanly(lite0_onnx, tmp_path, capsys):
    """A loopback MJPEG 'camera' that disappears: retries, clean stop, playable output, exit 1."""
    camera_url, gone = dying_mjpeg_camera(20)
    out = str(tmp_path / "live.mp4")
    code, _, err = run_main(capsys, "--engine", lite0_onnx, "--source", camera_url, "--headless",
                            "--reconnect", "1", "--output", out)
    assert gone.is_set()
    assert code == 1 and "gave up after 1 reconnect attempts" in err
    count, shape = count_frames(out)
    assert count >= 1 and shape == (90, 120, 3)


# -- bad input: one sentence, exit 2, nothing left behind -------------------------------------------
def test_unopenable_source(lite0_onnx, tmp_path, capsys):
    code, _, err = run_main(capsys, "--engine", lite0_onnx, "--source", str(tmp_path / "gone.mp4"), "--headless",
                            "--json", str(tmp_path / "d.jsonl"))
    assert code == 2 and err.strip().splitlines()[-1] == f"webcam.py: error: source {tmp_path / 'gone.mp4'} does not exist (no such file or folder)"
    assert os.listdir(tmp_path) == []


def test_corrupt_and_foreign_onnx(video, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 50)
    code, _, err = run_main(capsys, "--engine", str(corrupt), "--source", video, "--headless")
    assert code == 2 and "is not a readable ONNX file" in err and "Traceback" not in err

    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(foreign))
    code, _, err = run_main(capsys, "--engine", str(foreign), "--source", video, "--headless")
    assert code == 2 and "has no edge_edet metadata" in err and "Traceback" not in err


def test_corrupt_engine(video, tmp_path, capsys):
    engine = tmp_path / "broken.trt"
    engine.write_bytes(os.urandom(4096))
    code, _, err = run_main(capsys, "--engine", str(engine), "--source", video, "--headless")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_unwritable_output_fails_before_anything_loads(video, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.onnx"  # never opened: the output check comes first
    corrupt.write_bytes(b"junk")
    code, _, err = run_main(capsys, "--engine", str(corrupt), "--source", video, "--headless",
                            "--output", str(tmp_path / "no" / "out.mp4"))
    assert code == 2 and "--output" in err and "folder" in err and "does not exist" in err
    code, _, err = run_main(capsys, "--engine", str(corrupt), "--source", video, "--headless",
                            "--json", str(tmp_path))
    assert code == 2 and "--json" in err and "is a folder" in err


def test_busy_port(lite0_onnx, video, tmp_path, capsys):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        code, _, err = run_main(capsys, "--engine", lite0_onnx, "--source", video, "--headless",
                                "--serve", f"127.0.0.1:{port}", "--output", str(tmp_path / "o.mp4"))
    finally:
        holder.close()
    assert code == 2 and f"127.0.0.1:{port}: the port is already in use" in err
    assert os.listdir(tmp_path) == []


def test_folder_of_undecodable_images(lite0_onnx, tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not an image")
    code, _, err = run_main(capsys, "--engine", lite0_onnx, "--source", str(folder), "--headless",
                            "--output", str(tmp_path / "o.mp4"))
    assert code == 2 and f"source {folder} gave no frames" in err and "skipped 1 of 1 files" in err
    assert sorted(os.listdir(tmp_path)) == ["bad"]


def test_no_model_explains_how_to_make_one(tmp_path, capsys, video):
    code = main(["--source", video, "--headless"], prog="webcam.py", search_dirs=[str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and MAKE_BUNDLED in err


def test_default_person_model_is_found(lite0_onnx, tmp_path, video, capsys):
    os.symlink(lite0_onnx, tmp_path / "person.onnx")
    code = main(["--source", video, "--headless", "--max-frames", "2"], prog="webcam.py", search_dirs=[str(tmp_path)])
    assert code == 0, capsys.readouterr().err


# -- signals, in a real process that may not import torch -------------------------------------------
BLOCK_TORCH_AND_RUN = r"""
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("the runtime must not import torch")
sys.meta_path.insert(0, BlockTorch())
import runpy
sys.argv = ["webcam.py"] + sys.argv[1:]
runpy.run_path(%r, run_name="__main__")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_and_finalises_output(lite0_onnx, video, tmp_path, signum):
    out, dets = str(tmp_path / "out.mp4"), str(tmp_path / "d.jsonl")
    script = BLOCK_TORCH_AND_RUN % os.path.join(REPO, "demo", "webcam.py")
    proc = subprocess.Popen([sys.executable, "-c", script, "--engine", lite0_onnx, "--source", video, "--loop",
                             "--headless", "--threads", "1", "--output", out, "--json", dets],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        seen = [proc.stderr.readline()]  # warnings (random weights) may come before the start line
        while "running lite0" not in seen[-1] and seen[-1] and len(seen) < 20:
            seen.append(proc.stderr.readline())
        assert "running lite0" in seen[-1], "".join(seen)  # never read to EOF: a --loop run has none
        deadline = time.time() + 60
        while time.time() < deadline and not any(n.endswith(".partial.jsonl") and os.path.getsize(tmp_path / n) > 0
                                                 for n in os.listdir(tmp_path)):
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "end-to-end FPS" in stdout
    count, shape = count_frames(out)
    lines = open(dets).read().splitlines()
    assert count >= 1 and shape == (520, 520, 3) and len(lines) == count
    assert sorted(os.listdir(tmp_path)) == ["d.jsonl", "out.mp4"]


def test_edge_edet_run_is_the_same_command(lite0_onnx, video, tmp_path):
    from edge_edet.cli import build_parser

    args = build_parser().parse_args(["run", "--engine", lite0_onnx, "--source", video, "--headless",
                                      "--max-frames", "3", "--json", str(tmp_path / "d.jsonl")])
    assert args.func(args) == 0
    assert len(open(tmp_path / "d.jsonl").read().splitlines()) == 3
    with pytest.raises(EdgeEdetError, match="does not exist"):
        args = build_parser().parse_args(["run", "--engine", lite0_onnx, "--source", str(tmp_path / "x.mkv")])
        args.func(args)
