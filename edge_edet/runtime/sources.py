"""Video sources for the live runtime: a frame reader on its own capture thread.

    with open_source("rtsp://cam/stream") as source:      # or 0, /dev/video1, clip.mp4, csi://0,
        for index, timestamp, frame in source:             # 'v4l2src ! ... ! appsink', images/, '*.jpg'
            ...

Live sources (cameras, streams, GStreamer pipelines) default to latest-frame: the capture thread
keeps only the newest frame, so a slow consumer never builds up latency, and each replaced frame
counts as dropped.  Files and folders default to every frame (the capture thread waits for the
consumer).  `drop=` overrides either way.  URI parsing lives in contract/source_uri.py and the
readers (reconnect, loop) in contract/frames.py; this module only delivers their frames.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterator, List, Optional

from ..contract.decode import DecodePlan, plan_decode
from ..contract.errors import EdgeEdetError
from ..contract.frames import READ_TIMEOUT_MS, open_reader
from ..contract.source_uri import SourceSpec, parse_source


class Frame:
    """One captured frame; unpacks as (index, timestamp, image).

    index: position in the source (gaps are dropped frames).  timestamp: seconds since the source
    started - media time for video files (so detections line up with the clip), wall time since
    opening for live sources and folders.  captured_at / capture_s: perf_counter stamps for stats.
    source / source_name: which source of a run it came from (its position among the run's
    sources, 0 for the first) and that source as shown to the user (passwords masked).
    """

    __slots__ = ("index", "timestamp", "image", "captured_at", "capture_s", "path", "source", "source_name")

    def __init__(self, index, timestamp, image, captured_at=0.0, capture_s=0.0, path=None, source=0,
                 source_name=""):
        self.index, self.timestamp, self.image = index, timestamp, image
        self.captured_at, self.capture_s, self.path = captured_at, capture_s, path
        self.source, self.source_name = source, source_name

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
    """A reader on its own capture thread, started by the first get() / iteration.

    `index` is the source's position in a run of several (the pipeline numbers them); `on_frame`,
    when set, is called from the capture thread after each frame (and the end) is delivered, so
    one consumer can wait on many sources at once (runtime/batcher.py)."""

    def __init__(self, spec: SourceSpec, reader, drop: bool, queue_size: int = 4, max_frames: Optional[int] = None,
                 realtime: bool = False, decode: Optional[DecodePlan] = None):
        self.spec, self.reader, self.drop = spec, reader, bool(drop)
        self.decode = decode  # what decodes it (contract/decode.py): a GStreamer pipeline or OpenCV's FFmpeg
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
        self.index = 0
        self.on_frame: Optional[Callable[[], None]] = None

    # description --------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._slot.dropped

    @property
    def ended_reason(self) -> str:
        return getattr(self.reader, "ended_reason", "")

    @property
    def frame_size(self) -> Optional[tuple]:
        """(width, height) known before the first frame, or None (then the first frame tells)."""
        probe = getattr(self.reader, "frame_size", None)
        return probe() if probe is not None else None

    def describe(self) -> dict:
        """paced: frames arrive at the source's own rate (a camera or stream, or a file read in real
        time with --drop), so the run cannot go faster than `fps` whatever the engine does."""
        described = {"source": self.spec.shown, "kind": self.spec.kind, "live": self.live, "drop": self.drop,
                     "fps": round(self.fps, 3) if self.fps else None, "paced": bool(self.live or self.realtime)}
        if self.decode is not None and self.spec.kind in ("file", "stream", "gstreamer"):
            described["decode"] = self.decode.describe()
        return described

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
                frame = Frame(index, round(timestamp, 6), image, t1, t1 - t0, getattr(self.reader, "path", None),
                              self.index, self.spec.shown)
                index += 1
                self.frames_read = index
                self._slot.put(frame, self._stop, self._closed)
                self._notify()
        except BaseException as exc:  # surfaced to the consumer by get()
            self.error = exc
        finally:
            self._slot.put(_END, self._stop, self._closed)
            self._notify()

    def _notify(self) -> None:
        if self.on_frame is not None:
            self.on_frame()

    # consumer side ------------------------------------------------------------------------
    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """Next frame; None at the end of the stream; queue.Empty if none came within `timeout`
        (0: only a frame that is already waiting)."""
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
                queue_size: int = 4, max_frames: Optional[int] = None, realtime: Optional[bool] = None,
                decode: str = "cpu", pixel_format: str = "BGR") -> FrameSource:
    """Open a source now (so a bad one fails before anything starts); capture begins on first read.

    drop: None picks latest-frame for live sources and every-frame for files and folders.
    realtime: read a video file at its own frame rate; None means "when dropping", so `--drop` on
    a file behaves like a camera delivering that clip, instead of dropping at decoding speed.
    reconnect / backoff: network streams retry `reconnect` times, waiting backoff * 2**k seconds.
    decode: 'auto' | 'cpu' | 'nvdec' for video files and rtsp:// (contract/decode.py); the plan is
    `source.decode`.  pixel_format: 'BGRx' lets a GStreamer pipeline skip its CPU BGRx -> BGR
    conversion (frames are then HxWx4: the letterbox reads them as they are); FFmpeg gives BGR.
    """
    spec = parse_source(uri)
    if loop and spec.live:
        raise EdgeEdetError(f"--loop replays files and folders; {spec.shown} is a live source")
    plan = plan_decode(spec, decode, pixel_format=pixel_format)
    reader = open_reader(spec, loop=loop, reconnect=reconnect, backoff=backoff, pipeline=plan.pipeline)
    drop = spec.live if drop is None else drop
    if realtime is None:
        realtime = drop and spec.kind == "file"
    return FrameSource(spec, reader, drop, queue_size=queue_size, max_frames=max_frames,
                       realtime=realtime and spec.kind == "file", decode=plan)
