"""The streaming pipeline: capture, pre-process, infer, post-process and render overlap on threads.

    capture thread ─> pre thread ─> infer thread ─> post thread ─> [track thread] ─> caller's thread
      (source)        letterbox      engine          boxes back       IDs, line and     overlay, sinks:
                      into a pooled                  to frame         zone counts       window / video /
                      input buffer                   pixels           (--track)         JSON / MJPEG

Queues between stages are bounded and the letterbox buffers come from a small pool, so memory
is fixed and a slow stage holds back the ones before it; with a latest-frame source that is
where stale frames are dropped, so latency never builds up.  The engine only waits when the
stages around it are slower than it is.  The sinks run on the calling thread because GUI
toolkits (cv2.imshow) need the main thread.  stop() (Ctrl-C, SIGTERM, a window's 'q') ends
capture, lets frames in flight finish and closes every sink, so output files are complete.  After
an error the frames that got through are kept (a playable video, complete JSON lines); a sink
with no frame, or one whose own write failed, leaves an existing file at its path as it was.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .analytics.draw import draw_analytics
from .backends.base import BackendUnavailable
from .overlay import draw_detections
from .sources import FrameSource, open_source
from .stats import STAGES, PipelineStats

_END = object()
_SKIP = object()  # a stage gave its item up (a remote back-end was down): nothing goes on


def _owned(outputs: dict) -> dict:
    """Copies of outputs that may alias a back-end's reusable host buffers (plain arrays pass as they are)."""
    return {name: value if (isinstance(value, np.ndarray) and value.flags.owndata) else np.array(value)
            for name, value in outputs.items()}


