"""Tracking and counting through the threaded pipeline and its sinks, on a rendered video.

BlobDetector is a stand-in for the neural network (named so): it finds the bright rectangles of a
synthetic clip by thresholding the letterboxed input, so the pipeline, the tracker, the counters
and every sink run for real on frames whose true motion is known.
"""
import http.client
import json

import cv2
import numpy as np
import pytest

from edge_edet.contract.metadata import DeployInfo
from edge_edet.runtime.analytics import StreamAnalytics, parse_line, parse_zone
from edge_edet.runtime.detections import Detections
from edge_edet.contract.letterbox import letterbox
from edge_edet.runtime.pipeline import Pipeline
from edge_edet.runtime.sinks import JsonLinesSink, MjpegSink, Sink, VideoFileSink
from edge_edet.runtime.sources import open_source

W, H, FPS, FRAMES = 320, 240, 10, 48


def render_clip(path):
    """Two 'people' (bright boxes): A walks down across y=120, B walks up across it."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    for f in range(FRAMES):
        frame = np.full((H, W, 3), 30, np.uint8)
        ya = 30 + 4 * f  # bottom edge of A: 30 -> 218
        yb = 220 - 4 * f  # bottom edge of B: 220 -> 32
        cv2.rectangle(frame, (60, ya - 40), (80, ya), (255, 255, 255), -1)
        cv2.rectangle(frame, (220, yb - 40), (240, yb), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return str(path)


class BlobDetector:
    """Stand-in for runtime.Detector: bright blobs of the letterboxed input, class 'person'."""

    def __init__(self):
        self.info = DeployInfo(model="blobs", input_size=(128, 128), labels=["person"], mean=(0, 0, 0),
                               std=(1, 1, 1))
        self.input_size = (128, 128)

    def batch_size_for(self, count):
        return 1

    def allocate_input(self, batch):
        return np.zeros((batch,) + self.input_size + (3,), np.uint8)

    def preprocess(self, frames, out):
        return out, [letterbox(frame, self.input_size, out=out[i])[1] for i, frame in enumerate(frames)]

    def infer(self, batch):
        mask = (batch[0, :, :, 0] > 128).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:count] if area > 4]
        return {"boxes": np.array(boxes, np.float32).reshape(-1, 4)}

    def postprocess(self, outputs, scales, shapes):
        boxes = outputs["boxes"] / scales[0]
        n = len(boxes)
        return [Detections(boxes, np.full(n, 0.9, np.float32), np.zeros(n, np.int32), ["person"] * n)]


class Keep(Sink):
    needs_image = True

    def __init__(self):
        self.views = []

    def write(self, frame, detections, image):
        self.views.append((frame.index, detections.analytics, image.copy()))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return render_clip(tmp_path_factory.mktemp("clip") / "walk.avi")


def test_pipeline_tracks_counts_and_writes_ids_and_counts(clip, tmp_path):
    source = open_source(clip)
    analytics = StreamAnalytics(fps=source.fps, specs=[parse_line("0,0.5,1,0.5,door"),
                                                       parse_zone("0,0,0.5,0,0.5,1,0,1,left")])
    jsonl = tmp_path / "dets.jsonl"
    video = tmp_path / "out.avi"
    keep = Keep()
    pipeline = Pipeline(BlobDetector(), source, [JsonLinesSink(str(jsonl)), VideoFileSink(str(video)), keep],
                        analytics=analytics)
    summary = pipeline.run()
    assert summary["frames"] == FRAMES
    assert summary["counts"]["lines"]["door"] == {"in": 1, "out": 1, "by_class": {"person": {"in": 1, "out": 1}}}
    assert summary["counts"]["tracks"] == 2
    assert summary["stages"]["track"]["count"] == FRAMES
    zone = summary["counts"]["zones"]["left"]
    assert zone["visits"] == 1 and zone["occupancy"] == 1  # A stays in the left half the whole clip
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == FRAMES
    ids = {d["track_id"] for r in records[2:] for d in r["detections"]}
    assert ids == {1, 2}  # stable: two IDs for the whole clip
    ins = [r["counts"]["lines"]["door"]["in"] for r in records]
    assert ins == sorted(ins) and ins[0] == 0 and ins[-1] == 1  # cumulative in every line
    # the overlay: ID tags and the line were drawn (frame differs from a plain render where the line is)
    index, view, image = keep.views[-1]
    assert view.trails and all(len(t) > 1 for t in view.trails.values())
    line_row = image[120, :, :]
    assert (np.abs(line_row.astype(int) - 30).sum(axis=1) > 60).mean() > 0.5  # the amber line crosses the frame
    assert video.exists()


def test_counts_are_served_beside_the_preview(clip):
    source = open_source(clip)
    analytics = StreamAnalytics(fps=source.fps, specs=[parse_line("0,120,320,120,door")])
    sink = MjpegSink("127.0.0.1", 0)
    port = sink.server.port

    class Probe(Sink):
        needs_image = False
        body = None

        def write(self, frame, detections, image):
            if frame.index == FRAMES - 1:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/counts")
                response = conn.getresponse()
                Probe.body = (response.status, response.getheader("Content-Type"), json.loads(response.read()))
                conn.close()

    Pipeline(BlobDetector(), source, [sink, Probe()], analytics=analytics).run()
    status, kind, body = Probe.body
    assert status == 200 and kind == "application/json"
    assert body["lines"]["door"]["in"] == 1 and body["lines"]["door"]["out"] == 1


def test_counts_page_says_tracking_is_off_without_it():
    from edge_edet.runtime.mjpeg import MjpegServer

    server = MjpegServer("127.0.0.1", 0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/counts")
        response = conn.getresponse()
        assert response.status == 404 and "--track" in json.loads(response.read())["error"]
    finally:
        server.close()


def test_a_looping_file_in_latest_frame_mode_plays_at_its_frame_rate(tmp_path):
    """--drop --loop on a file: paced at the clip's rate across the wrap (a preview plays at speed)."""
    import time

    path = str(tmp_path / "short.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48))
    for k in range(5):
        writer.write(np.full((48, 64, 3), 40 * k, np.uint8))
    writer.release()
    with open_source(path, drop=True, loop=True, max_frames=12) as source:
        assert source.realtime and source.fps == pytest.approx(20)
        start = time.perf_counter()
        frames = list(source)
        elapsed = time.perf_counter() - start
    assert frames[-1].index == 11  # looped twice and more
    assert elapsed >= 11 / 20 - 0.01  # never faster than the clip: 12 frames at 20 FPS
