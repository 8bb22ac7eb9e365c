"""Sources: what a URI means, every-frame vs latest-frame capture, loop, reconnect, bad sources."""
import os
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import shared_path
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.runtime.mjpeg import MjpegServer
from edge_edet.contract.frames import iter_frames, open_reader
from edge_edet.contract.source_uri import SourceSpec, csi_pipeline, parse_source, redact
from edge_edet.runtime.sources import FrameSource, open_source

VIDEO_FRAMES = 151


@pytest.fixture(scope="module")
def video():
    return shared_path("data", "video", "cars_short.mp4")


@pytest.fixture
def image_folder(tmp_path):
    """Three decodable images of different sizes, one corrupt .jpg and a non-image file."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name, (h, w) in (("a.jpg", (48, 64)), ("b.png", (100, 30)), ("c.jpg", (64, 64))):
        cv2.imwrite(str(folder / name), np.full((h, w, 3), 120, np.uint8))
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored")
    return folder


# -- parsing ---------------------------------------------------------------------------------
def test_uri_kinds(video, image_folder):
    assert parse_source("0").kind == "camera" and parse_source("0").target == 0
    assert parse_source("rtsp://user:pw@10.0.0.2/live").kind == "stream"
    assert parse_source("https://example.invalid/cam.mjpg").live
    assert parse_source(video).kind == "file" and not parse_source(video).live
    spec = parse_source(str(image_folder))
    assert spec.kind == "images" and [os.path.basename(p) for p in spec.target] == ["a.jpg", "b.png", "broken.jpg", "c.jpg"]
    assert parse_source(str(image_folder / "*.png")).target == (str(image_folder / "b.png"),)
    gst = "videotestsrc ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
    assert parse_source(gst).kind == "gstreamer" and parse_source(gst).target == gst


def test_csi_uri_becomes_hardware_bgr_pipeline():
    spec = parse_source("csi://1?width=640&height=480&fps=60")
    assert spec.kind == "gstreamer" and spec.live
    assert spec.target == csi_pipeline(1, width=640, height=480, fps=60)
    assert "nvarguscamerasrc sensor-id=1" in spec.target and "nvvidconv" in spec.target
    assert "format=BGR ! appsink drop=true max-buffers=1" in spec.target
    with pytest.raises(EdgeEdetError, match="unknown option"):
        parse_source("csi://0?zoom=2")


def test_passwords_are_hidden_in_messages():
    assert redact("rtsp://admin:hunter2@cam/live") == "rtsp://admin:***@cam/live"
    with pytest.raises(EdgeEdetError) as err:
        open_source("rtsp://admin:hunter2@127.0.0.1:9/live")
    assert "hunter2" not in str(err.value)


# -- bad sources: one sentence naming the source and what was tried ---------------------------------
def test_missing_file_names_it(tmp_path):
    with pytest.raises(EdgeEdetError, match="does not exist"):
        open_source(str(tmp_path / "nope.mp4"))


def test_unopenable_video_names_it_and_the_backends(tmp_path):
    bad = tmp_path / "fake.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(EdgeEdetError, match=r"cannot open video file .*fake\.mp4 \(tried FFmpeg"):
        open_source(str(bad))


def test_unreachable_stream_names_it():
    # loopback port 9 (discard) is closed: refused at once, nothing leaves this machine
    with pytest.raises(EdgeEdetError, match=r"cannot open stream rtsp://127\.0\.0\.1:9/x \(tried FFmpeg"):
        open_source("rtsp://127.0.0.1:9/x")


def test_absent_camera_names_it(capfd):
    with pytest.raises(EdgeEdetError, match="camera /dev/video97 does not exist"):
        open_source("/dev/video97")
    with pytest.raises(EdgeEdetError, match=r"cannot open camera 63 \(tried"):
        open_source("63")
    assert "WARN" not in capfd.readouterr().err  # OpenCV's probing noise stays out of the way


@pytest.mark.skipif("GStreamer:                   NO" not in cv2.getBuildInformation(),
                    reason="this OpenCV has GStreamer, so the no-GStreamer message cannot be shown")
def test_csi_without_gstreamer_says_so():
    with pytest.raises(EdgeEdetError, match="needs OpenCV built with GStreamer"):
        open_source("csi://0")


def test_loop_refused_for_live_sources():
    with pytest.raises(EdgeEdetError, match="--loop replays files"):
        open_source("rtsp://127.0.0.1:9/x", loop=True)


# -- iter_frames (offline use: calibration, evaluation) --------------------------------------------
def test_iter_frames_video(video):
    frames = list(iter_frames(video))
    assert len(frames) == VIDEO_FRAMES
    assert frames[0].shape == (520, 520, 3) and frames[0].dtype == np.uint8
    assert len(list(iter_frames(video, limit=7))) == 7


def test_iter_frames_folder_skips_and_warns_once(image_folder, capsys):
    frames = list(iter_frames(str(image_folder)))
    assert [f.shape[:2] for f in frames] == [(48, 64), (100, 30), (64, 64)]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "skipped 1 of 4 files" in err and "broken.jpg" in err


def test_iter_frames_glob(image_folder):
    assert len(list(iter_frames(str(image_folder / "*.jpg")))) == 2


def test_iter_frames_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EdgeEdetError, match="holds no images"):
        list(iter_frames(str(empty)))
    with pytest.raises(EdgeEdetError, match="does not exist"):
        list(iter_frames(str(tmp_path / "missing")))
    with pytest.raises(EdgeEdetError, match="no files match"):
        list(iter_frames(str(tmp_path / "*.jpg")))
    (tmp_path / "clip.mp4").write_bytes(b"garbage")
    with pytest.raises(EdgeEdetError, match="cannot open video file"):
        list(iter_frames(str(tmp_path / "clip.mp4")))
    with pytest.raises(EdgeEdetError, match="expected an image folder"):
        list(iter_frames("rtsp://127.0.0.1:9/x"))


def test_iter_frames_all_undecodable(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"no")
    with pytest.raises(EdgeEdetError, match="gave no frames"):
        list(iter_frames(str(tmp_path)))


# -- the threaded source ---------------------------------------------------------------------------
def test_file_defaults_to_every_frame(video):
    with open_source(video) as source:
        assert source.drop is False
        items = [(index, timestamp) for index, timestamp, frame in source]
    assert [i for i, _ in items] == list(range(VIDEO_FRAMES))
    assert items[30][1] == pytest.approx(1.0, abs=1e-3)  # media time at 30 fps
    assert source.dropped == 0


def test_latest_frame_mode_drops_stale_frames(video):
    """Hold the consumer until the capture thread has read 20 more frames: only the newest survives."""
    with open_source(video, drop=True, realtime=False) as source:
        first = source.get(timeout=10)  # frame 0, or a later one if the capture thread was quicker
        deadline = time.time() + 30
        while source.frames_read < first.index + 22 and time.time() < deadline:
            time.sleep(0.01)
        second = source.get(timeout=10)
        assert first.index <= 2 and second.index >= first.index + 20
        assert source.dropped >= second.index - 1  # every frame before second but first was replaced unread
        rest = [f.index for f in source]
    assert rest == sorted(rest)
    assert 2 + len(rest) + source.dropped == VIDEO_FRAMES


def test_loop_replays_a_file(video):
    with open_source(video, loop=True, max_frames=VIDEO_FRAMES + 50) as source:
        indices = [f.index for f in source]
    assert indices == list(range(VIDEO_FRAMES + 50))


def test_folder_frames_keep_their_size_and_file(image_folder):
    with open_source(str(image_folder)) as source:
        frames = list(source)
    assert [f.image.shape[:2] for f in frames] == [(48, 64), (100, 30), (64, 64)]
    assert os.path.basename(frames[1].path) == "b.png"


def test_stop_ends_iteration(video):
    source = open_source(video, loop=True)
    seen = 0
    for _ in source:
        seen += 1
        if seen == 5:
            source.stop()
    source.close()
    assert 5 <= seen <= 5 + 4 + 1  # what was already queued still arrives, then the end


def test_lost_stream_reconnects_then_stops_cleanly():
    """An HTTP MJPEG stream on loopback that dies mid-run: back-off retries, then a clean end."""
    server = MjpegServer("127.0.0.1", 0)
    stop = threading.Event()

    def publish():
        value = 0
        while not stop.is_set():
            server.publish(np.full((60, 80, 3), value % 250, np.uint8))
            value += 1
            time.sleep(0.01)

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    source = open_source(server.url + "stream.mjpg", reconnect=2, backoff=0.05)
    assert source.live and source.drop
    got = []
    try:
        for frame in source:
            got.append(frame.image.shape)
            if len(got) == 5:
                stop.set()
                server.close()  # the camera goes away
    finally:
        stop.set()
        source.close()
    assert got[:5] == [(60, 80, 3)] * 5
    assert source.reader.reconnects == 2
    assert "gave up after 2 reconnect attempts" in source.ended_reason


def test_camera_that_stops_delivering_ends_cleanly(video):
    """The camera policy on a device whose frames run out (what an unplugged camera looks like)."""
    spec = SourceSpec(video, "camera", video, True)  # the clip stands in for the device
    source = FrameSource(spec, open_reader(spec), drop=False)
    with source:
        count = sum(1 for _ in source)
    assert count == VIDEO_FRAMES
    assert source.ended_reason == f"camera {video} stopped delivering frames (unplugged?)"


def test_file_name_with_glob_characters(tmp_path, video):
    odd = tmp_path / "clip[1].mp4"
    os.symlink(video, odd)
    assert parse_source(str(odd)).kind == "file"


def test_dropping_on_a_file_plays_it_at_its_frame_rate(video):
    """--drop on a file acts like a camera delivering the clip: media time never runs ahead of the clock."""
    with open_source(video, drop=True, max_frames=12) as source:
        assert source.realtime
        start = time.perf_counter()
        frames = list(source)
        elapsed = time.perf_counter() - start
    assert frames[-1].index == 11 and elapsed >= frames[-1].timestamp
    with open_source(video) as source:
        assert not source.realtime


def test_a_gstreamer_source_is_refused_in_one_sentence_by_the_same_check_decode_uses(monkeypatch, video):
    """The reader and `--decode auto` ask one probe (machine.opencv_video_backends, which also sees OpenCV's
    plugin back-ends) whether OpenCV has GStreamer, so auto never picks a pipeline the reader then refuses."""
    from edge_edet.contract import frames

    from edge_edet.contract.source_uri import parse_source

    monkeypatch.setattr(frames, "opencv_video_backends", lambda: {"GStreamer": False, "FFmpeg": True})
    with pytest.raises(EdgeEdetError, match="needs OpenCV built with GStreamer"):
        open_reader(parse_source(video), pipeline="filesrc location=x.mp4 ! decodebin ! videoconvert ! appsink")
