"""Video sources behind one URI-style interface, read on their own thread.

    with open_source("rtsp://cam/stream") as source:      # or 0, /dev/video1, clip.mp4, csi://0,
        for index, timestamp, frame in source:             # 'v4l2src ! ... ! appsink', images/, '*.jpg'
            ...

Live sources (cameras, streams, GStreamer pipelines) default to latest-frame: the capture thread
keeps only the newest frame, so a slow consumer never builds up latency, and each replaced frame
counts as dropped.  Files and folders default to every frame (the capture thread waits for the
consumer).  `drop=` overrides either way.  Network streams reconnect with exponential back-off;
`loop=True` replays files and folders.

`iter_frames(uri)` is the plain, single-threaded generator for offline work (calibration,
evaluation): image folders, globs and video files, frame after frame.
"""
from __future__ import annotations

import glob
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional, Union
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from ..errors import EdgeEdetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
OPEN_TIMEOUT_MS = 5000  # network streams: give up opening / reading after this long
READ_TIMEOUT_MS = 5000
MAX_BACKOFF_S = 10.0


# -- what a URI means ------------------------------------------------------------------------
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


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """Jetson CSI camera through nvarguscamerasrc, converted to BGR in hardware (nvvidconv), newest frame only."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! videoconvert ! "
            f"video/x-raw,format=BGR ! appsink drop=1 max-buffers=1 sync=false")


def _parse_csi(uri: str) -> str:
    parts = urlsplit(uri)
    try:
        sensor = int(parts.netloc or parts.path.strip("/") or 0)
        query = {k: int(v[-1]) for k, v in parse_qs(parts.query).items()}
    except ValueError:
        raise EdgeEdetError(f"source {uri}: expected csi://N[?width=W&height=H&fps=F&flip=M] with integers") from None
    unknown = set(query) - {"width", "height", "fps", "flip"}
    if unknown:
        raise EdgeEdetError(f"source {uri}: unknown option {', '.join(sorted(unknown))} (width, height, fps, flip)")
    return csi_pipeline(sensor, **query)


def _list_images(folder: str) -> List[str]:
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if name.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, name)))


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
        return SourceSpec(text, "gstreamer", _parse_csi(text), True)
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
    if os.sep in text or os.path.splitext(text)[1]:
        raise EdgeEdetError(f"source {text} does not exist (no such file or folder)")
    raise EdgeEdetError(f"source {redact(text)} is not a camera index, an existing /dev/video device, file, "
                        f"folder or glob, nor an rtsp/http/csi URI or GStreamer pipeline")


# -- readers: one frame at a time, on whatever thread calls them ------------------------------
def _opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


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

    def warn_undecodable(self) -> None:
        if self.undecodable:
            example = self.undecodable[0]
            print(f"edge-edet: warning: skipped {len(self.undecodable)} of {len(self.paths)} files in "
                  f"{self.spec.uri} that OpenCV cannot decode (e.g. {example})", file=sys.stderr)

    def close(self) -> None:
        self.warn_undecodable()


class _CaptureReader:
    """cv2.VideoCapture for cameras, files, streams and GStreamer pipelines.

    End of a file: replay it when looping.  A network stream that fails: reopen with exponential
    back-off, `reconnect` times.  A camera or pipeline that stops delivering: end of stream.
    """

    def __init__(self, spec: SourceSpec, loop: bool = False, reconnect: int = 5, backoff: float = 0.5):
        self.spec, self.loop, self.reconnect, self.backoff = spec, loop, int(reconnect), float(backoff)
        self.reconnects = 0
        self.ended_reason = ""
        self.cap = self._open()
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else 0.0

    def _attempts(self):
        """(description, open function) pairs tried in order."""
        spec = self.spec
        if spec.kind == "camera":
            attempts = []
            if sys.platform.startswith("linux"):
                attempts.append(("V4L2", lambda: cv2.VideoCapture(spec.target, cv2.CAP_V4L2)))
            attempts.append(("OpenCV's default backend", lambda: cv2.VideoCapture(spec.target, cv2.CAP_ANY)))
            return attempts
        if spec.kind == "gstreamer":
            return [("GStreamer", lambda: cv2.VideoCapture(spec.target, cv2.CAP_GSTREAMER))]
        if spec.kind == "stream":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
            return [(f"FFmpeg, {OPEN_TIMEOUT_MS // 1000} s timeout",
                     lambda: cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params))]
        return [("FFmpeg", lambda: cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG)),
                ("OpenCV's default backend", lambda: cv2.VideoCapture(spec.target, cv2.CAP_ANY))]

    def _open(self, quiet: bool = False):
        spec = self.spec
        if spec.kind == "gstreamer" and not _opencv_has_gstreamer():
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


def open_reader(spec: SourceSpec, loop: bool = False, reconnect: int = 5, backoff: float = 0.5):
    if spec.kind == "images":
        return _ImageReader(spec, loop=loop)
    return _CaptureReader(spec, loop=loop, reconnect=reconnect, backoff=backoff)


# -- the threaded source ----------------------------------------------------------------------
class Frame:
    """One captured frame; unpacks as (index, timestamp, image).

    index: position in the source (gaps are dropped frames).  timestamp: seconds since the source
    started - media time for video files (so detections line up with the clip), wall time since
    opening for live sources and folders.  captured_at / capture_s: perf_counter stamps for stats.
    """

    __slots__ = ("index", "timestamp", "image", "captured_at", "capture_s", "path")

    def __init__(self, index, timestamp, image, captured_at=0.0, capture_s=0.0, path=None):
        self.index, self.timestamp, self.image = index, timestamp, image
        self.captured_at, self.capture_s, self.path = captured_at, capture_s, path

    def __iter__(self):
        return iter((self.index, self.timestamp, self.image))


_END = object()


class _LatestSlot:
    """A one-frame mailbox: a new frame replaces an unread one (counted as dropped)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.item = None
        self.ended = False
        self.dropped = 0

    def put(self, item, stop=None, closed=None) -> None:
        with self.cond:
            if item is _END:
                self.ended = True
            else:
                if self.item is not None:
                    self.dropped += 1
                self.item = item
            self.cond.notify_all()

    def get(self, timeout=None):
        with self.cond:
            if not self.cond.wait_for(lambda: self.item is not None or self.ended, timeout=timeout):
                raise queue.Empty
            if self.item is not None:
                item, self.item = self.item, None
                return item
            return _END


