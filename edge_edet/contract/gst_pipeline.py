"""GStreamer pipeline strings: the one place they are built (DESIGN.md: decode where the hardware is).

    source -> demux / depay -> parse -> decoder -> converter -> video/x-raw,format=BGRx [-> videoconvert -> BGR] -> appsink

A *profile* names the decoder per codec and the converter; everything else is shared, so the
`software` twin (avdec_* for the decoder, videoconvert for the converter) has exactly the shape
of the Jetson pipeline (nvv4l2decoder + nvvidconv) and runs here through OpenCV's GStreamer
back-end.  Element names and caps follow NVIDIA's Jetson Linux Developer Guide, "Accelerated
GStreamer" (nvv4l2decoder decodes H.264, H.265, MPEG-4 and more into NVMM memory; nvvidconv
copies NVMM to system memory as BGRx or RGBA, not BGR, hence the optional videoconvert) and
GStreamer's nvcodec plug-in (nvh264dec, nvh265dec on desktop GPUs).

BGRx output skips the per-frame CPU videoconvert: the letterbox reads BGRx directly (see
contract/letterbox.py).  Pure string building; what is installed is decided in contract/decode.py.
"""
from __future__ import annotations

import os
from typing import Dict, NamedTuple, Optional


class Codec(NamedTuple):
    parser: str  # turns the demuxed stream into what the decoders take (byte-stream, access units)
    depayloader: str  # RTP -> elementary stream (rtsp://)


CODECS: Dict[str, Codec] = {
    "h264": Codec("h264parse", "rtph264depay"),
    "h265": Codec("h265parse", "rtph265depay"),
    "mpeg4": Codec("mpeg4videoparse", "rtpmp4vdepay"),
}


class Profile(NamedTuple):
    name: str
    decoders: Dict[str, str]  # codec -> decoder element
    converter: str  # decoder output -> system-memory BGRx
    hardware: bool


PROFILES: Dict[str, Profile] = {
    # Jetson (JetPack 5/6/7): NVDEC through V4L2, NVMM -> BGRx on the VIC
    "jetson": Profile("jetson", {"h264": "nvv4l2decoder", "h265": "nvv4l2decoder", "mpeg4": "nvv4l2decoder"},
                      "nvvidconv", True),
    # desktop GStreamer with the nvcodec plug-in (gst-plugins-bad): NVDEC through NVIDIA's video codec SDK
    "nvcodec": Profile("nvcodec", {"h264": "nvh264dec", "h265": "nvh265dec", "mpeg4": "nvmpeg4videodec"},
                       "videoconvert", True),
    # the software twin: same shape, the hardware elements swapped for libav decoders and videoconvert
    "software": Profile("software", {"h264": "avdec_h264", "h265": "avdec_h265", "mpeg4": "avdec_mpeg4"},
                        "videoconvert", False),
}
HARDWARE_PROFILES = ("jetson", "nvcodec")  # tried in this order by --decode auto / nvdec

# containers -> demuxer; elementary streams (.h264, .h265) go straight to the parser
DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".mkv": "matroskademux", ".avi": "avidemux"}
ELEMENTARY = {".h264": "h264", ".264": "h264", ".h265": "h265", ".265": "h265", ".hevc": "h265"}
VIDEO_EXTENSIONS = tuple(DEMUXERS) + tuple(ELEMENTARY)
LIVE_SCHEMES = ("rtsp", "rtsps")
RTSP_LATENCY_MS = 200  # rtspsrc's jitter buffer; late packets are dropped instead of piling up latency
PIXEL_FORMATS = ("BGR", "BGRx")


def quoted(text: str) -> str:
    """A property value for gst_parse_launch: double-quoted, with backslashes and quotes escaped."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tail(converter: str, pixel_format: str, live: bool) -> str:
    """converter -> BGRx [-> videoconvert -> BGR] -> appsink (newest frame only when live)."""
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"pixel format {pixel_format!r}: expected one of {', '.join(PIXEL_FORMATS)}")
    parts = [converter, "video/x-raw,format=BGRx"]
    if pixel_format == "BGR":  # the CPU conversion the letterbox can do without
        parts += ["videoconvert", "video/x-raw,format=BGR"]
    sink = "appsink drop=true max-buffers=1 sync=false" if live else "appsink drop=false max-buffers=2 sync=false"
    return " ! ".join(parts + [sink])


def source_elements(location: str, codec: str, live: bool) -> list:
    """The elements up to and including the parser, for a file path or an rtsp:// URI."""
    if codec not in CODECS:
        raise ValueError(f"codec {codec!r}: expected one of {', '.join(CODECS)}")
    parse = CODECS[codec]
    if live:
        return [f"rtspsrc location={quoted(location)} latency={RTSP_LATENCY_MS} drop-on-latency=true",
                parse.depayloader, parse.parser]
    ext = os.path.splitext(location)[1].lower()
    elements = [f"filesrc location={quoted(location)}"]
    if ext in DEMUXERS:
        elements += [DEMUXERS[ext], "queue"]
    elif ext not in ELEMENTARY:
        raise ValueError(f"{location}: no demuxer for '{ext}' ({', '.join(VIDEO_EXTENSIONS)})")
    return elements + [parse.parser]


def decode_pipeline(location: str, codec: str, profile: str = "jetson", live: bool = False,
                    pixel_format: str = "BGRx") -> str:
    """The decode pipeline for a video file or an rtsp:// URI with a known codec."""
    chosen = PROFILES[profile]
    if codec not in chosen.decoders:
        raise ValueError(f"profile {profile} has no decoder for {codec}")
    head = source_elements(location, codec, live) + [chosen.decoders[codec]]
    return " ! ".join(head) + " ! " + _tail(chosen.converter, pixel_format, live)


def needed_elements(location: str, codec: str, profile: str, live: bool, pixel_format: str = "BGR") -> list:
    """Every element factory the pipeline uses (for the registry check before choosing it)."""
    text = decode_pipeline(location, codec, profile, live, pixel_format)
    return sorted({part.strip().split(" ", 1)[0] for part in text.split(" ! ")
                   if not part.strip().startswith("video/")})


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0,
                 pixel_format: str = "BGR") -> str:
    """Jetson CSI camera through nvarguscamerasrc, converted on the VIC (nvvidconv), newest frame only."""
    head = (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12")
    return f"{head} ! " + _tail(f"nvvidconv flip-method={flip}", pixel_format, live=True)


def codec_from_extension(path: str) -> Optional[str]:
    """'h264' / 'h265' for an elementary stream file, else None (a container says it in its header)."""
    return ELEMENTARY.get(os.path.splitext(str(path))[1].lower())
