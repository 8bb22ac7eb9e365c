"""A frame rate a person can read: an exponential average over about `time_constant` seconds.

The rate over the last few frames jumps (17 -> 49 -> 420 FPS when a burst of queued frames
drains); averaging the frame interval with a weight that depends on the elapsed time gives a
number that moves at human speed and still follows a real change within a couple of seconds.
"""
from __future__ import annotations

import math
import time
from typing import Optional


class SmoothedRate:
    def __init__(self, time_constant: float = 1.0):
        self.time_constant = float(time_constant)
        self.last: Optional[float] = None
        self.interval: Optional[float] = None  # smoothed seconds per frame

    def tick(self, now: Optional[float] = None) -> Optional[float]:
        """Record one frame at `now` (perf_counter seconds); returns the smoothed rate."""
        now = time.perf_counter() if now is None else float(now)
        if self.last is not None:
            dt = max(now - self.last, 0.0)
            if self.interval is None:
                self.interval = dt
            else:
                # weight by elapsed time, so a burst of near-zero intervals moves the average little
                weight = 1.0 - math.exp(-dt / self.time_constant) if dt > 0 else 0.0
                weight = max(weight, 1.0 / (1.0 + 30.0 * self.time_constant))
                self.interval += weight * (dt - self.interval)
        self.last = now
        return self.rate

    @property
    def rate(self) -> Optional[float]:
        if not self.interval or self.interval <= 0:
            return None
        return 1.0 / self.interval
