"""Progress of a long loop (eval, calibration): a live tqdm bar on a terminal; elsewhere (a pipe, a
log file, CI) one plain line at most every `every_s` seconds and one at the end, so a log stays
short and readable instead of filling with hundreds of carriage-return updates.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def clock(seconds: float) -> str:
    """'02:05', or '1:02:05' from an hour on."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class PlainProgress:
    """tqdm's update / close / context-manager surface, as plain lines:
    `eval: 120/450 img (27%), 18.6 img/s, 00:06 elapsed, 00:18 left`."""

    def __init__(self, total: Optional[int], desc: str, unit: str = "it", stream: Optional[TextIO] = None,
                 every_s: float = 10.0, enabled: bool = True):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = float(every_s)
        self.enabled = enabled
        self.n = 0
        self._start = self._last = time.perf_counter()
        self._printed_at = -1  # the count of the last line printed

    def line(self, now: Optional[float] = None) -> str:
        elapsed = (time.perf_counter() if now is None else now) - self._start
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = self.n / elapsed if elapsed > 0 else 0.0
        left = ""
        if self.total and rate > 0 and self.n < self.total:
            left = f", {clock((self.total - self.n) / rate)} left"
        return f"{self.desc}: {done} {self.unit}{percent}, {rate:.1f} {self.unit}/s, {clock(elapsed)} elapsed{left}"

    def _print(self, now: Optional[float] = None) -> None:
        try:
            print(self.line(now), file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stream: progress is not worth failing for
            self.enabled = False
        self._printed_at = self.n

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            self._print(now)

    def close(self) -> None:
        if self.enabled and self.n and self._printed_at != self.n:
            self._print()
        self.enabled = False

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: Optional[int], desc: str, unit: str = "img", enabled: bool = True,
                 stream: Optional[TextIO] = None, every_s: float = 10.0):
    """A tqdm bar on a terminal, PlainProgress elsewhere; nothing printed when not `enabled`."""
    stream = stream if stream is not None else sys.stderr
    if enabled and is_terminal(stream):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True)
    return PlainProgress(total, desc, unit, stream, every_s, enabled)
