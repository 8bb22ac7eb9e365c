"""Frame readers: one frame at a time on whatever thread calls them (OpenCV underneath).

`open_reader(spec)` gives an image-folder reader or a cv2.VideoCapture reader (files loop, network
streams reconnect with exponential back-off).  `iter_frames(uri)` is the plain generator for
offline work (calibration, evaluation).  The threaded, latest-frame delivery the live runtime
needs is runtime/sources.py, built on these readers.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Iterator, List, Optional

import cv2
import numpy as np

from .errors import EdgeEdetError
from .machine import opencv_video_backends
from .source_uri import SourceSpec, parse_source

OPEN_TIMEOUT_MS = 5000  # network streams: give up opening / reading after this long
READ_TIMEOUT_MS = 5000
MAX_BACKOFF_S = 10.0


class _QuietOpenCV:
    """OpenCV's own warnings while probing back-ends are noise next to our one-sentence error."""

    def __enter__(self):
        self.logging = getattr(getattr(cv2, "utils", None), "logging", None)
        if self.logging is not None:
            self.previous = self.logging.getLogLevel()
            self.logging.setLogLevel(self.logging.LOG_LEVEL_ERROR)
        return self

    def __exit__(self, *exc):
        if self.logging is not None:
            self.logging.setLogLevel(self.previous)


class _ImageReader:
    """Image files in order; files OpenCV cannot decode are skipped and counted."""

    def __init__(self, spec: SourceSpec, loop: bool = False):
        self.spec, self.loop = spec, loop
        self.paths = list(spec.target)
        self.position = 0
        self.undecodable: List[str] = []
        self.fps = 0.0
        self.path: Optional[str] = None  # file of the frame just read

    def read(self, stop: Optional[threading.Event] = None) -> Optional[np.ndarray]:
        while True:
            if self.position >= len(self.paths):
                if not self.loop or len(self.undecodable) >= len(self.paths):
                    return None
                self.position = 0
            path = self.paths[self.position]
            self.position += 1
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is not None:
                self.path = path
                return frame
            if path not in self.undecodable:
                self.undecodable.append(path)

    def frame_size(self) -> Optional[tuple]:
        """(width, height) of the first image (one decode), or None if it does not decode."""
        image = cv2.imread(self.paths[0], cv2.IMREAD_COLOR) if self.paths else None
        return (image.shape[1], image.shape[0]) if image is not None else None

    def warn_undecodable(self) -> None:
        if self.undecodable:
            example = self.undecodable[0]
            print(f"edge-edet: warning: skipped {len(self.undecodable)} of {len(self.paths)} files in "
                  f"{self.spec.uri} that OpenCV cannot decode (e.g. {example})", file=sys.stderr)

    def close(self) -> None:
        self.warn_undecodable()


