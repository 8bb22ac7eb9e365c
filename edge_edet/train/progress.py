"""Training progress: step, loss, learning rate and the time left, on a terminal as one live bar,
elsewhere (a log file, CI, `nohup`) as one plain line every N steps, so a log is readable and short.

The time left is the nearer of two ends: the steps still to do at the recent pace, and the
wall-clock budget (--max-minutes), which covers the whole run, validation included.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from ..contract.progress import clock


class TrainProgress:
    def __init__(self, total_steps: int, budget_s: Optional[float] = None, every: int = 20,
                 stream: Optional[TextIO] = None, enabled: bool = True, tty: Optional[bool] = None):
        self.total_steps = int(total_steps)
        self.budget_s = budget_s
        self.every = max(1, int(every))
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = self.stream.isatty() if tty is None else tty
        self._bar = None
        self._mark = None  # (step, time) where the pace is measured from

    def eta(self, step: int, elapsed: float, now: float) -> tuple:
        """(seconds left, what ends the run): the steps at the pace since the mark, or the budget."""
        left, why = None, "steps"
        if self._mark and step > self._mark[0]:
            pace = (now - self._mark[1]) / (step - self._mark[0])
            left = pace * (self.total_steps - step)
        if self.budget_s is not None and (left is None or self.budget_s - elapsed < left):
            left, why = self.budget_s - elapsed, "budget"
        return left, why

    def line(self, step: int, epoch: int, epochs: int, loss: float, lr: float, elapsed: float,
             now: Optional[float] = None) -> str:
        left, why = self.eta(step, elapsed, time.perf_counter() if now is None else now)
        eta = "" if left is None else f", {clock(left)} left" + (" (budget)" if why == "budget" else "")
        return (f"step {step}/{self.total_steps} (epoch {epoch}/{epochs}) loss {loss:.4f} lr {lr:.2e} "
                f"elapsed {clock(elapsed)}{eta}")

    def update(self, step: int, epoch: int, epochs: int, loss: float, lr: float, elapsed: float) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._mark is None:
            self._mark = (step, now)  # the pace is measured from the first step reported
        text = self.line(step, epoch, epochs, loss, lr, elapsed, now)
        if self.tty:
            from tqdm import tqdm

            if self._bar is None:
                self._bar = tqdm(total=self.total_steps, initial=step - 1, unit="step", file=self.stream,
                                 dynamic_ncols=True, leave=False, bar_format="{bar:20} {desc}")
            self._bar.update(1)
            self._bar.set_description_str(text)
        elif step % self.every == 0 or step == 1:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
