"""What a stream keeps per source: its analytics, its own outputs and its own numbers.

DESIGN.md: per-source state is keyed by source, so one source is the many-source case with N = 1.
A lane's FPS is its frames over the time from the start of the stream to its last frame, and its
longest gap is the longest the outputs went without a frame of it (start included): a source the
batching starves shows as a low FPS and a long gap.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

from .analytics.rate import SmoothedRate


class SourceLane:
    def __init__(self, index: int, source, analytics=None, sinks: Sequence = ()):
        self.index = index
        self.source = source
        self.name = source.spec.shown
        self.analytics = analytics  # analytics.StreamAnalytics or None
        self.sinks = list(sinks)  # this source's own outputs (`--output out_{source}.mp4`)
        self.frames = 0
        self.skipped = 0  # frames given up while a remote back-end was unreachable
        self.failure = ""  # the sentence the source failed with, if it did
        self.started: Optional[float] = None
        self.last: Optional[float] = None
        self.longest_gap = 0.0
        self.rate = SmoothedRate()  # for the overlay

    def start(self, now: float) -> None:
        self.started = self.last = now

    def frame_done(self, now: Optional[float] = None) -> None:
        now = time.perf_counter() if now is None else now
        if self.last is not None:
            self.longest_gap = max(self.longest_gap, now - self.last)
        self.last = now
        self.frames += 1
        self.rate.tick(now)

    @property
    def dropped(self) -> int:
        return self.source.dropped + self.skipped

    @property
    def ended_reason(self) -> str:
        return self.failure or self.source.ended_reason

    def summary(self) -> dict:
        elapsed = (self.last - self.started) if self.started is not None and self.last is not None else 0.0
        result = {"index": self.index, "name": self.name, "source": self.source.describe(),
                  "frames": self.frames, "dropped": int(self.dropped),
                  "end_to_end_fps": round(self.frames / elapsed, 2) if elapsed > 0 and self.frames else None,
                  "longest_gap_s": round(self.longest_gap, 3)}
        if self.analytics is not None:
            result["counts"] = self.analytics.counts()
        if self.ended_reason:
            result["ended"] = self.ended_reason
        return result
