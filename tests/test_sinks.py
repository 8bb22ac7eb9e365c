"""Sinks, overlay, stats and the MJPEG preview: outputs complete and checked before the stream."""
import http.client
import json
import os
import socket
import time

import cv2
import numpy as np
import pytest

from edge_edet.contract.errors import EdgeEdetError
from edge_edet.runtime.detections import Detections
from edge_edet.runtime.mjpeg import BOUNDARY, MjpegServer, parse_serve
from edge_edet.runtime.overlay import class_color, draw_detections
from edge_edet.contract.fileio import check_output_file
from edge_edet.runtime.sinks import JsonLinesSink, MjpegSink, VideoFileSink, display_available
from edge_edet.runtime.sources import Frame
from edge_edet.runtime.stats import STAGES, PipelineStats, StageTimes, format_summary


def one_box(x1=10, y1=20, x2=60, y2=70, score=0.9, label="car"):
    return Detections(np.array([[x1, y1, x2, y2]], np.float32), np.array([score], np.float32),
                      np.array([2], np.int32), [label])


def count_frames(path):
    cap = cv2.VideoCapture(path)
    count, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count, size = count + 1, frame.shape
    cap.release()
    return count, size


def leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".")]


# -- video file ------------------------------------------------------------------------------
def test_video_of_changing_frame_sizes_is_playable(tmp_path):
    path = str(tmp_path / "out.mp4")
    sink = VideoFileSink(path, fps=10)
    sizes = [(120, 160), (90, 200), (240, 320), (120, 160)]
    for index, (h, w) in enumerate(sizes):
        image = np.full((h, w, 3), 40 * index, np.uint8)
        sink.write(Frame(index, index / 10, image), Detections.empty(), image)
        assert not os.path.exists(path)  # only the temporary file exists while streaming
    sink.close()
    count, shape = count_frames(path)
    assert count == len(sizes) and shape == (120, 160, 3)  # the first frame's size
    assert leftovers(tmp_path) == []


def test_video_without_frames_leaves_no_file(tmp_path, capsys):
    sink = VideoFileSink(str(tmp_path / "none.mp4"))
    sink.close()
    assert os.listdir(tmp_path) == []
    assert "no frames reached --output" in capsys.readouterr().err


@pytest.mark.parametrize("make_path, message", [
    (lambda tmp: tmp / "missing" / "out.mp4", "does not exist"),
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: tmp / "out.xyz", "cannot write '.xyz' videos"),
])
def test_bad_video_output_fails_at_construction(tmp_path, make_path, message):
    with pytest.raises(EdgeEdetError, match=message):
        VideoFileSink(str(make_path(tmp_path)))


def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        if os.access(folder, os.W_OK) and os.geteuid() == 0:
            # root ignores permission bits: /proc is a folder nobody can create files in
            folder = "/proc"
        with pytest.raises(EdgeEdetError, match="cannot write in"):
            check_output_file(os.path.join(str(folder), "out.mp4"), "--output")
    finally:
        os.chmod(tmp_path / "ro", 0o700)


# -- JSON lines ------------------------------------------------------------------------------
def test_json_lines_records(tmp_path):
    path = str(tmp_path / "dets.jsonl")
    sink = JsonLinesSink(path)
    assert not sink.needs_image
    image = np.zeros((100, 200, 3), np.uint8)
    sink.write(Frame(3, 0.1, image, path="/x/a.jpg"), one_box(), None)
    sink.write(Frame(5, 0.2, image, source=2, source_name="rtsp://cam/s"), Detections.empty(), None)
    assert not os.path.exists(path)
    sink.close()
    rows = [json.loads(line) for line in open(path)]
    assert rows[0]["frame"] == 3 and rows[0]["timestamp"] == 0.1 and rows[0]["file"] == "/x/a.jpg"
    assert (rows[0]["width"], rows[0]["height"]) == (200, 100)
    assert rows[0]["detections"] == [{"box": [10.0, 20.0, 60.0, 70.0], "score": 0.9, "class_id": 2, "label": "car"}]
    assert rows[1]["frame"] == 5 and rows[1]["detections"] == [] and "file" not in rows[1]
    assert (rows[0]["source"], rows[1]["source"], rows[1]["source_name"]) == (0, 2, "rtsp://cam/s")  # whose frame
    assert leftovers(tmp_path) == []


def test_json_discard_leaves_nothing(tmp_path):
    sink = JsonLinesSink(str(tmp_path / "d.jsonl"))
    sink.discard()
    assert os.listdir(tmp_path) == []