class _FifoSlot:
    """Every frame, in order; the capture thread waits while the queue is full."""

    def __init__(self, size: int):
        self.queue = queue.Queue(maxsize=max(1, size))
        self.dropped = 0

    def put(self, item, stop=None, closed=None) -> None:
        while True:
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if closed is not None and closed.is_set():
                    return  # nobody will read again
                if stop is not None and stop.is_set() and item is not _END:
                    return  # stopping: no new frames, but the end marker must get through

    def get(self, timeout=None):
        return self.queue.get(timeout=timeout)


class FrameSource:
    """A reader on its own capture thread, started by the first get() / iteration."""

    def __init__(self, spec: SourceSpec, reader, drop: bool, queue_size: int = 4, max_frames: Optional[int] = None,
                 realtime: bool = False):
        self.spec, self.reader, self.drop = spec, reader, bool(drop)
        self.realtime = bool(realtime) and bool(getattr(reader, "fps", 0))
        self.live = spec.live
        self.fps = getattr(reader, "fps", 0.0)
        self.max_frames = max_frames
        self.frames_read = 0
        self.error: Optional[BaseException] = None
        self._slot = _LatestSlot() if self.drop else _FifoSlot(queue_size)
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._start_lock = threading.Lock()
        self._ended = False
        self.capture_times: List[float] = []

    # description --------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._slot.dropped

    @property
    def ended_reason(self) -> str:
        return getattr(self.reader, "ended_reason", "")

    def describe(self) -> dict:
        return {"source": self.spec.shown, "kind": self.spec.kind, "live": self.live, "drop": self.drop,
                "fps": round(self.fps, 3) if self.fps else None}

    # capture thread -----------------------------------------------------------------------
    def start(self) -> "FrameSource":
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._capture, name="capture", daemon=True)
                self._thread.start()
        return self

    def _capture(self) -> None:
        started = time.perf_counter()
        index = 0
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and index >= self.max_frames:
                    break
                if self.realtime:  # deliver a file at its own frame rate, as a camera would
                    wait = started + index / self.fps - time.perf_counter()
                    if wait > 0 and self._stop.wait(wait):
                        break
                t0 = time.perf_counter()
                image = self.reader.read(self._stop)
                t1 = time.perf_counter()
                if image is None:
                    break
                if self.spec.kind == "file" and self.fps:
                    timestamp = index / self.fps
                else:
                    timestamp = t1 - started
                frame = Frame(index, round(timestamp, 6), image, t1, t1 - t0, getattr(self.reader, "path", None))
                index += 1
                self.frames_read = index
                self._slot.put(frame, self._stop, self._closed)
        except BaseException as exc:  # surfaced to the consumer by get()
            self.error = exc
        finally:
            self._slot.put(_END, self._stop, self._closed)

    # consumer side ------------------------------------------------------------------------
    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """Next frame; None at the end of the stream; queue.Empty if none came within `timeout`."""
        if self._ended:
            return None
        self.start()
        item = self._slot.get(timeout=timeout)
        if item is _END:
            self._ended = True
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            return None
        return item

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    def stop(self) -> None:
        """Ask the capture thread to finish; frames already queued are still delivered."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=READ_TIMEOUT_MS / 1000 + 2)
        self.reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_source(uri, drop: Optional[bool] = None, loop: bool = False, reconnect: int = 5, backoff: float = 0.5,
                queue_size: int = 4, max_frames: Optional[int] = None, realtime: Optional[bool] = None) -> FrameSource:
    """Open a source now (so a bad one fails before anything starts); capture begins on first read.

    drop: None picks latest-frame for live sources and every-frame for files and folders.
    realtime: read a video file at its own frame rate; None means "when dropping", so `--drop` on
    a file behaves like a camera delivering that clip, instead of dropping at decoding speed.
    reconnect / backoff: network streams retry `reconnect` times, waiting backoff * 2**k seconds.
    """
    spec = parse_source(uri)
    if loop and spec.live:
        raise EdgeEdetError(f"--loop replays files and folders; {spec.shown} is a live source")
    reader = open_reader(spec, loop=loop, reconnect=reconnect, backoff=backoff)
    drop = spec.live if drop is None else drop
    if realtime is None:
        realtime = drop and spec.kind == "file"
    return FrameSource(spec, reader, drop, queue_size=queue_size, max_frames=max_frames,
                       realtime=realtime and spec.kind == "file")


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
