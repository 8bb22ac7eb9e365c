"""Many sources in one process: the batching stage, per-source lanes and outputs, the tiled preview,
and `edge-edet run --source A --source B ...` end to end on a real dynamic-batch lite0.

The batching and threading details use stand-ins named as such: ListReader (a frame reader that
hands out numbered images, optionally slowly or failing) and BatchFakeDetector (the Detector's
stage methods, recording each engine call's batch).  Everything a user runs goes through a real
deploy ONNX (conftest's person_batch4_onnx: the bundled person detector, dynamic batch) and the
real clips in ../shared.
"""
import http.client
import json
import os
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import dying_mjpeg_camera, shared_path
from edge_edet.commands.run import main
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.letterbox import letterbox
from edge_edet.contract.metadata import DeployInfo
from edge_edet.contract.source_uri import SourceSpec
from edge_edet.runtime.analytics.geometry import parse_line
from edge_edet.runtime.analytics.options import parse_options, split_source
from edge_edet.runtime.analytics.stream import StreamAnalytics
from edge_edet.runtime.batcher import FrameBatcher
from edge_edet.runtime.detections import Detections
from edge_edet.runtime.mjpeg import MjpegServer
from edge_edet.runtime.mosaic import Mosaic
from edge_edet.runtime.outputs import place_outputs
from edge_edet.runtime.pipeline import Pipeline
from edge_edet.runtime.sinks import Sink
from edge_edet.runtime.sources import FrameSource


# -- stand-ins ------------------------------------------------------------------------------------
class ListReader:
    """Stand-in frame reader: `count` images whose pixels hold their number; `delay` seconds per
    read (a slow camera); raises EdgeEdetError after `fail_after` frames (a source that fails)."""

    def __init__(self, count, delay=0.0, fail_after=None, value=0):
        self.count, self.delay, self.fail_after, self.value = count, delay, fail_after, value
        self.position = 0
        self.fps = 0.0

    def read(self, stop=None):
        if self.fail_after is not None and self.position >= self.fail_after:
            raise EdgeEdetError("camera 7 could not be reopened")
        if self.position >= self.count:
            return None
        if self.delay and stop is not None and stop.wait(self.delay):
            return None
        self.position += 1
        return np.full((24, 32, 3), (self.value + self.position) % 256, np.uint8)

    def close(self):
        pass


def list_source(name, count, drop=False, **options):
    return FrameSource(SourceSpec(name, "file", name, False), ListReader(count, **options), drop)


def drain(batcher, timeout=10.0):
    """Every batch until the batcher ends, as lists of (source, frame index)."""
    abort, stopping = threading.Event(), threading.Event()
    batches, deadline = [], time.time() + timeout
    while time.time() < deadline:
        frames = batcher.next_batch(abort, stopping)
        if frames is None:
            return batches
        batches.append([(frame.source, frame.index) for frame in frames])
    raise AssertionError("the batcher did not end")


def numbered(sources):
    for index, source in enumerate(sources):
        source.index = index
    return sources


class BatchFakeDetector:
    """Fake of runtime.Detector with a dynamic batch of `max_batch`: real letterbox, a fake engine
    that records each call's batch, one box per frame."""

    def __init__(self, max_batch=4):
        self.info = DeployInfo(model="fake", input_size=(32, 32), labels=["thing"], mean=(0, 0, 0), std=(1, 1, 1))
        self.input_size = (32, 32)
        self.max_batch = max_batch
        self.batches = []

    def batch_size_for(self, count):
        return min(count, self.max_batch)

    def allocate_input(self, batch):
        return np.zeros((batch,) + self.input_size + (3,), np.uint8)

    def preprocess(self, frames, out):
        scales = [letterbox(frame, self.input_size, out=out[i])[1] for i, frame in enumerate(frames)]
        return out[:len(frames)], scales

    def infer(self, batch):
        self.batches.append(batch.shape[0])
        time.sleep(0.001)
        return {"rows": batch[:, 0, 0, 0].copy()}

    def postprocess(self, outputs, scales, shapes):
        return [Detections(np.array([[1, 2, 10, 12]], np.float32), np.array([0.9], np.float32),
                           np.array([0], np.int32), ["thing"]) for _ in scales]