class Pipeline:
    def __init__(self, detector, source: FrameSource, sinks: Sequence = (), overlay: bool = True,
                 queue_size: int = 2, warmup: int = 1, always_render: bool = False, analytics=None):
        self.detector = detector
        self.analytics = analytics  # analytics.StreamAnalytics: tracking + counting on a stage thread of its own
        self.source = source
        self.sinks = list(sinks)
        self.overlay = overlay
        self.render = always_render or any(getattr(s, "needs_image", True) for s in self.sinks)
        self.warmup = int(warmup)
        self.stats = PipelineStats(STAGES + ("track",) if analytics is not None else STAGES)
        self._to_infer: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_post: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_sink: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_track: queue.Queue = queue.Queue(maxsize=queue_size)
        self._pool: queue.Queue = queue.Queue()
        batch = detector.batch_size_for(1)
        # every frame: one being filled, queue_size waiting, one in the engine.  Latest frame: one
        # waiting and one in the engine, so a frame never waits for more than one inference.
        pool_size = 2 if source.drop else queue_size + 2
        for _ in range(pool_size):  # the back-end's own input buffers: letterbox writes where infer reads
            self._pool.put(detector.allocate_input(batch))
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._errors: List[BaseException] = []
        self._threads: List[threading.Thread] = []
        self.skipped = 0  # frames given up while a remote back-end was unreachable
        self._stale_before = 0.0  # latest-frame sources: frames captured before this are not sent
        self.stop_reason = ""

    # -- control ----------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self, reason: str = "") -> None:
        """Graceful: capture ends, frames in flight reach the sinks, then run() returns."""
        if reason and not self.stop_reason:
            self.stop_reason = reason
        self._stopping.set()
        self.source.stop()

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._abort.set()
        self.source.stop()

    def _put(self, q: queue.Queue, item) -> bool:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue):
        while not self._abort.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    # -- stage threads ----------------------------------------------------------------------
    def _next_frame(self):
        while not self._abort.is_set():
            try:
                return self.source.get(timeout=0.1)
            except queue.Empty:
                if self._stopping.is_set():
                    return None  # a source blocked in a read must not hold up a stop
        return None

    def _take_frame(self):
        """The pre stage's input: a free input buffer first, then the newest frame (as fresh as can be)."""
        buffer = self._get(self._pool)
        if buffer is _END:
            return _END
        frame = self._next_frame()
        if frame is None:
            self._pool.put(buffer)
            return _END
        return frame, buffer

    def _pre(self, item):
        frame, buffer = item
        batch, scales = self.detector.preprocess([frame.image], out=buffer)  # letterbox into the engine's buffer
        return frame, batch, scales

    def _infer(self, item):
        frame, batch, scales = item
        stale = self.source.drop and frame.captured_at < self._stale_before
        outputs = None if stale else self._infer_retrying(batch)
        self._pool.put(batch)
        if outputs is None:
            self.skipped += 1
            return _SKIP
        self.stats.images_inferred += 1
        return frame, _owned(outputs), scales

    def _infer_retrying(self, batch):
        """A remote back-end that is down raises BackendUnavailable: wait its back-off, then retry
        the same frame (every-frame sources) or give it up for a fresh one (latest-frame: frames
        captured before the wait ended are stale).  None: the frame is given up."""
        while True:
            try:
                return self.detector.infer(batch)
            except BackendUnavailable as exc:
                if self._stopping.is_set():
                    return None
                self._abort.wait(exc.retry_in)
                if self._abort.is_set():
                    return None
                if self.source.drop:
                    self._stale_before = time.perf_counter()
                    return None

    def _post(self, item):
        frame, outputs, scales = item
        return frame, self.detector.postprocess(outputs, scales, [frame.image.shape])[0]

    def _track(self, item):
        """Tracking and counting, in frame order; the sinks get a copy of this frame's IDs, trails and counts."""
        frame, detections = item
        height, width = frame.image.shape[:2]
        detections.analytics = self.analytics.frame(detections.boxes, detections.scores, detections.class_ids,
                                                    detections.labels, frame.index, frame.timestamp,
                                                    frame_size=(width, height))
        return frame, detections

    def _stage(self, name: str, take, work, outbox: queue.Queue) -> None:
        """One stage thread: take an item, work on it (timed as `name`), pass the result on; the end
        marker passes through, and an error stops every stage."""
        try:
            while True:
                item = take()
                if item is _END:
                    self._put(outbox, _END)
                    return
                t0 = time.perf_counter()
                result = work(item)
                if result is _SKIP:
                    continue
                self.stats.add(name, time.perf_counter() - t0)
                if not self._put(outbox, result):
                    return
        except BaseException as exc:
            self._fail(exc)

    # -- the caller's thread ----------------------------------------------------------------
    def _deliver(self, frame, detections) -> None:
        t0 = time.perf_counter()
        image = frame.image
        if self.render and image.shape[2] == 4:  # a BGRx source: the sinks draw and encode BGR
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if self.render and self.overlay:
            if detections.analytics is not None:
                draw_analytics(image, detections.analytics)
            image = draw_detections(image, detections, self.stats.live_fps())
        for sink in self.sinks:
            sink.write(frame, detections, image if self.render else None)
            if sink.stop_requested and not self._stopping.is_set():
                self.stop("stopped from the window")
        self.stats.add("render", time.perf_counter() - t0)
        self.stats.add("capture", frame.capture_s)
        self.stats.frame_done(frame.captured_at)

    def _warm_up(self) -> None:
        if self.warmup <= 0:
            return
        buffer = self._pool.get()
        try:
            for _ in range(self.warmup):
                self.detector.infer(buffer)
        finally:
            self._pool.put(buffer)

    def run(self) -> dict:
        """Stream until the source ends or stop() is called; returns the summary (see stats.py)."""
        try:
            self._warm_up()
            self.stats.start()
            tracking = self.analytics is not None
            stages = (("pre", self._take_frame, self._pre, self._to_infer),
                      ("infer", lambda: self._get(self._to_infer), self._infer, self._to_post),
                      ("post", lambda: self._get(self._to_post), self._post,
                       self._to_track if tracking else self._to_sink))
            if tracking:
                stages += (("track", lambda: self._get(self._to_track), self._track, self._to_sink),)
            for name, take, work, outbox in stages:
                thread = threading.Thread(target=self._stage, args=(name, take, work, outbox), name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            while True:
                try:
                    item = self._get(self._to_sink)
                    if item is _END:
                        break
                    self._deliver(*item)
                except KeyboardInterrupt:
                    if self._stopping.is_set():  # a second Ctrl-C: stop now
                        self._abort.set()
                        raise
                    self.stop("interrupted")
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                self._errors.append(exc)
            self._abort.set()
            raise
        finally:
            self._finish()
        if self._errors:
            raise self._errors[0]
        return self.summary()

    def _finish(self) -> None:
        self.source.stop()
        if self._errors:
            self._abort.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._abort.set()  # anything still waiting on a queue lets go
        failures = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails
                failures.append(exc)
        self.source.close()
        if failures and not self._errors:
            self._errors.append(failures[0])

    def summary(self) -> dict:
        extra = {"model": self.detector.info.model, "input_size": list(self.detector.input_size),
                 "source": self.source.describe()}
        describe = getattr(getattr(self.detector, "backend", None), "describe", None)
        if describe:
            extra["backend"] = describe()
        if self.analytics is not None:
            extra["counts"] = self.analytics.counts()
        reason = self.stop_reason or self.source.ended_reason
        if reason:
            extra["ended"] = reason
        return self.stats.summary(dropped=self.source.dropped + self.skipped, extra=extra)


def benchmark_source(detector, source_uri, drop: bool = False, loop: bool = False, max_frames: Optional[int] = None,
                     overlay: bool = True, sinks: Sequence = (), warmup: int = 1, queue_size: int = 2,
                     **source_options) -> dict:
    """Stream `source_uri` through `detector` with no window and return the summary dict.

    Keys: frames, dropped, elapsed_s, end_to_end_fps, engine_fps, end_to_end_vs_engine,
    stages {capture, pre, infer, post, render: {count, mean_ms, p50_ms, p99_ms}}, latency, and
    what was measured: model, input_size, source {source, kind, live, drop, fps}, backend {...}.  Every frame by default (drop=False); overlay
    drawing is included, as in a real run.
    """
    source = open_source(source_uri, drop=drop, loop=loop, max_frames=max_frames, **source_options)
    pipeline = Pipeline(detector, source, sinks=sinks, overlay=overlay, warmup=warmup, queue_size=queue_size,
                        always_render=overlay)
    return pipeline.run()
