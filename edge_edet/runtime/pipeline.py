"""The streaming pipeline: capture, batch, pre-process, infer, post-process and render overlap on threads.

    capture threads ─> pre thread ───────> infer thread ─> wait thread ─> post thread ─> [track] ─> caller's thread
     (one a source)    batch (batcher.py),  submit to the    outputs of     boxes back     IDs, line   overlay, sinks:
                       letterbox into a     engine (one      the oldest     to frame       and zone    window / video /
                       pooled input buffer  call per batch)  batch          pixels         counts      JSON / MJPEG

Frames from several sources go through one model: the batcher takes the sources that have a new
frame, up to the model's batch, and the engine runs them in one call; everything after it is
kept per source (lanes.py: analytics, the source's own outputs, its FPS).  One source is the same
path with batches of one.  Queues between stages are bounded and the letterbox buffers come from
a small pool, so memory is fixed and a slow stage holds back the ones before it; with
latest-frame sources that is where stale frames are dropped, so latency never builds up.  The
engine only waits when the stages around it are slower than it is.  The sinks run on the calling
thread because GUI toolkits (cv2.imshow) need the main thread.  stop() (Ctrl-C, SIGTERM, a
window's 'q') ends capture, lets frames in flight finish and closes every sink, so output files
are complete.  After an error the frames that got through are kept (a playable video, complete
JSON lines); a sink with no frame, or one whose own write failed, leaves an existing file at its
path as it was (the frame it failed on still reaches the other sinks).  A JSON-lines stream whose
reader stopped reading holds a stop for a moment only (sinks.STREAM_GRACE_S).

A back-end with asynchronous requests (OpenVINO) takes up to `in_flight` batches at once: the infer
thread submits the next one while the engine still runs the last, and the wait thread collects
them in order; for the others submit runs the whole inference and the wait is immediate.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, List, Optional, Sequence

import cv2
import numpy as np

from .backends.base import BackendUnavailable, Pending
from .batcher import FrameBatcher
from .lanes import SourceLane
from .overlay import draw_overlay
from .sources import FrameSource, open_source
from .stats import STAGES, PipelineStats

_END = object()
_SKIP = object()  # a stage gave its item up (a remote back-end was down): nothing goes on


def _owned(outputs: dict) -> dict:
    """Copies of outputs that may alias a back-end's reusable host buffers (plain arrays pass as they are)."""
    return {name: value if (isinstance(value, np.ndarray) and value.flags.owndata) else np.array(value)
            for name, value in outputs.items()}