class Recorder(Sink):
    needs_image = True

    def __init__(self):
        self.seen = []

    def write(self, frame, detections, image):
        self.seen.append((frame.source, frame.index, int(frame.image[0, 0, 0])))


# -- the batching stage --------------------------------------------------------------------------
def test_batches_take_the_sources_in_turn():
    sources = numbered([list_source(f"s{k}", 6) for k in range(3)])
    for source in sources:  # let every source fill its queue, so each round finds frames everywhere
        source.start()
    time.sleep(0.3)
    batches = drain(FrameBatcher(sources, capacity=2))
    assert all(len(batch) <= 2 for batch in batches)
    flat = [pair for batch in batches for pair in batch]
    for k in range(3):
        assert [index for source, index in flat if source == k] == list(range(6))  # each in order, none lost
    # in turn: over any three batches of two every source appears twice, none three times
    for start in range(0, 6, 3):
        window = [source for batch in batches[start:start + 3] for source, _ in batch]
        assert sorted(window) == [0, 0, 1, 1, 2, 2], batches
    for source in sources:
        source.close()


def test_a_batch_of_one_serves_the_sources_one_after_another():
    sources = numbered([list_source(f"s{k}", 4) for k in range(2)])
    for source in sources:
        source.start()
    time.sleep(0.3)
    batches = drain(FrameBatcher(sources, capacity=1))
    assert [batch[0][0] for batch in batches] == [0, 1] * 4
    for source in sources:
        source.close()


def test_a_slow_source_never_holds_back_a_fast_one():
    slow = list_source("slow", 3, delay=1.0)
    fast = list_source("fast", 400, drop=True, delay=0.005)  # 2 s of frames
    batcher = FrameBatcher(numbered([slow, fast]), capacity=2)
    abort, stopping = threading.Event(), threading.Event()
    started, fast_frames = time.time(), 0
    while time.time() - started < 0.6:
        frames = batcher.next_batch(abort, stopping)
        fast_frames += sum(1 for frame in frames if frame.source == 1)
        assert all(frame.source == 1 for frame in frames)  # the slow one has nothing yet
    assert fast_frames >= 10  # the fast source kept flowing meanwhile
    for source in (slow, fast):
        source.close()


def test_a_source_that_fails_ends_alone():
    ended = []
    sources = numbered([list_source("ok", 8), list_source("cam7", 8, fail_after=3)])
    batcher = FrameBatcher(sources, capacity=2, on_end=ended.append)
    flat = [pair for batch in drain(batcher) for pair in batch]
    assert [i for s, i in flat if s == 0] == list(range(8)) and [i for s, i in flat if s == 1] == [0, 1, 2]
    assert batcher.failures == {1: "camera 7 could not be reopened"} and sorted(ended) == [0, 1]


def test_stopping_ends_the_batches_when_no_frame_is_waiting():
    source = list_source("slow", 5, delay=5.0)
    batcher = FrameBatcher(numbered([source]), capacity=1)
    stopping = threading.Event()
    stopping.set()
    started = time.time()
    assert batcher.next_batch(threading.Event(), stopping) is None and time.time() - started < 1
    source.close()