# -- window ----------------------------------------------------------------------------------
def test_no_display_means_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not os.sys.platform.startswith("linux"):
        pytest.skip("display detection by environment is Linux-only")
    assert display_available() is False


# -- MJPEG preview (loopback only, bounded reads) ---------------------------------------------
def test_parse_serve_defaults_to_loopback():
    assert parse_serve("8080") == ("127.0.0.1", 8080)
    assert parse_serve("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_serve(":81") == ("127.0.0.1", 81)
    with pytest.raises(EdgeEdetError, match="expected PORT or HOST:PORT"):
        parse_serve("localhost:http")
    with pytest.raises(EdgeEdetError, match="outside"):
        parse_serve("70000")


def _get(server, path):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", path)
    return conn, conn.getresponse()


def test_mjpeg_pages_and_stream():
    server = MjpegServer("127.0.0.1", 0)
    try:
        conn, resp = _get(server, "/frame.jpg")
        assert resp.status == 503  # nothing published yet
        resp.read()
        conn.close()
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :32] = 255
        server.publish(frame)
        conn, resp = _get(server, "/frame.jpg")
        image = cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR)
        conn.close()
        assert resp.status == 200 and image.shape == (48, 64, 3) and image[:, :28].mean() > 200
        conn, resp = _get(server, "/")
        assert resp.status == 200 and b"/stream.mjpg" in resp.read()
        conn.close()
        conn, resp = _get(server, "/nothing")
        assert resp.status == 404
        resp.read()
        conn.close()

        conn, resp = _get(server, "/stream.mjpg")
        assert resp.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        parts = []
        for value in (10, 20):  # two parts, each a JPEG of the newest frame
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                header += resp.read(1)
            assert header.startswith(f"--{BOUNDARY}".encode())
            length = int([line for line in header.split(b"\r\n") if line.startswith(b"Content-Length")][0].split(b":")[1])
            parts.append(cv2.imdecode(np.frombuffer(resp.read(length), np.uint8), cv2.IMREAD_COLOR))
            resp.read(2)
            server.publish(np.full((48, 64, 3), value * 10, np.uint8))
        conn.close()
        assert parts[0].shape == (48, 64, 3) and abs(int(parts[1].mean()) - 100) < 5
        deadline = time.monotonic() + 5  # the server counts a part just after sending it: the client may be first
        while server.frames_sent < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.frames_sent >= 2
    finally:
        server.close()


def test_mjpeg_busy_port_is_one_sentence():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        with pytest.raises(EdgeEdetError, match=f"cannot serve the preview on 127.0.0.1:{port}: the port is already in use"):
            MjpegSink("127.0.0.1", port)
    finally:
        holder.close()


# -- overlay ---------------------------------------------------------------------------------
def test_overlay_draws_boxes_and_fps():
    frame = np.zeros((200, 300, 3), np.uint8)
    out = draw_detections(frame, one_box(100, 100, 180, 160), fps=12.5)
    assert out is frame
    color = class_color(2)
    assert tuple(int(v) for v in frame[130, 100]) == color  # left edge of the box
    assert frame[130, 140].sum() == 0  # inside stays untouched
    assert frame[5:30, 5:120].max() > 0  # the FPS text
    blank = np.zeros((200, 300, 3), np.uint8)
    draw_detections(blank, Detections.empty())
    assert blank.max() == 0


# -- stats -----------------------------------------------------------------------------------
def test_stage_percentiles():
    times = StageTimes()
    for ms in range(1, 101):
        times.add(ms / 1000)
    row = times.summary()
    assert row["count"] == 100 and row["p50_ms"] == pytest.approx(50.5) and row["p99_ms"] == pytest.approx(99.01)
    assert StageTimes().summary()["p50_ms"] is None


def test_summary_fields_and_text():
    stats = PipelineStats()
    stats.start()
    for _ in range(4):
        for stage in STAGES:
            stats.add(stage, 0.01 if stage == "infer" else 0.001)
        stats.images_inferred += 1
        stats.frame_done()
    summary = stats.summary(dropped=3)
    assert summary["frames"] == 4 and summary["dropped"] == 3
    assert summary["engine_fps"] == pytest.approx(100.0)
    assert set(summary["stages"]) == set(STAGES)
    text = format_summary(summary)
    for word in ("dropped 3", "end-to-end FPS", "engine-only FPS 100.0", "capture", "render", "p99"):
        assert word in text