def _per_source(value, count: int, what: str) -> list:
    """One entry per source: a list as given, or a single value (None included) for a single source."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise ValueError(f"{what}: {len(value)} given for {count} sources")
        return list(value)
    if value is not None and count != 1:
        raise ValueError(f"{what}: give a list with one entry per source ({count} sources)")
    return [value] * count


class Pipeline:
    def __init__(self, detector, sources, sinks: Sequence = (), overlay: bool = True,
                 queue_size: int = 2, warmup: int = 1, always_render: bool = False, analytics=None,
                 source_sinks: Optional[Sequence[Sequence]] = None, log: Optional[Callable[[str], None]] = None):
        """sources: a FrameSource, or a list whose frames are batched into one inference (numbered
        0, 1, ... in order); sinks: outputs that get every source's frames (Frame.source says
        whose); analytics: a StreamAnalytics per source (one for one source) or None;
        source_sinks: each source's own outputs, a list per source; log: told when one of several
        sources is lost (or fails) while others run on."""
        sources = [sources] if isinstance(sources, FrameSource) else list(sources)
        if not sources:
            raise ValueError("a pipeline needs at least one source")
        self.detector = detector
        self.sources = sources
        self.lanes = [SourceLane(k, source, lane_analytics, lane_sinks or ())
                      for k, (source, lane_analytics, lane_sinks) in
                      enumerate(zip(sources, _per_source(analytics, len(sources), "analytics"),
                                    _per_source(source_sinks, len(sources), "source_sinks")))]
        for lane in self.lanes:
            lane.source.index = lane.index
        self.sinks = list(sinks)
        self.tracking = any(lane.analytics is not None for lane in self.lanes)
        self.overlay = overlay
        self._every_sink = self.sinks + [sink for lane in self.lanes for sink in lane.sinks]  # shared, then own
        self.render = always_render or any(getattr(s, "needs_image", True) for s in self._every_sink)
        self.warmup = int(warmup)
        self.stats = PipelineStats(STAGES + ("track",) if self.tracking else STAGES)
        self._to_infer: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_post: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_sink: queue.Queue = queue.Queue(maxsize=queue_size)
        self._to_track: queue.Queue = queue.Queue(maxsize=queue_size)
        self._pool: queue.Queue = queue.Queue()
        in_flight = max(1, int(getattr(getattr(detector, "backend", None), "in_flight", 1)))
        self._submitted: queue.Queue = queue.Queue(maxsize=in_flight)
        self._engine_free_at = 0.0  # when the engine finished its last batch (see _collect)
        batch = detector.batch_size_for(len(sources))  # the input buffer: frames of one engine call
        self.log = log
        self.batcher = FrameBatcher(sources, capacity=batch, on_end=self._source_ended)
        # every frame: one being filled, queue_size waiting, in_flight in the engine.  Latest frame:
        # one being filled and in_flight in the engine (1 but for asynchronous back-ends), so a frame
        # never waits for more than the inferences ahead of it.
        pool_size = 1 + in_flight if all(source.drop for source in sources) else queue_size + 1 + in_flight
        for _ in range(pool_size):  # the back-end's own input buffers: letterbox writes where infer reads
            self._pool.put(detector.allocate_input(batch))
        self._stopping = threading.Event()
        self._abort = threading.Event()
        self._errors: List[BaseException] = []
        self._threads: List[threading.Thread] = []
        self._failed_sinks: List = []  # sinks whose write failed: discarded at the end, not closed
        self._stale_before = 0.0  # latest-frame sources: frames captured before this are not sent
        self.stop_reason = ""

    # -- control ----------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def batch_capacity(self) -> int:
        """Frames one engine call takes: the model's batch, at most the number of sources."""
        return self.batcher.capacity

    def stop(self, reason: str = "") -> None:
        """Graceful: capture ends, frames in flight reach the sinks, then run() returns."""
        if reason and not self.stop_reason:
            self.stop_reason = reason
        self._stopping.set()
        self._stop_sources()
        for sink in self._every_sink:
            getattr(sink, "stop_soon", lambda: None)()  # a stream whose reader stalled must not hold the stop

    def _stop_sources(self) -> None:
        for source in self.sources:
            source.stop()

    def _source_ended(self, index: int) -> None:
        lane = self.lanes[index]
        lane.failure = self.batcher.failures.get(index, "")
        running = len(self.batcher.open)
        if self.log is not None and running and lane.ended_reason and not self._stopping.is_set():
            self.log(f"source {index} ({lane.name}) ended: {lane.ended_reason}; "
                     f"{running} other source(s) still running")

    def _fail(self, exc: BaseException) -> None:
        self._errors.append(exc)
        self._abort.set()
        self._stop_sources()

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
    def _take_frames(self):
        """The pre stage's input: a free input buffer first, then the newest frames (as fresh as can be)."""
        buffer = self._get(self._pool)
        if buffer is _END:
            return _END
        frames = self.batcher.next_batch(self._abort, self._stopping)
        if frames is None:
            self._pool.put(buffer)
            return _END
        return frames, buffer

    def _pre(self, item):
        frames, buffer = item
        # letterbox into the engine's buffer; `batch` is the part of it the engine reads
        batch, scales = self.detector.preprocess([frame.image for frame in frames], out=buffer)
        return frames, buffer, batch, scales

    def _stale(self, frames) -> bool:
        """Every frame is from a latest-frame source and was captured before a back-end outage ended."""
        return all(self.lanes[f.source].source.drop and f.captured_at < self._stale_before for f in frames)

    def _submit(self, item):
        """Hand a batch to the engine; it runs there while the next one is prepared (see _collect)."""
        frames, buffer, batch, scales = item
        submitted = time.perf_counter()
        pending = None if self._stale(frames) else self._submit_retrying(batch, frames)
        if pending is None:
            self._pool.put(buffer)
            for frame in frames:
                self.lanes[frame.source].skipped += 1
            return _SKIP
        return frames, buffer, scales, pending, submitted

    def _collect(self, item):
        """The outputs of the oldest submitted batch.  Its `infer` time is the span the engine spent on
        it alone: from its submission, or from the end of the batch before it if that was later, to its
        end; so batches overlapping in the engine are not counted twice and engine-only FPS stays the
        engine's own rate."""
        frames, buffer, scales, pending, submitted = item
        outputs = pending.result()
        done = getattr(pending, "done_at", None) or time.perf_counter()
        self.stats.add("infer", max(0.0, done - max(submitted, self._engine_free_at)))
        self._engine_free_at = max(self._engine_free_at, done)
        self._pool.put(buffer)
        self.stats.images_inferred += len(frames)
        return frames, _owned(outputs), scales

    def _submit_retrying(self, batch, frames):
        """A remote back-end that is down raises BackendUnavailable: wait its back-off, then retry
        the same frames (when any is from an every-frame source) or give them up for fresh ones
        (latest-frame sources only: frames captured before the wait ended are stale).  None: the
        frames are given up."""
        while True:
            try:
                submit = getattr(self.detector, "submit", None)  # a stand-in with infer() alone runs it here
                return submit(batch) if submit is not None else Pending(self.detector.infer(batch))
            except BackendUnavailable as exc:
                if self._stopping.is_set():
                    return None
                self._abort.wait(exc.retry_in)
                if self._abort.is_set():
                    return None
                if all(self.lanes[f.source].source.drop for f in frames):
                    self._stale_before = time.perf_counter()
                    return None

    def _post(self, item):
        frames, outputs, scales = item
        found = self.detector.postprocess(outputs, scales, [frame.image.shape for frame in frames])
        return list(zip(frames, found))

    def _track(self, item):
        """Tracking and counting per source, in frame order; the sinks get a copy of each frame's
        IDs, trails and counts."""
        for frame, detections in item:
            analytics = self.lanes[frame.source].analytics
            if analytics is None:
                continue
            height, width = frame.image.shape[:2]
            detections.analytics = analytics.frame(detections.boxes, detections.scores, detections.class_ids,
                                                   detections.labels, frame.index, frame.timestamp,
                                                   frame_size=(width, height))
        return item

    def _stage(self, name: str, take, work, outbox: queue.Queue, timed: bool = True) -> None:
        """One stage thread: take an item, work on it (timed as `name` unless the work times itself),
        pass the result on; the end marker passes through, and an error stops every stage."""
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
                if timed:
                    self.stats.add(name, time.perf_counter() - t0)
                if not self._put(outbox, result):
                    return
        except BaseException as exc:
            self._fail(exc)

    # -- the caller's thread ----------------------------------------------------------------
    def _deliver(self, frame, detections) -> None:
        t0 = time.perf_counter()
        lane = self.lanes[frame.source]
        image = frame.image
        if self.render and image.shape[2] == 4:  # a BGRx source: the sinks draw and encode BGR
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if self.render and self.overlay:
            image = draw_overlay(image, detections, lane.rate.rate)
        failed = None
        for sink in self.sinks + lane.sinks:
            if sink in self._failed_sinks:
                continue
            try:
                sink.write(frame, detections, image if self.render else None)
            except Exception as exc:  # this frame still reaches the other sinks, which then close normally
                self._failed_sinks.append(sink)
                failed = failed or exc
                continue
            if sink.stop_requested and not self._stopping.is_set():
                self.stop("stopped from the window")
        if failed is not None:
            raise failed
        now = time.perf_counter()
        self.stats.add("render", now - t0)
        self.stats.add("capture", frame.capture_s)
        self.stats.frame_done(frame.captured_at)
        lane.frame_done(now)

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
        """Stream until every source ends or stop() is called; returns the summary (see stats.py)."""
        try:
            self._warm_up()
            self.stats.start()
            for lane in self.lanes:
                lane.start(self.stats.started)
            stages = (("pre", self._take_frames, self._pre, self._to_infer, True),
                      ("infer", lambda: self._get(self._to_infer), self._submit, self._submitted, False),
                      ("wait", lambda: self._get(self._submitted), self._collect, self._to_post, False),
                      ("post", lambda: self._get(self._to_post), self._post,
                       self._to_track if self.tracking else self._to_sink, True))
            if self.tracking:
                stages += (("track", lambda: self._get(self._to_track), self._track, self._to_sink, True),)
            for name, take, work, outbox, timed in stages:
                thread = threading.Thread(target=self._stage, args=(name, take, work, outbox, timed), name=name,
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
            while True:
                try:
                    item = self._get(self._to_sink)
                    if item is _END:
                        break
                    for frame, detections in item:
                        self._deliver(frame, detections)
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
        self._stop_sources()
        if self._errors:
            self._abort.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._abort.set()  # anything still waiting on a queue lets go
        failures = []
        for sink in self._every_sink:
            try:
                if sink in self._failed_sinks:
                    getattr(sink, "discard", sink.close)()
                else:
                    sink.close()
            except Exception as exc:  # close every sink even if one fails
                failures.append(exc)
        for lane in self.lanes:
            lane.source.close()
        if failures and not self._errors:
            self._errors.append(failures[0])

    def ended_reason(self) -> str:
        """Why the stream ended, when not simply at the end of its files: a stop, or lost sources."""
        if self.stop_reason:
            return self.stop_reason
        lost = [lane for lane in self.lanes if lane.ended_reason]
        if len(self.lanes) == 1:
            return lost[0].ended_reason if lost else ""
        return "; ".join(f"source {lane.index} ({lane.name}): {lane.ended_reason}" for lane in lost)

    def summary(self) -> dict:
        """The aggregate numbers, and per source under `sources`; with one source its description
        and counts also sit at the top level (`source`, `counts`), as they always have."""
        extra = {"model": self.detector.info.model, "input_size": list(self.detector.input_size),
                 "batch": self.batch_capacity, "sources": [lane.summary() for lane in self.lanes]}
        if len(self.lanes) == 1:
            extra["source"] = self.sources[0].describe()
            if self.tracking:
                extra["counts"] = self.lanes[0].analytics.counts()
        describe = getattr(getattr(self.detector, "backend", None), "describe", None)
        if describe:
            extra["backend"] = describe()
        reason = self.ended_reason()
        if reason:
            extra["ended"] = reason
        return self.stats.summary(dropped=sum(lane.dropped for lane in self.lanes), extra=extra)


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