# -- the pipeline with several sources -------------------------------------------------------------
def test_pipeline_batches_sources_and_keeps_their_outputs_apart():
    detector = BatchFakeDetector(max_batch=4)
    sources = [list_source("a", 30, value=0), list_source("b", 30, value=100), list_source("c", 12, value=200)]
    shared, own = Recorder(), [Recorder(), Recorder(), Recorder()]
    analytics = [StreamAnalytics(fps=30, specs=[parse_line("0,0.5,1,0.5,door")]), None, None]
    # overlay off: the frames are 32x24, where the tags (laid out inside the frame) reach every pixel,
    # the top-left one the sinks read each frame's number from included
    pipeline = Pipeline(detector, sources, [shared], source_sinks=[[sink] for sink in own], analytics=analytics,
                        warmup=0, overlay=False)
    summary = pipeline.run()
    assert summary["frames"] == 72 and summary["batch"] == 3
    assert max(detector.batches) == 3 and len(detector.batches) < 72 and summary["mean_batch"] > 1
    for k, (count, value) in enumerate([(30, 0), (30, 100), (12, 200)]):
        mine = [(index, pixel) for source, index, pixel in shared.seen if source == k]
        assert [index for index, _ in mine] == list(range(count))  # in order, every frame
        assert all(pixel == (value + index + 1) % 256 for index, pixel in mine)  # its own image, not another's
        assert [(s, i) for s, i, _ in own[k].seen] == [(k, i) for i in range(count)]  # its own output: only its frames
    rows = summary["sources"]
    assert [row["frames"] for row in rows] == [30, 30, 12] and all(row["end_to_end_fps"] for row in rows)
    assert rows[0]["counts"]["lines"] == {"door": {"in": 0, "out": 0, "by_class": {}}} and "counts" not in rows[1]
    assert "source" not in summary and "counts" not in summary  # those are one source's keys


def test_one_source_is_the_same_path_with_batches_of_one():
    detector = BatchFakeDetector(max_batch=4)
    sink = Recorder()
    summary = Pipeline(detector, list_source("a", 10), [sink], warmup=0).run()
    assert detector.batches == [1] * 10 and [i for _, i, _ in sink.seen] == list(range(10))
    assert summary["source"]["source"] == "a" and summary["sources"][0]["frames"] == 10 and summary["batch"] == 1


# -- outputs, lines and zones per source -----------------------------------------------------------
def test_outputs_are_placed_per_source_or_shared():
    placed = place_outputs([("out_{source}.mp4", "video", "--output"), ("all.jsonl", "jsonl", "--json"),
                            ("http://127.0.0.1:8080", "mjpeg", "--serve")], 2)
    assert placed == [("out_0.mp4", "video", "--output", 0), ("out_1.mp4", "video", "--output", 1),
                      ("all.jsonl", "jsonl", "--json", None), ("http://127.0.0.1:8080", "mjpeg", "--serve", None)]
    assert place_outputs([("out.mp4", "video", "--output")], 1) == [("out.mp4", "video", "--output", None)]
    with pytest.raises(EdgeEdetError, match=r"2 sources cannot share one video; put \{source\}"):
        place_outputs([("out.mp4", "video", "--output")], 2)
    with pytest.raises(EdgeEdetError, match="names one file per source"):
        place_outputs([("http://127.0.0.1:80{source}", "mjpeg", "--output")], 2)


def test_lines_and_zones_belong_to_one_source_or_to_all():
    assert split_source("--line", "1:0,0.5,1,0.5", 2) == (1, "0,0.5,1,0.5")
    assert split_source("--line", "0,0.5,1,0.5", 2) == (None, "0,0.5,1,0.5")
    shapes = parse_options(False, ["1:0,0.5,1,0.5,door"], ["0,0,1,0,1,1,all"], sources=2)
    assert [[s.name for s in specs] for specs in shapes] == [["all"], ["door", "all"]]
    assert shapes[1][0].text == "1:0,0.5,1,0.5,door"  # messages quote what the user wrote
    with pytest.raises(EdgeEdetError, match="there is no source 2; this run has sources 0 to 1"):
        parse_options(True, ["2:0,0.5,1,0.5"], sources=2)
    with pytest.raises(EdgeEdetError, match="used twice"):
        parse_options(True, ["0,0.5,1,0.5,a", "1:0,0.2,1,0.2,a"], sources=2)
    assert parse_options(True, ["0:0,0.5,1,0.5,a", "1:0,0.2,1,0.2,a"], sources=2)  # one per source: fine


