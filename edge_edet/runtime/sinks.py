"""Where a stream's results go: a window, a video file, a JSON-lines file, an MJPEG preview.

Every sink checks what it can at construction (a folder that is missing or unwritable, a video
extension OpenCV cannot write, a busy port), so a mistake fails before the stream starts.  Files
are written under a temporary name in the same folder and renamed into place by close(), which
the pipeline always calls (end of stream, Ctrl-C, SIGTERM, error): no half-written output file.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import cv2
import numpy as np

from ..contract.errors import EdgeEdetError
from ..contract.fileio import check_output_file
from .detections import Detections
from ..contract.letterbox import letterbox
from .mjpeg import MjpegServer

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


def check_output_path(path: str, flag: str) -> str:
    """Absolute path of a file we may create; one clear sentence if its folder is missing or read-only."""
    return check_output_file(path, flag)


def _temp_name(full: str) -> str:
    """Hidden temporary file beside the target, keeping the extension (OpenCV picks the container by it)."""
    folder, name = os.path.split(full)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}.partial{ext}")


class Sink:
    """write(frame, detections, image) per frame, close() once.  `image` is the rendered frame."""

    needs_image = True
    stop_requested = False  # a window's 'q' asks the pipeline to stop

    def write(self, frame, detections: Detections, image: Optional[np.ndarray]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def discard(self) -> None:
        """Give up before the stream started: release everything, leave no file."""
        self.close()


class VideoFileSink(Sink):
    """A video file at the first frame's size (later frames of another size are letterboxed into it)."""

    def __init__(self, path: str, fps: float = 30.0):
        self.path = check_output_path(path, "--output")
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in VIDEO_CODECS:
            raise EdgeEdetError(f"--output {path}: cannot write '{ext or 'no extension'}' videos; "
                                f"use one of {', '.join(VIDEO_CODECS)}")
        self.fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[ext])
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.tmp = _temp_name(self.path)
        probe = cv2.VideoWriter(self.tmp, self.fourcc, self.fps, (64, 64))
        usable = probe.isOpened()
        probe.release()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)
        if not usable:
            raise EdgeEdetError(f"--output {path}: this OpenCV cannot write {VIDEO_CODECS[ext]} video; "
                                f"try another extension ({', '.join(VIDEO_CODECS)})")
        self.writer = None
        self.size = None  # (width, height)
        self.frames = 0

    def write(self, frame, detections, image):
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(self.tmp, self.fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                raise EdgeEdetError(f"--output {self.path}: OpenCV could not start writing the video")
        if (image.shape[1], image.shape[0]) != self.size:
            image, _ = letterbox(image, (self.size[1], self.size[0]), (0, 0, 0))
        self.writer.write(image)
        self.frames += 1

    def discard(self):
        self._discarded = True
        self.close()

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            os.replace(self.tmp, self.path)
        elif self.frames == 0 and not getattr(self, "_discarded", False):
            print(f"edge-edet: warning: no frames reached --output, so {self.path} was not written", file=sys.stderr)


class JsonLinesSink(Sink):
    """One JSON object per frame: frame index, timestamp, size and detections in frame pixels;
    with tracking, a track_id per detection and the cumulative counts."""

    needs_image = False

    def __init__(self, path: str):
        self.path = check_output_path(path, "--json")
        self.tmp = _temp_name(self.path)
        self.handle = open(self.tmp, "w", encoding="utf-8")
        self.frames = 0

    def write(self, frame, detections, image):
        record = {"frame": int(frame.index), "timestamp": float(frame.timestamp),
                  "width": int(frame.image.shape[1]), "height": int(frame.image.shape[0])}
        if getattr(frame, "path", None):
            record["file"] = frame.path
        record["detections"] = detections.to_records()
        if detections.analytics is not None:
            record["counts"] = detections.analytics.counts  # cumulative, as of this frame
        self.handle.write(json.dumps(record) + "\n")
        self.frames += 1

    def close(self):
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            os.replace(self.tmp, self.path)

    def discard(self):
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            os.remove(self.tmp)


def display_available() -> bool:
    """True when a window can be shown: a display is set and this OpenCV has a GUI back-end."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return "NONE" not in line.split(":", 1)[1].upper()
    return True


class WindowSink(Sink):
    """cv2.imshow on the calling (main) thread; 'q' or Esc stops the stream."""

    def __init__(self, title: str = "edge-edet"):
        self.title = title
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise EdgeEdetError("this OpenCV cannot open a window; run with --headless "
                                "(and --serve or --output to see the results)") from None

    def write(self, frame, detections, image):
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.stop_requested = True

    def close(self):
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


class MjpegSink(Sink):
    """Publishes each rendered frame to an MjpegServer (bound at construction)."""

    def __init__(self, host: str, port: int, quality: int = 80):
        self.server = MjpegServer(host, port, quality=quality)

    @property
    def url(self) -> str:
        return self.server.url

    def write(self, frame, detections, image):
        view = detections.analytics
        self.server.publish(image, view.counts if view is not None else None)

    def close(self):
        self.server.close()


JSON_LINES_EXTENSIONS = (".jsonl", ".ndjson")


def sink_kind(uri: str) -> str:
    """'video', 'jsonl', 'mjpeg' or 'window' for an output URI (the jetson-utils style: one string says where)."""
    text = str(uri).strip()
    lower = text.lower()
    if lower.startswith("display://") or lower == "display":
        return "window"
    if lower.startswith("http://"):
        return "mjpeg"
    ext = os.path.splitext(lower)[1]
    if ext in JSON_LINES_EXTENSIONS:
        return "jsonl"
    if ext in VIDEO_CODECS:
        return "video"
    raise EdgeEdetError(f"--output {uri}: not a video file ({', '.join(VIDEO_CODECS)}), a JSON-lines file "
                        f"({', '.join(JSON_LINES_EXTENSIONS)}), http://HOST:PORT (MJPEG preview) or display://0")


def open_sink(uri: str, kind: str = None, title: str = "edge-edet") -> Sink:
    """The sink an output URI names, checked now (folder, codec, port) so a mistake costs no model load.

    video file -> VideoFileSink (its fps is set from the source before the first frame),
    .jsonl -> JsonLinesSink, http://HOST:PORT -> MjpegSink, display://N -> WindowSink.
    `kind` forces the type (the `--json FILE` alias writes JSON lines whatever the extension).
    """
    kind = kind or sink_kind(uri)
    if kind == "video":
        return VideoFileSink(uri)
    if kind == "jsonl":
        return JsonLinesSink(uri)
    if kind == "mjpeg":
        from .mjpeg import parse_serve

        address = str(uri)[len("http://"):].rstrip("/")
        return MjpegSink(*parse_serve(address))
    if kind == "window":
        return WindowSink(title)
    raise EdgeEdetError(f"unknown output kind {kind}")