def _paced_summary(source, end_to_end_fps, engine_fps):
    summary = {"frames": 60, "dropped": 0, "elapsed_s": 6.0, "end_to_end_fps": end_to_end_fps, "engine_fps": engine_fps,
               "end_to_end_vs_engine": round(end_to_end_fps / engine_fps, 3), "source": source,
               "stages": {}, "latency": StageTimes().summary()}
    from edge_edet.runtime.stats import paced_by_source

    summary["paced_by_source"] = paced_by_source(summary)
    return summary


def test_a_source_paced_run_says_so_instead_of_a_share_of_the_engine():
    paced = {"source": "walk.mp4", "kind": "file", "live": False, "drop": True, "fps": 10.0, "paced": True}
    summary = _paced_summary(paced, 10.1, 19.4)  # --drop on a 10 FPS file: the file sets the pace
    assert summary["paced_by_source"] is True
    text = format_summary(summary)
    assert "end-to-end FPS 10.1, engine-only FPS 19.4, paced by the source (10 FPS)" in text
    assert "% of engine" not in text
    # the engine slower than the source: the engine is the limit, the share says how close the run came
    slow = _paced_summary(paced, 4.6, 4.8)
    assert slow["paced_by_source"] is False and "(96% of engine)" in format_summary(slow)
    # every frame of a file (no pacing): a share, whatever the rates
    unpaced = dict(paced, drop=False, paced=False)
    assert "(52% of engine)" in format_summary(_paced_summary(unpaced, 10.1, 19.4))


# -- a folder of annotated images (--output DIR/) ------------------------------------------------
def test_folder_output_writes_one_annotated_image_per_frame_under_the_source_names(tmp_path):
    from edge_edet.runtime.sinks import ImageFolderSink, open_sink, sink_kind

    source = tmp_path / "in"
    source.mkdir()
    for name in ("a.jpg", "b.png"):
        cv2.imwrite(str(source / name), np.full((40, 60, 3), 90, np.uint8))
    out = tmp_path / "annotated"
    assert sink_kind(f"{out}/") == "images" and sink_kind(str(source)) == "images"
    sink = open_sink(f"{out}/", inputs=[("--source", str(source))])
    assert isinstance(sink, ImageFolderSink) and out.is_dir()
    red = np.zeros((40, 60, 3), np.uint8)
    red[:, :, 2] = 255
    for index, name in enumerate(("a.jpg", "b.png", "a.jpg")):  # a name met twice: the frame index added
        sink.write(Frame(index, 0.0, red, path=str(source / name)), one_box(), red)
    sink.write(Frame(7, 0.7, red), one_box(), red)  # a video frame: no file name of its own
    sink.close()
    assert sorted(os.listdir(out)) == ["a.jpg", "a_000002.jpg", "b.png", "frame_000007.jpg"]
    written = cv2.imread(str(out / "b.png"))
    assert np.array_equal(written, red)  # exactly the rendered frame (PNG is lossless)
    assert cv2.imread(str(source / "b.png"))[0, 0, 2] == 90  # the inputs untouched


def test_folder_output_never_takes_the_source_folder(tmp_path):
    from edge_edet.runtime.sinks import open_sink

    source = tmp_path / "in"
    source.mkdir()
    cv2.imwrite(str(source / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    for uri, given in ((f"{source}/", str(source)), (str(source), f"{source}/*.jpg")):
        with pytest.raises(EdgeEdetError, match="holds the source's images.*would replace them"):
            open_sink(uri, inputs=[("--source", given)])
    assert os.listdir(source) == ["a.jpg"]


def test_folder_output_that_got_no_frame_leaves_no_folder(tmp_path, capsys):
    from edge_edet.runtime.sinks import open_sink

    out = tmp_path / "empty"
    sink = open_sink(f"{out}/")
    sink.close()
    assert not out.exists() and "no image was written" in capsys.readouterr().err
    with pytest.raises(EdgeEdetError, match="folder .*missing does not exist"):
        open_sink(f"{tmp_path}/missing/deeper/")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(EdgeEdetError, match="is a file"):
        open_sink(f"{tmp_path}/file.txt/")


def test_several_sources_need_one_image_folder_each():
    from edge_edet.runtime.outputs import place_outputs

    with pytest.raises(EdgeEdetError, match=r"2 sources cannot share one image folder; put \{source\}"):
        place_outputs([("annotated/", "images", "--output")], 2)
    assert place_outputs([("ann_{source}/", "images", "--output")], 2) == [
        ("ann_0/", "images", "--output", 0), ("ann_1/", "images", "--output", 1)]