# -- the preview: one stream per source and the tiled view ----------------------------------------
def _get(server, path):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_preview_serves_each_source_and_a_mosaic_of_all():
    server = MjpegServer("127.0.0.1", 0, sources=["cam0", "cam1", "clip.mp4"])
    try:
        server.publish(np.full((60, 80, 3), 250, np.uint8), {"tracks": 1, "lines": {}, "zones": {}}, source=0)
        server.publish(np.full((120, 80, 3), 90, np.uint8), {"tracks": 5, "lines": {}, "zones": {}}, source=2)
        status, body = _get(server, "/frame/2.jpg")
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and image.shape == (120, 80, 3) and abs(int(image.mean()) - 90) < 4
        assert _get(server, "/frame/1.jpg")[0] == 503  # nothing from source 1 yet
        assert _get(server, "/frame/3.jpg")[0] == 404 and _get(server, "/stream/3.mjpg")[0] == 404
        status, body = _get(server, "/frame.jpg")
        mosaic = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and mosaic.shape == (120, 160, 3)  # 2 x 2 tiles of the first frame's 60x80
        assert mosaic[10:40, 10:70].mean() > 200 and mosaic[:60, 80:].mean() < 10  # source 0 top left; 1 black
        assert abs(int(mosaic[62:100, 5:35].mean()) - 90) < 6 and mosaic[62:100, 45:80].mean() < 10  # 2: letterboxed
        server.publish(np.full((60, 80, 3), 30, np.uint8), source=1)
        status, body = _get(server, "/frame.jpg")  # the mosaic follows a new frame of any source
        mosaic = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert abs(int(mosaic[10:40, 90:150].mean()) - 30) < 6
        status, body = _get(server, "/counts")
        counts = json.loads(body)
        assert status == 200 and [row["source"] for row in counts["sources"]] == [0, 1, 2]
        assert counts["sources"][2] == {"source": 2, "name": "clip.mp4", "counts": {"tracks": 5, "lines": {},
                                                                                   "zones": {}}}
        assert json.loads(_get(server, "/counts/0")[1])["tracks"] == 1
    finally:
        server.close()


def test_one_source_mosaic_is_the_frame_itself():
    mosaic = Mosaic(["only"])
    frame = np.zeros((10, 20, 3), np.uint8)
    mosaic.put(0, frame)
    assert mosaic.image is frame


# -- `edge-edet run` with several sources, on the real model ----------------------------------------
@pytest.fixture(scope="module")
def clips():
    return [shared_path("data", "video", "people_walking.mp4"), shared_path("data", "video", "cars_short.mp4")]


def run_main(capsys, *argv):
    code = main([str(a) for a in argv], prog="edge-edet run")
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def detections_per_frame(path, source=None):
    rows = [json.loads(line) for line in open(path)]
    return [row["detections"] for row in rows if source is None or row["source"] == source]


