"""Hardware video decoding (--decode): the pipeline strings, the auto/cpu/nvdec choice, and the software twin
run for real through OpenCV's GStreamer back-end.

The pip OpenCV the project installs has no GStreamer, so the twin runs under Debian's /usr/bin/python3
(python3-opencv is built with it) in a subprocess that imports only torch-free modules
(tests/gst_twin_check.py).  .ci/run apt-gets what it needs; under CI=true a missing piece fails the
test wherever apt exists, and skips (with the reason) only where there is no apt.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, shared_path
from edge_edet.contract.decode import DecodePlan, plan_decode
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.gst_pipeline import (CODECS, PROFILES, csi_pipeline, decode_pipeline, needed_elements,
                                             quoted)
from edge_edet.contract.source_uri import SourceSpec, parse_source

DEBIAN_PYTHON = "/usr/bin/python3"
TWIN_ELEMENTS = ("qtdemux", "queue", "h264parse", "mpeg4videoparse", "avdec_h264", "avdec_mpeg4", "videoconvert",
                 "appsink", "openh264enc", "filesink")  # openh264enc makes the H.264 elementary stream
APT_PACKAGES = "python3-opencv gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"

# -- what NVIDIA documents (element names, codecs, caps) -------------------------------------------
# Jetson Linux Developer Guide (r35.6.1 and r36.x), Multimedia > "Accelerated GStreamer": nvv4l2decoder
# decodes H.264, H.265, VP8, VP9, MPEG4, MPEG2 (AV1 on AGX Orin); its decode examples are
# `filesrc ! qtdemux ! queue ! h264parse ! nvv4l2decoder`, with h265parse / mpeg4videoparse for H.265 /
# MPEG-4; nvvidconv converts the decoder's video/x-raw(memory:NVMM) to system memory in formats that
# include BGRx and RGBA but not BGR (hence `nvvidconv ! video/x-raw,format=BGRx ! videoconvert` for BGR).
# DeepStream "Gst-nvvideo4linux2" (gst-inspect nvv4l2decoder): sink caps video/x-h264 and video/x-h265
# with stream-format=byte-stream, alignment=au (what h264parse / h265parse output for it).
# GStreamer's nvcodec plug-in pages (nvh264dec, nvh265dec, nvmpeg4videodec): sink video/x-h264,
# video/x-h265, video/mpeg mpegversion=4; src video/x-raw NV12 (system, CUDA or GL memory).
JETSON_DECODER_CODECS = {"nvv4l2decoder": {"h264", "h265", "mpeg4"}}
JETSON_EXAMPLE_PARSERS = {"h264": "h264parse", "h265": "h265parse", "mpeg4": "mpeg4videoparse"}
NVVIDCONV_RAW_FORMATS = {"BGRx", "RGBA", "I420", "NV12", "GRAY8"}
NVCODEC_DECODERS = {"h264": "nvh264dec", "h265": "nvh265dec", "mpeg4": "nvmpeg4videodec"}
RTP_DEPAYLOADERS = {"h264": "rtph264depay", "h265": "rtph265depay", "mpeg4": "rtpmp4vdepay"}


def elements(pipeline):
    return [part.strip() for part in pipeline.split(" ! ")]


def names(pipeline):
    return [part.split(" ", 1)[0] for part in elements(pipeline)]


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("location,live", [("/v/clip.mp4", False), ("/v/clip.mkv", False),
                                           ("rtsp://cam.local:8554/live", True)])
def test_jetson_pipeline_uses_the_documented_elements_and_caps(codec, location, live):
    text = decode_pipeline(location, codec, "jetson", live, "BGRx")
    parts = names(text)
    decoder = parts.index("nvv4l2decoder")
    assert codec in JETSON_DECODER_CODECS["nvv4l2decoder"]
    assert parts[decoder - 1] == JETSON_EXAMPLE_PARSERS[codec]  # the parser of NVIDIA's example, right before it
    assert parts[decoder + 1] == "nvvidconv" and elements(text)[decoder + 2] == "video/x-raw,format=BGRx"
    assert "BGRx" in NVVIDCONV_RAW_FORMATS and "videoconvert" not in parts  # BGRx: no CPU conversion at all
    if live:
        assert parts[:3] == ["rtspsrc", RTP_DEPAYLOADERS[codec], JETSON_EXAMPLE_PARSERS[codec]]
        assert elements(text)[-1] == "appsink drop=true max-buffers=1 sync=false"  # newest frame only
        assert "drop-on-latency=true" in elements(text)[0]
    else:
        assert parts[:3] == ["filesrc", "qtdemux" if location.endswith(".mp4") else "matroskademux", "queue"]
        assert elements(text)[-1] == "appsink drop=false max-buffers=2 sync=false"  # every frame of a file
    bgr = decode_pipeline(location, codec, "jetson", live, "BGR")
    assert elements(bgr)[decoder + 2:decoder + 5] == ["video/x-raw,format=BGRx", "videoconvert", "video/x-raw,format=BGR"]


def test_desktop_and_software_profiles_are_the_jetson_shape_with_other_decoders():
    for codec in CODECS:
        jetson = decode_pipeline("/v/a clip.mp4", codec, "jetson")
        assert decode_pipeline("/v/a clip.mp4", codec, "nvcodec") == jetson.replace(
            "nvv4l2decoder", NVCODEC_DECODERS[codec]).replace("nvvidconv", "videoconvert")
        twin = jetson.replace("nvv4l2decoder", PROFILES["software"].decoders[codec]).replace("nvvidconv", "videoconvert")
        assert decode_pipeline("/v/a clip.mp4", codec, "software") == twin  # only the hardware elements differ
    elementary = decode_pipeline("/v/stream.h264", "h264", "jetson")
    assert names(elementary)[:3] == ["filesrc", "h264parse", "nvv4l2decoder"]
    assert set(needed_elements("/v/c.mp4", "h264", "jetson", False)) == {
        "filesrc", "qtdemux", "queue", "h264parse", "nvv4l2decoder", "nvvidconv", "videoconvert", "appsink"}
    assert "videoconvert" not in needed_elements("/v/c.mp4", "h264", "jetson", False, "BGRx")


def test_locations_are_quoted_for_gst_parse_launch():
    assert quoted('/v/my "clip".mp4') == r'"/v/my \"clip\".mp4"'
    assert elements(decode_pipeline("/v/x y!.mp4", "h264"))[0] == 'filesrc location="/v/x y!.mp4"'
    with pytest.raises(ValueError, match="no demuxer"):
        decode_pipeline("/v/clip.webm", "h264")


def test_csi_pipeline_skips_the_cpu_conversion_when_asked():
    bgr, bgrx = csi_pipeline(1), csi_pipeline(1, pixel_format="BGRx")
    assert "videoconvert" in bgr and "format=BGR ! appsink" in bgr
    assert "videoconvert" not in bgrx and bgrx.endswith("nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! "
                                                         "appsink drop=true max-buffers=1 sync=false")
    plan = plan_decode(parse_source("csi://1"), "auto", pixel_format="BGRx")
    assert plan.pipeline == bgrx


# -- the choice: auto / cpu / nvdec ------------------------------------------------------------------
class FakeProbe:
    def __init__(self, gstreamer=True, present=(), codec="h264"):
        self.gstreamer, self.present, self._codec = gstreamer, set(present), codec

    def opencv_gstreamer(self):
        return self.gstreamer

    def element_exists(self, name):
        return name in self.present

    def codec(self, spec):
        return self._codec


COMMON = {"filesrc", "qtdemux", "queue", "h264parse", "videoconvert", "appsink", "rtspsrc", "rtph264depay"}
FILE = SourceSpec("/v/clip.mp4", "file", "/v/clip.mp4", False)
RTSP = SourceSpec("rtsp://u:pw@cam/live", "stream", "rtsp://u:pw@cam/live", True)


def test_auto_picks_nvdec_on_a_jetson_then_a_desktop_gpu_else_the_cpu_saying_why():
    jetson = plan_decode(FILE, "auto", "BGRx", FakeProbe(present=COMMON | {"nvv4l2decoder", "nvvidconv"}))
    assert "nvv4l2decoder ! nvvidconv" in jetson.pipeline and not jetson.note
    desktop = plan_decode(RTSP, "auto", "BGRx", FakeProbe(present=COMMON | {"nvh264dec"}))
    assert "rtph264depay ! h264parse ! nvh264dec ! videoconvert" in desktop.pipeline
    assert desktop.description == "GStreamer, nvh264dec"
    cpu = plan_decode(FILE, "auto", "BGRx", FakeProbe(present=COMMON))
    assert cpu.pipeline is None and "nvv4l2decoder" in cpu.note and "nvh264dec" in cpu.note
    no_gst = plan_decode(FILE, "auto", "BGRx", FakeProbe(gstreamer=False))
    assert no_gst.pipeline is None and "no GStreamer" in no_gst.note
    unknown = plan_decode(FILE, "auto", "BGRx", FakeProbe(present=COMMON | {"nvh264dec"}, codec=None))
    assert unknown.pipeline is None and "codec is unknown" in unknown.note


def test_cpu_forces_ffmpeg_and_nvdec_refuses_in_one_sentence():
    hardware = FakeProbe(present=COMMON | {"nvv4l2decoder", "nvvidconv"})
    assert plan_decode(FILE, "cpu", "BGRx", hardware).describe() == "FFmpeg (CPU)"
    with pytest.raises(EdgeEdetError, match="--decode nvdec cannot decode .*no GStreamer"):
        plan_decode(FILE, "nvdec", "BGRx", FakeProbe(gstreamer=False))
    with pytest.raises(EdgeEdetError, match="rtsp:// streams; 0 is neither"):
        plan_decode(SourceSpec("0", "camera", 0, True), "nvdec")
    http = SourceSpec("http://cam/mjpg", "stream", "http://cam/mjpg", True)
    assert plan_decode(http, "auto", probe=hardware).pipeline is None  # not a stream it can build
    assert isinstance(plan_decode(FILE, "auto", probe=hardware), DecodePlan)
    with pytest.raises(EdgeEdetError, match="expected one of auto, cpu, nvdec"):
        plan_decode(FILE, "gpu")


def test_run_prints_the_choice_and_puts_it_in_the_summary(deploy_lite0, tmp_path, capsys):
    from edge_edet.commands.run import main

    video = shared_path("data", "video", "cars_short.mp4")
    report = str(tmp_path / "summary.json")
    code = main(["--engine", deploy_lite0, "--source", video, "--headless", "--max-frames", "2", "--no-drop",
                 "--decode", "cpu", "--verbose", "--summary-json", report], prog="edge-edet run")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "decode: FFmpeg (CPU)" in err and "decode   FFmpeg (CPU)" in out
    assert json.load(open(report))["source"]["decode"] == "FFmpeg (CPU)"
    code = main(["--engine", deploy_lite0, "--source", video, "--decode", "nvdec"], prog="edge-edet run")
    err = capsys.readouterr().err
    assert code == 2 and "--decode nvdec cannot decode" in err and "Traceback" not in err


# -- the software twin, for real --------------------------------------------------------------------
def _twin_prerequisites():
    """None when Debian's OpenCV with GStreamer and the twin's elements are here, else what is missing."""
    if not os.path.exists(DEBIAN_PYTHON):
        return f"no {DEBIAN_PYTHON}"
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import cv2; print(cv2.getBuildInformation())"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"{DEBIAN_PYTHON} has no cv2 (apt-get install python3-opencv)"
    if not any(line.strip().startswith("GStreamer:") and "YES" in line for line in probe.stdout.splitlines()):
        return f"{DEBIAN_PYTHON}'s OpenCV has no GStreamer"
    inspect = shutil.which("gst-inspect-1.0")
    if inspect is None or shutil.which("gst-launch-1.0") is None:
        return "no gst-inspect-1.0 / gst-launch-1.0 (apt-get install gstreamer1.0-tools)"
    missing = [e for e in TWIN_ELEMENTS if subprocess.run([inspect, "--exists", e]).returncode != 0]
    return f"GStreamer lacks {', '.join(missing)}" if missing else None


@pytest.fixture(scope="module")
def twin_ready():
    missing = _twin_prerequisites()
    if missing:
        if os.environ.get("CI") == "true" and shutil.which("apt-get"):
            pytest.fail(f"software twin prerequisites missing under CI: {missing}; .ci/run installs {APT_PACKAGES}")
        pytest.skip(f"software twin needs Debian's GStreamer OpenCV: {missing} (apt-get install {APT_PACKAGES})")


@pytest.fixture(scope="module")
def h264_stream(twin_ready, tmp_path_factory):
    """people_walking.mp4 (MPEG-4 part 2) re-encoded as an H.264 elementary stream, in a path with a space."""
    source = shared_path("data", "video", "people_walking.mp4")
    out = str(tmp_path_factory.mktemp("twin") / "people walking.h264")
    done = subprocess.run(["gst-launch-1.0", "-q", "filesrc", f"location={source}", "!", "qtdemux", "!",
                           "mpeg4videoparse", "!", "avdec_mpeg4", "!", "videoconvert", "!", "video/x-raw,format=I420",
                           "!", "openh264enc", "bitrate=4000000", "!", "h264parse", "!",
                           "video/x-h264,stream-format=byte-stream", "!", "filesink", f"location={out}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and os.path.getsize(out) > 0, done.stderr
    return out


def _run_twin(pixel_formats, video):
    env = dict(os.environ, PYTHONPATH=REPO, OPENCV_LOG_LEVEL="ERROR")
    done = subprocess.run([DEBIAN_PYTHON, os.path.join(REPO, "tests", "gst_twin_check.py"), pixel_formats, video],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["people_walking.mp4", "h264"])
def test_software_twin_gives_the_ffmpeg_readers_frames(twin_ready, h264_stream, which):
    video = shared_path("data", "video", "people_walking.mp4") if which != "h264" else h264_stream
    formats = ("BGRx", "BGR") if which != "h264" else ("BGRx",)
    result = _run_twin(",".join(formats), video)
    for pixel_format in formats:
        row = result[pixel_format]
        assert row["ffmpeg_frames"] == row["frames"] == 300, row
        assert row["max_mean_abs_diff"] < 2.0, row  # the same frames, up to YUV -> BGR rounding
        channels = 4 if pixel_format == "BGRx" else 3
        assert row["shapes"] == [[[576, 768, 3], [576, 768, channels]]]
        assert ("videoconvert ! video/x-raw,format=BGR ! " in row["pipeline"]) is (pixel_format == "BGR")
    decoder = "avdec_mpeg4" if which != "h264" else "avdec_h264"
    assert f" ! {decoder} ! videoconvert ! video/x-raw,format=BGRx" in result["BGRx"]["pipeline"]
    print(f"software twin {which}: {result['seconds']} s")


# -- BGRx frames through the runtime: letterbox reads them, only drawn frames are converted ------------
def test_bgrx_frames_letterbox_like_bgr_and_render_as_bgr():
    import numpy as np

    from edge_edet.contract.letterbox import letterbox
    from edge_edet.runtime.pipeline import Pipeline
    from edge_edet.runtime.sinks import Sink
    from edge_edet.runtime.sources import FrameSource
    from test_pipeline import FakeDetector

    rng = np.random.default_rng(1)
    bgr = [rng.integers(0, 255, (90, 160, 3), dtype=np.uint8) for _ in range(5)]
    bgrx = [np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]) for f in bgr]
    for small, x in zip(bgr, bgrx):  # down- and upscaled: the same pixels as from BGR
        for size in ((64, 64), (320, 480)):
            assert np.array_equal(letterbox(small, size, (114, 114, 114))[0], letterbox(x, size, (114, 114, 114))[0])

    class Reader:
        fps, frames = 10.0, list(bgrx)

        def read(self, stop=None):
            return self.frames.pop(0) if self.frames else None

        def close(self):
            pass

    class Drawn(Sink):
        needs_image = True

        def __init__(self):
            self.images = []

        def write(self, frame, detections, image):
            self.images.append(image)

    class Counted(Sink):
        needs_image = False

        def __init__(self):
            self.images = []

        def write(self, frame, detections, image):
            self.images.append((image, frame.image.shape))

    drawn, counted = Drawn(), Counted()
    spec = SourceSpec("bgrx", "file", "bgrx.mp4", False)
    Pipeline(FakeDetector(), FrameSource(spec, Reader(), drop=False), [drawn], overlay=False).run()
    assert [image.shape for image in drawn.images] == [(90, 160, 3)] * 5
    assert all(np.array_equal(a, b) for a, b in zip(drawn.images, bgr))  # converted for drawing, same pixels
    Reader.frames = list(bgrx)
    Pipeline(FakeDetector(), FrameSource(spec, Reader(), drop=False), [counted]).run()
    assert counted.images == [(None, (90, 160, 4))] * 5  # nothing drawn: no conversion at all