class _CaptureReader:
    """cv2.VideoCapture for cameras, files, streams and GStreamer pipelines.

    `pipeline`: a GStreamer pipeline that decodes this file or stream (contract/decode.py chose it,
    e.g. NVDEC on a Jetson); None reads it with FFmpeg.  End of a file: replay it when looping.  A network stream that fails: reopen with exponential
    back-off, `reconnect` times.  A camera or pipeline that stops delivering: end of stream.
    """

    def __init__(self, spec: SourceSpec, loop: bool = False, reconnect: int = 5, backoff: float = 0.5,
                 pipeline: Optional[str] = None):
        self.spec, self.loop, self.reconnect, self.backoff = spec, loop, int(reconnect), float(backoff)
        self.pipeline = pipeline if pipeline is not None else (spec.target if spec.kind == "gstreamer" else None)
        self.reconnects = 0
        self.ended_reason = ""
        self.cap = self._open()
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0

    def frame_size(self) -> Optional[tuple]:
        """(width, height) the capture reports before the first read, or None when it does not say."""
        width, height = (int(self.cap.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        return (width, height) if width > 0 and height > 0 else None

    def _attempts(self):
        """(description, open function) pairs tried in order."""
        spec = self.spec
        if spec.kind == "camera":
            attempts = []
            if sys.platform.startswith("linux"):
                attempts.append(("V4L2", lambda: cv2.VideoCapture(spec.target, cv2.CAP_V4L2)))
            attempts.append(("OpenCV's default backend", lambda: cv2.VideoCapture(spec.target, cv2.CAP_ANY)))
            return attempts
        if self.pipeline is not None:
            return [("GStreamer", lambda: cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER))]
        if spec.kind == "stream":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
            return [(f"FFmpeg, {OPEN_TIMEOUT_MS // 1000} s timeout",
                     lambda: cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params))]
        return [("FFmpeg", lambda: cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)),
                ("OpenCV's default backend", lambda: cv2.VideoCapture(spec.target, cv2.CAP_ANY))]

    def _open(self, quiet: bool = False):
        spec = self.spec
        if self.pipeline is not None and not opencv_video_backends().get("GStreamer"):
            raise EdgeEdetError(f"source {spec.shown} needs OpenCV built with GStreamer, and this OpenCV has none "
                                f"(on a Jetson use JetPack's python3-opencv, not the pip wheel)")
        tried = []
        for name, opener in self._attempts():
            with _QuietOpenCV():
                cap = opener()
            if cap is not None and cap.isOpened():
                if spec.live:
                    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
                return cap
            if cap is not None:
                cap.release()
            tried.append(name)
        if quiet:
            return None
        what = {"camera": "camera", "file": "video file", "stream": "stream", "gstreamer": "GStreamer pipeline"}
        hint = {"camera": "is it connected and not used by another program?",
                "file": "is it a video in a format this OpenCV can decode?",
                "stream": "is the address reachable and the path right?",
                "gstreamer": "run it with gst-launch-1.0 to see why."}
        raise EdgeEdetError(f"cannot open {what[spec.kind]} {spec.shown} (tried {' and '.join(tried)}); "
                            f"{hint[spec.kind]}")

    def read(self, stop: Optional[threading.Event] = None) -> Optional[np.ndarray]:
        ok, frame = self.cap.read()
        if ok and frame is not None:
            return frame
        if self.spec.kind == "file":
            if not self.loop:
                return None
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
            if not ok:  # some containers do not seek: reopen
                self.cap.release()
                self.cap = self._open()
                ok, frame = self.cap.read()
            return frame if ok else None
        if self.spec.kind == "stream":
            return self._reconnect(stop)
        self.ended_reason = (f"{'camera' if self.spec.kind == 'camera' else 'pipeline'} {self.spec.shown} "
                             f"stopped delivering frames (unplugged?)")
        return None

    def _reconnect(self, stop: Optional[threading.Event]) -> Optional[np.ndarray]:
        self.cap.release()
        for attempt in range(self.reconnect):
            delay = min(MAX_BACKOFF_S, self.backoff * (2 ** attempt))
            print(f"edge-edet: stream {self.spec.shown} lost; reconnecting in {delay:.1f} s "
                  f"({attempt + 1}/{self.reconnect})", file=sys.stderr)
            if stop is not None and stop.wait(delay):
                break
            if stop is None:
                time.sleep(delay)
            self.reconnects += 1
            cap = self._open(quiet=True)
            if cap is None:
                continue
            ok, frame = cap.read()
            if ok and frame is not None:
                self.cap = cap
                return frame
            cap.release()
        self.cap = cv2.VideoCapture()
        self.ended_reason = f"stream {self.spec.shown} lost; gave up after {self.reconnects} reconnect attempts"
        return None

    def close(self) -> None:
        self.cap.release()


def open_reader(spec: SourceSpec, loop: bool = False, reconnect: int = 5, backoff: float = 0.5,
                pipeline: Optional[str] = None):
    """A reader for `spec`; `pipeline` (a file or stream) decodes it through GStreamer instead of FFmpeg."""
    if spec.kind == "images":
        return _ImageReader(spec, loop=loop)
    return _CaptureReader(spec, loop=loop, reconnect=reconnect, backoff=backoff, pipeline=pipeline)


def iter_frames(uri, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """BGR frames of an image folder, a glob or a video file, in order, on the calling thread.

    Files OpenCV cannot decode are skipped and reported once, on stderr, when the generator ends.
    An empty or missing folder, a glob with no matches and an unopenable video raise EdgeEdetError.
    """
    spec = parse_source(uri)
    if spec.kind not in ("images", "file"):
        raise EdgeEdetError(f"{spec.shown} is a {spec.kind}; expected an image folder, a glob or a video file")
    reader = open_reader(spec)
    count = 0
    try:
        while limit is None or count < limit:
            frame = reader.read()
            if frame is None:
                break
            count += 1
            yield frame
    finally:
        reader.close()
    if count == 0:
        raise EdgeEdetError(f"{spec.shown} gave no frames: OpenCV could not decode any of it")