@pytest.mark.slow
def test_many_sources_one_model_same_detections_as_one_source_each(person_batch4_onnx, clips, tmp_path, capsys):
    people, cars = clips
    frames = 10
    code, out, err = run_main(capsys, "--engine", person_batch4_onnx, "--source", people, "--source", cars,
                              "--source", people, "--no-drop", "--headless", "--max-frames", frames,
                              "--json", tmp_path / "d_{source}.jsonl",
                              "--output", tmp_path / "all.jsonl", "--output", tmp_path / "v_{source}.avi",
                              "--line", "1:0,0.5,1,0.5,road", "--zone", "0,0,0.5,0,0.5,1,0,1,left",
                              "--summary-json", tmp_path / "summary.json")
    assert code == 0, err
    assert "3 sources (0: " in err and "batches of up to 3 frames" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == 3 * frames and summary["batch"] == 3 and summary["mean_batch"] > 1
    assert summary["stages"]["infer"]["count"] < 3 * frames  # batched: fewer engine calls than frames
    rows = summary["sources"]
    assert [row["frames"] for row in rows] == [frames] * 3 and [row["name"] for row in rows] == [people, cars, people]
    assert set(rows[0]["counts"]["lines"]) == set() and set(rows[1]["counts"]["lines"]) == {"road"}
    assert all(set(row["counts"]["zones"]) == {"left"} for row in rows)
    assert out.count("source ") >= 3 and "batches of up to 3" in out
    shared = [json.loads(line) for line in open(tmp_path / "all.jsonl")]
    assert {(row["source"], row["source_name"]) for row in shared} == {(0, people), (1, cars), (2, people)}
    for k in range(3):
        assert [row["frame"] for row in shared if row["source"] == k] == list(range(frames))
        cap = cv2.VideoCapture(str(tmp_path / f"v_{k}.avi"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        cap.release()
    # the same detections as one source per run (batch 1): the batch does not change what is found
    for k, clip in ((0, people), (1, cars)):
        code, _, err = run_main(capsys, "--engine", person_batch4_onnx, "--source", clip, "--no-drop", "--headless",
                                "--max-frames", frames, "--json", tmp_path / f"one_{k}.jsonl")
        assert code == 0, err
        alone, batched = detections_per_frame(tmp_path / f"one_{k}.jsonl"), detections_per_frame(tmp_path / f"d_{k}.jsonl")
        assert len(alone) == len(batched) == frames
        same = sum(len(a) == len(b) for a, b in zip(alone, batched))
        assert same >= 0.95 * frames
        assert any(len(a) for a in alone)  # something to compare
        for a, b in zip(alone, batched):
            if len(a) == len(b) and a:
                assert np.abs(np.array([d["box"] for d in a]) - np.array([d["box"] for d in b])).max() < 1.0


def test_a_shared_video_for_several_sources_is_refused_before_anything_loads(deploy_lite0, clips, tmp_path,
                                                                                capsys):
    people, cars = clips
    for flags, words in ((["--output", tmp_path / "out.mp4"], "2 sources cannot share one video"),
                         (["--line", "2:0,0.5,1,0.5"], "there is no source 2"),
                         (["--serve", "80{source}"], "names one file per source")):
        code, _, err = run_main(capsys, "--engine", deploy_lite0, "--source", people, "--source", cars,
                                "--headless", "--json", tmp_path / "d.jsonl", *flags)
        assert code == 2 and words in err and "Traceback" not in err
        assert os.listdir(tmp_path) == []


def test_a_batch_one_model_serves_two_sources_in_turn(deploy_lite0, clips, tmp_path, capsys):
    code, out, err = run_main(capsys, "--engine", deploy_lite0, "--source", clips[1], "--source", clips[0],
                              "--headless", "--max-frames", 3, "--json", tmp_path / "d.jsonl",
                              "--summary-json", tmp_path / "summary.json")
    assert code == 0, err
    assert "one frame per inference, the sources in turn (the model's batch is 1" in err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["batch"] == 1 and summary["stages"]["infer"]["count"] == 6
    assert [row["frames"] for row in summary["sources"]] == [3, 3]
    lines = [json.loads(line) for line in open(tmp_path / "d.jsonl")]
    assert sorted((line["source"], line["frame"]) for line in lines) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


@pytest.mark.slow
def test_a_lost_source_leaves_the_others_running(person_batch4_onnx, clips, tmp_path, capsys):
    """Source 0, a loopback MJPEG 'camera', disappears; source 1, a clip, plays on to its last frame."""
    camera_url, gone = dying_mjpeg_camera(10)
    code, out, err = run_main(capsys, "--engine", person_batch4_onnx, "--source", camera_url,
                              "--source", clips[1], "--headless", "--reconnect", "1",
                              "--json", tmp_path / "d.jsonl", "--summary-json", tmp_path / "summary.json")
    assert gone.is_set() and code == 1
    assert "source 0 (" in err and "gave up after 1 reconnect attempts" in err
    rows = json.loads((tmp_path / "summary.json").read_text())["sources"]
    assert rows[0]["frames"] >= 1 and "gave up" in rows[0]["ended"]
    assert rows[1]["frames"] == 151 and "ended" not in rows[1]  # the clip ran to its end, every frame
