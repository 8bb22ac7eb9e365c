"""What a source URI means: camera index, /dev/videoN, file, folder, glob, rtsp/http stream,
csi://N (Jetson CSI camera) or a GStreamer pipeline.  Pure parsing, no I/O beyond stat and listdir.

`parse_source(uri)` is the one place a source string is interpreted; the readers (frames.py), the
threaded runtime source (runtime/sources.py) and calibration all start from its `SourceSpec`.
"""
from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass
from typing import List, Union
from urllib.parse import parse_qs, urlsplit

from .errors import EdgeEdetError
from .gst_pipeline import csi_pipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

@dataclass(frozen=True)
class SourceSpec:
    uri: str  # as the user wrote it (credentials hidden in `shown`)
    kind: str  # 'camera', 'file', 'stream', 'gstreamer', 'images'
    target: Union[int, str, tuple]  # camera index / device path, file path, URL, pipeline, or image paths
    live: bool

    @property
    def shown(self) -> str:
        return redact(self.uri)


def redact(uri: str) -> str:
    """rtsp://user:secret@host -> rtsp://user:***@host, so passwords stay out of logs."""
    return re.sub(r"(//[^/:@\s]+):[^@/\s]*@", r"\1:***@", str(uri))


def csi_options(uri: str) -> dict:
    """csi://N?width=W&height=H&fps=F&flip=M -> csi_pipeline's keyword arguments."""
    parts = urlsplit(uri)
    try:
        sensor = int(parts.netloc or parts.path.strip("/") or 0)
        query = {k: int(v[-1]) for k, v in parse_qs(parts.query).items()}
    except ValueError:
        raise EdgeEdetError(f"source {uri}: expected csi://N[?width=W&height=H&fps=F&flip=M] with integers") from None
    unknown = set(query) - {"width", "height", "fps", "flip"}
    if unknown:
        raise EdgeEdetError(f"source {uri}: unknown option {', '.join(sorted(unknown))} (width, height, fps, flip)")
    return dict(query, sensor_id=sensor)


def _list_images(folder: str) -> List[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name)))


def _special_file(path: str) -> str:
    """'a FIFO (named pipe)' or 'a device' for something that exists but is no file or folder, else ''."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return ""


def parse_source(uri) -> SourceSpec:
    """Tell what kind of source a URI is; raises EdgeEdetError naming it when it is none."""
    text = str(uri).strip()
    if not text:
        raise EdgeEdetError("the source is empty; give a camera index, a file, a folder or a stream URL")
    if text.isdigit():
        return SourceSpec(text, "camera", int(text), True)
    if re.fullmatch(r"/dev/video\d+", text):
        if not os.path.exists(text):
            raise EdgeEdetError(f"camera {text} does not exist (no such device; see `ls /dev/video*`)")
        return SourceSpec(text, "camera", text, True)
    if text.lower().startswith("csi://"):
        return SourceSpec(text, "gstreamer", csi_pipeline(**csi_options(text)), True)
    if "!" in text and "appsink" in text:
        return SourceSpec(text, "gstreamer", text, True)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in STREAM_SCHEMES:
        return SourceSpec(text, "stream", text, True)
    if scheme == "file":
        text = text[len("file://"):]
    if os.path.isdir(text):
        images = _list_images(text)
        if not images:
            raise EdgeEdetError(f"folder {text} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return SourceSpec(text, "images", tuple(images), False)
    if os.path.isfile(text):  # before globbing: 'clip[1].mp4' is a file name, not a pattern
        if text.lower().endswith(IMAGE_EXTENSIONS):
            return SourceSpec(text, "images", (text,), False)
        return SourceSpec(text, "file", text, False)
    if glob.has_magic(text):
        images = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not images:
            raise EdgeEdetError(f"no files match {text}")
        return SourceSpec(text, "images", tuple(images), False)
    if "!" in text:
        raise EdgeEdetError(f"GStreamer pipeline '{text}' must end in an appsink, e.g. "
                            f"'... ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1'")
    special = _special_file(text)
    if special:
        raise EdgeEdetError(f"source {text} is {special}, not a video file, image folder or camera; give a file, "
                            f"a folder, a camera (0 or /dev/videoN) or a stream URL")
    if scheme:
        raise EdgeEdetError(f"source {redact(text)}: {scheme}:// is not a scheme edge-edet reads; streams are "
                            f"{', '.join(s + '://' for s in STREAM_SCHEMES)} or csi://N")
    if os.sep in text or os.path.splitext(text)[1]:
        raise EdgeEdetError(f"source {text} does not exist (no such file or folder)")
    raise EdgeEdetError(f"source {redact(text)} is not a camera index, an existing /dev/video device, file, "
                        f"folder or glob, nor an rtsp/http/csi URI or GStreamer pipeline")
