"""Where a stream's results go: a window, a video file, a JSON-lines file, an MJPEG preview, a
folder of annotated images.

Every sink checks what it can at construction (a folder that is missing or unwritable, a video
extension OpenCV cannot write, a busy port), so a mistake fails before the stream starts.  Files
are written under a temporary name in the same folder and renamed into place by close() (end of
stream, Ctrl-C, SIGTERM, an error elsewhere) only when they hold at least one frame and were written
without error; otherwise the partial is removed and an existing file at the
path stays as it was.  A write that fails (full disk, I/O error) raises one sentence naming the
file and the cause.  OpenCV's video writer reports nothing, so the video is checked by reading it
back at close().  JSON lines may also go to `-` (standard output) or a FIFO, line by line.
"""
from __future__ import annotations

import errno
import io
import json
import os
import select
import sys
import time
from typing import Optional, Sequence

import cv2
import numpy as np

from ..contract.errors import EdgeEdetError
from ..contract.fileio import (STREAM, check_output_file, describe_os_error, is_stream_target, partial_name,
                               replace_finished, same_file, write_bytes_atomic)
from .detections import Detections
from ..contract.letterbox import letterbox
from .mjpeg import MjpegServer
from .mosaic import Mosaic

SPACE_CHECK_EVERY = 30  # frames between free-space checks of a video's disk
LOW_SPACE_BYTES = 1 << 20  # below this the video is finished at once (its index needs room too)
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
# frame sides each codec can hold (MPEG-4 part 2: 2..8191, measured with OpenCV's FFmpeg writer)
VIDEO_SIDES = {"mp4v": (2, 8191), "XVID": (2, 8191), "MJPG": (1, 65500)}
STREAM_GRACE_S = 2.0  # after a stop, how long a stalled reader of a JSON-lines stream is waited for


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class Sink:
    """write(frame, detections, image) per frame, close() once.  `image` is the rendered frame."""

    needs_image = True
    stop_requested = False  # a window's 'q' asks the pipeline to stop

    def write(self, frame, detections: Detections, image: Optional[np.ndarray]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def discard(self) -> None:
        """Give up (before the stream started, or after this sink failed): release everything, leave no
        partial file."""
        self.close()

    def stop_soon(self) -> None:
        """The stream is stopping (Ctrl-C, SIGTERM): a sink that may block on a reader stops waiting soon."""


class VideoFileSink(Sink):
    """A video file at the first frame's size (later frames of another size are letterboxed into it)."""

    def __init__(self, path: str, fps: float = 30.0):
        self.path = check_output_file(path, "--output")
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in VIDEO_CODECS:
            raise EdgeEdetError(f"--output {path}: cannot write '{ext or 'no extension'}' videos; "
                                f"use one of {', '.join(VIDEO_CODECS)}")
        self.fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[ext])
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.tmp = partial_name(self.path)
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

    def _check_size(self, width: int, height: int) -> None:
        """One sentence when the codec cannot hold frames of this size (OpenCV would only refuse to open)."""
        codec = VIDEO_CODECS[os.path.splitext(self.path)[1].lower()]
        low, high = VIDEO_SIDES.get(codec, (1, 65500))
        if not (low <= width <= high and low <= height <= high):
            fits = [ext for ext, other in VIDEO_CODECS.items()
                    if VIDEO_SIDES[other][0] <= min(width, height) and max(width, height) <= VIDEO_SIDES[other][1]]
            hint = f"; use {fits[0]} ({VIDEO_CODECS[fits[0]]}) for this source" if fits else ""
            raise EdgeEdetError(f"--output {self.path}: {codec} video cannot hold {width}x{height} frames (each side "
                                f"must be {low} to {high} pixels){hint}; no video was written")

    def write(self, frame, detections, image):
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            self._check_size(*self.size)
            self.writer = cv2.VideoWriter(self.tmp, self.fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                self.writer = None
                _remove(self.tmp)
                raise EdgeEdetError(f"--output {self.path}: OpenCV could not start a {self.size[0]}x{self.size[1]} "
                                    f"video at {self.fps:g} FPS in {os.path.dirname(self.path)}; no video was "
                                    f"written")
        if (image.shape[1], image.shape[0]) != self.size:
            image, _ = letterbox(image, (self.size[1], self.size[0]), (0, 0, 0))
        self.writer.write(image)
        self.frames += 1
        if self.frames % SPACE_CHECK_EVERY == 0:
            self._stop_if_disk_full()

    def _stop_if_disk_full(self) -> None:
        """OpenCV's writer only logs a failed write; a disk about to fill is seen here instead, and the
        video is finished while there is still room for its index, so the frames so far stay playable."""
        try:
            stats = os.statvfs(os.path.dirname(self.tmp))
        except OSError:
            return
        free = stats.f_bavail * stats.f_frsize
        if free >= LOW_SPACE_BYTES:
            return
        self.writer.release()
        self.writer = None
        if self._readable_frames() > 0:
            replace_finished(self.tmp, self.path, "--output")
            kept = f"the {self.frames} frames written so far are kept, playable, in {self.path}"
        else:
            _remove(self.tmp)
            kept = f"the partial file was removed and {self.path} left as it was"
        raise EdgeEdetError(f"--output {self.path}: the disk is full ({free // 1024} KiB left), so the video "
                            f"stopped after {self.frames} frames; {kept}")

    def discard(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        _remove(self.tmp)

    def _readable_frames(self) -> int:
        """Frames OpenCV can read back from the finished temporary file (0: unplayable, e.g. disk full)."""
        if not os.path.isfile(self.tmp) or os.path.getsize(self.tmp) == 0:
            return 0
        reader = cv2.VideoCapture(self.tmp)
        try:
            if not reader.isOpened():
                return 0
            ok, _ = reader.read()
            return int(reader.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
        finally:
            reader.release()

    def close(self):
        if self.writer is not None:
            self.writer.release()
            self.writer = None
            readable = self._readable_frames()
            if readable <= 0:
                _remove(self.tmp)
                raise EdgeEdetError(f"--output {self.path}: writing the video failed after {self.frames} frames "
                                    f"(the file does not read back: is the disk full?); the partial file was "
                                    f"removed and {self.path} left as it was")
            replace_finished(self.tmp, self.path, "--output")
        elif self.frames == 0:
            print(f"edge-edet: warning: no frames reached --output, so {self.path} was not written", file=sys.stderr)


class _LineStream:
    """JSON lines to standard output or a FIFO, by file descriptor: each line waits for the reader
    (a slow reader slows the stream, as a pipe should), except once the stream is stopping, when a
    reader that stopped reading is waited for STREAM_GRACE_S and then given up, so one Ctrl-C or
    SIGTERM always ends the run.  Writes of at most PIPE_BUF after select() never block a pipe."""

    CHUNK = select.PIPE_BUF if hasattr(select, "PIPE_BUF") else 512

    def __init__(self, fd: int, owned: bool):
        self.fd, self.owned = fd, owned
        self.give_up_at: Optional[float] = None
        self.stalled = False  # the reader stopped reading after a stop: later lines are dropped

    def write(self, data: bytes) -> bool:
        """False when the line was dropped (a stopped stream whose reader does not read)."""
        view = memoryview(data)
        while view:
            if self.stalled:
                return False
            _, ready, _ = select.select([], [self.fd], [], 0.2)
            if ready:
                written = os.write(self.fd, view[:self.CHUNK])
                view = view[written:]
            elif self.give_up_at is not None and time.monotonic() >= self.give_up_at:
                self.stalled = True
        return True

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class _TextStream:
    """Standard output that has no file descriptor (replaced in-process): plain text writes."""

    give_up_at = None

    def __init__(self, handle):
        self.handle = handle

    def write(self, data: bytes) -> bool:
        self.handle.write(data.decode("utf-8"))
        self.handle.flush()
        return True

    def close(self) -> None:
        pass


def _open_stream(path: str, flag: str) -> _LineStream:
    """`-` (standard output, already checked to be open) or a FIFO, which waits for a reader: saying so."""
    if path == STREAM:
        sys.stdout.flush()
        try:
            return _LineStream(sys.stdout.fileno(), owned=False)
        except io.UnsupportedOperation:  # an in-process text stream (a test's capture)
            return _TextStream(sys.stdout)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # ENXIO: nobody has the FIFO open for reading yet
            raise
        print(f"edge-edet: waiting for a reader to open the FIFO {path} (e.g. `cat {path}`); Ctrl-C stops",
              file=sys.stderr, flush=True)
        fd = os.open(path, os.O_WRONLY)
    else:
        os.set_blocking(fd, True)
    return _LineStream(fd, owned=True)


class JsonLinesSink(Sink):
    """One JSON object per frame: frame index, timestamp, size, the source (its number in the run
    and its name, so several sources can share one file) and detections in frame pixels; with
    tracking, a track_id per detection and that source's cumulative counts."""

    needs_image = False

    def __init__(self, path: str, flag: str = "--json"):
        self.flag = flag
        self.path = check_output_file(path, flag, stream_ok=True)
        self.stream = is_stream_target(self.path)  # `-` or a FIFO: line by line, nothing to rename
        self.tmp = None if self.stream else partial_name(self.path)
        self.handle = None
        self.lines: Optional[_LineStream] = None
        self.dropped = 0  # stream lines a reader that stopped reading never got
        try:
            if self.stream:
                self.lines = _open_stream(self.path, flag)
            else:
                self.handle = open(self.tmp, "w", encoding="utf-8")
        except OSError as exc:
            raise EdgeEdetError(f"{flag} {path}: cannot open it for writing ({describe_os_error(exc)})") from None
        self.frames = 0

    def stop_soon(self) -> None:
        if self.lines is not None and self.lines.give_up_at is None:
            self.lines.give_up_at = time.monotonic() + STREAM_GRACE_S

    def write(self, frame, detections, image):
        record = {"frame": int(frame.index), "timestamp": float(frame.timestamp),
                  "width": int(frame.image.shape[1]), "height": int(frame.image.shape[0]),
                  "source": int(frame.source), "source_name": frame.source_name}
        if getattr(frame, "path", None):
            record["file"] = frame.path
        record["detections"] = detections.to_records()
        if detections.analytics is not None:
            record["counts"] = detections.analytics.counts  # cumulative, as of this frame
        line = json.dumps(record) + "\n"
        try:
            if self.lines is not None:
                if not self.lines.write(line.encode("utf-8")):
                    self.dropped += 1
                    return
            else:
                self.handle.write(line)
        except OSError as exc:
            self.discard()
            where = "" if self.stream else f"; the partial file was removed and {self.path} left as it was"
            raise EdgeEdetError(f"{self.flag} {self.path}: writing failed after {self.frames} frames "
                                f"({describe_os_error(exc)}){where}") from None
        self.frames += 1

    def _close_handle(self) -> Optional[OSError]:
        handle, self.handle = self.handle, None
        lines, self.lines = self.lines, None
        try:
            if lines is not None:
                lines.close()
            if handle is not None:
                handle.close()  # flushes: a full disk may only show here
        except OSError as exc:
            return exc
        return None

    def close(self):
        if self.handle is None and self.lines is None:
            return
        error = self._close_handle()
        if self.stream:
            if self.dropped:
                print(f"edge-edet: warning: the reader of {self.flag} {self.path} stopped reading, so the last "
                      f"{self.dropped} lines were not delivered", file=sys.stderr, flush=True)
            return
        if error is not None:
            _remove(self.tmp)
            raise EdgeEdetError(f"{self.flag} {self.path}: writing failed after {self.frames} frames "
                                f"({describe_os_error(error)}); the partial file was removed and {self.path} "
                                f"left as it was")
        if self.frames == 0:  # a run that gave nothing must not empty an existing file
            _remove(self.tmp)
            print(f"edge-edet: warning: no frames reached {self.flag}, so {self.path} was not written",
                  file=sys.stderr)
            return
        replace_finished(self.tmp, self.path, self.flag)

    def discard(self):
        self._close_handle()
        if self.tmp:
            _remove(self.tmp)


IMAGE_WRITE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def is_folder_output(uri: str) -> bool:
    """`DIR/` (a trailing separator: created if missing) or an existing folder."""
    text = str(uri)
    return text.endswith(("/", os.sep)) or os.path.isdir(text)


def _source_images(inputs) -> list:
    """The image files an image source (folder, glob, single image) reads, for the overwrite check."""
    from ..contract.source_uri import parse_source

    images = []
    for flag, value in inputs:
        if flag == "--source" and value:
            try:
                spec = parse_source(value)
            except EdgeEdetError:
                continue  # opening the source says what is wrong with it
            if spec.kind == "images":
                images.extend(spec.target)
    return images


class ImageFolderSink(Sink):
    """One annotated image per frame in a folder (`--output DIR/`, as Ultralytics and detectnet
    save): an image source's own file names (a name met twice gets the frame index added), other
    sources frame_000123.jpg.  Each image is written whole (temporary file, then rename); a folder
    holding the source's images is refused, so no input is ever replaced; a folder this run created
    and wrote nothing into is removed again."""

    def __init__(self, path: str, inputs=(), flag: str = "--output"):
        self.flag, self.shown = flag, path
        self.folder = os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise EdgeEdetError(f"{flag} {path} is a file; give a folder (a name ending in '/') for the images")
        parent = os.path.dirname(self.folder)
        if not os.path.isdir(self.folder) and not os.path.isdir(parent):
            raise EdgeEdetError(f"{flag} {path}: folder {parent} does not exist")
        for image in _source_images(inputs):
            if same_file(os.path.dirname(os.path.abspath(image)), self.folder):
                raise EdgeEdetError(f"{flag} {path} holds the source's images: the annotated images, which keep "
                                    f"their names, would replace them; give another folder")
        self.created = not os.path.isdir(self.folder)
        if self.created:
            try:
                os.mkdir(self.folder)
            except OSError as exc:
                raise EdgeEdetError(f"{flag} {path}: cannot create the folder ({describe_os_error(exc)})") from None
        try:
            check_output_file(os.path.join(self.folder, "frame.jpg"), flag)  # writable? (a probe file)
        except EdgeEdetError:
            self._remove_if_created()
            raise
        self.names = set()
        self.frames = 0

    def _name(self, frame) -> str:
        path = getattr(frame, "path", None)
        name = os.path.basename(path) if path else f"frame_{int(frame.index):06d}.jpg"
        stem, ext = os.path.splitext(name)
        if ext.lower() not in IMAGE_WRITE_EXTENSIONS:
            ext = ".jpg"
        name = stem + ext
        if name in self.names:
            name = f"{stem}_{int(frame.index):06d}{ext}"
        return name

    def write(self, frame, detections, image):
        name = self._name(frame)
        target = os.path.join(self.folder, name)
        source = getattr(frame, "path", None)
        if source and os.path.exists(target) and same_file(source, target):  # never over an input
            raise EdgeEdetError(f"{self.flag} {self.shown}: {target} is an input image; give another folder")
        ok, data = cv2.imencode(os.path.splitext(name)[1], image)
        if not ok:
            raise EdgeEdetError(f"{self.flag} {self.shown}: OpenCV could not encode {name}")
        try:
            write_bytes_atomic(target, data)
        except EdgeEdetError as exc:
            raise EdgeEdetError(f"{self.flag} {self.shown}: {exc}; the {self.frames} images written before it "
                                f"are kept") from None
        self.names.add(name)
        self.frames += 1

    def _remove_if_created(self) -> None:
        if self.created:
            try:
                os.rmdir(self.folder)  # only when empty
            except OSError:
                pass

    def close(self):
        if self.frames == 0:
            self._remove_if_created()
            print(f"edge-edet: warning: no frames reached {self.flag}, so no image was written to {self.shown}",
                  file=sys.stderr)

    def discard(self):
        if self.frames == 0:
            self._remove_if_created()


def display_available() -> bool:
    """True when a window can be shown: a display is set and this OpenCV has a GUI back-end."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return "NONE" not in line.split(":", 1)[1].upper()
    return True


class WindowSink(Sink):
    """cv2.imshow on the calling (main) thread; 'q' or Esc stops the stream.  Several sources
    (`sources`: their names) share the window as tiles (mosaic.py)."""

    def __init__(self, title: str = "edge-edet", sources: Sequence[str] = ("",)):
        self.title = title
        self.mosaic = Mosaic(sources)
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise EdgeEdetError("this OpenCV cannot open a window; run with --headless "
                                "(and --serve or --output to see the results)") from None

    def write(self, frame, detections, image):
        self.mosaic.put(frame.source, image)
        cv2.imshow(self.title, self.mosaic.image)
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
    """Publishes each rendered frame to an MjpegServer (bound at construction), under its source
    (`sources`: the names of the run's sources)."""

    def __init__(self, host: str, port: int, quality: int = 80, sources: Sequence[str] = ("",)):
        self.server = MjpegServer(host, port, quality=quality, sources=sources)

    @property
    def url(self) -> str:
        return self.server.url

    def write(self, frame, detections, image):
        view = detections.analytics
        self.server.publish(image, view.counts if view is not None else None, frame.source)

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
    scheme = lower.split("://", 1)[0] if "://" in lower else ""
    if scheme:
        raise EdgeEdetError(f"--output {uri}: {scheme}:// is not an output edge-edet writes; give a file (video or "
                            f".jsonl), http://HOST:PORT (MJPEG preview) or display://0")
    if text == STREAM:
        return "jsonl"
    if is_folder_output(text):
        return "images"
    ext = os.path.splitext(lower)[1]
    if ext in JSON_LINES_EXTENSIONS:
        return "jsonl"
    if ext in VIDEO_CODECS:
        return "video"
    raise EdgeEdetError(f"--output {uri}: not a video file ({', '.join(VIDEO_CODECS)}), a JSON-lines file "
                        f"({', '.join(JSON_LINES_EXTENSIONS)}), a folder for images (DIR/), http://HOST:PORT "
                        f"(MJPEG preview) or display://0")


def open_sink(uri: str, kind: str = None, title: str = "edge-edet", flag: str = None,
              sources: Sequence[str] = ("",), inputs=()) -> Sink:
    """The sink an output URI names, checked now (folder, codec, port) so a mistake costs no model load.

    video file -> VideoFileSink (its fps is set from the source before the first frame),
    .jsonl -> JsonLinesSink, DIR/ -> ImageFolderSink, http://HOST:PORT -> MjpegSink, display://N -> WindowSink.
    `kind` forces the type (the `--json FILE` alias writes JSON lines whatever the extension);
    `sources` names the sources a preview or a window shows (one stream each, and tiled);
    `inputs` ((flag, path) pairs of the run) keep an image folder off the sources' images.
    """
    kind = kind or sink_kind(uri)
    if kind == "video":
        return VideoFileSink(uri)
    if kind == "images":
        return ImageFolderSink(uri, inputs, flag or "--output")
    if kind == "jsonl":
        return JsonLinesSink(uri, flag or "--output")
    if kind == "mjpeg":
        from .mjpeg import parse_serve

        address = str(uri)[len("http://"):].rstrip("/")
        return MjpegSink(*parse_serve(address), sources=sources)
    if kind == "window":
        return WindowSink(title, sources=sources)
    raise EdgeEdetError(f"unknown output kind {kind}")
