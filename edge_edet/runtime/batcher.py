"""Many sources, one inference: the stage between capture and the engine (DeepStream's stream muxer).

    batcher = FrameBatcher(sources, capacity=4)     # capacity: frames the model takes in one call
    frames = batcher.next_batch(abort, stopping)    # 1..capacity frames, or None when all have ended

A batch is the sources that have a new frame right now, up to the capacity, taken in turn: the
next batch starts after the last source served, so with more sources than the model's batch
(a batch-1 model serves them one at a time) every source gets its share.  Nothing waits to fill
a batch, so a latest-frame camera never waits for a slow source.  A source that ends (or fails:
one sentence, after its own reconnects) leaves the others running; the batches end when every
source has.  With one source this is exactly "the next frame of that source".
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Dict, List, Optional, Sequence

from ..contract.errors import EdgeEdetError
from .sources import Frame, FrameSource

WAIT_S = 0.1  # longest sleep between looks at the stop flags while no source has a frame


class FrameBatcher:
    def __init__(self, sources: Sequence[FrameSource], capacity: int = 1,
                 on_end: Optional[Callable[[int], None]] = None):
        """on_end(index): called (on the batching thread) when source `index` has ended."""
        self.sources = list(sources)
        self.on_end = on_end
        self.capacity = max(1, min(int(capacity), len(self.sources)))
        self.open = list(range(len(self.sources)))  # sources that have not ended, in order
        self.failures: Dict[int, str] = {}  # source index -> the sentence it failed with
        self._ready = threading.Event()  # set by any capture thread after it delivered something
        for source in self.sources:
            source.on_frame = self._ready.set
        self._next = 0  # where the next round starts, so every source gets its turn

    def next_batch(self, abort: threading.Event, stopping: threading.Event) -> Optional[List[Frame]]:
        """The frames of the sources that have one now (at least one; waits for it), or None when
        every source has ended, on abort, or once stopping and no frame is waiting."""
        while self.open and not abort.is_set():
            self._ready.clear()  # before looking: a frame delivered meanwhile sets it again
            frames = self._gather()
            if frames:
                return frames
            if stopping.is_set():
                return None  # a source blocked in a read must not hold up a stop
            self._ready.wait(WAIT_S)
        return None

    def _gather(self) -> List[Frame]:
        """One round over the open sources, starting where the last one stopped."""
        count = len(self.sources)
        frames, last = [], None
        for step in range(count):
            index = (self._next + step) % count
            if index not in self.open:
                continue
            frame = self._poll(index)
            if frame is None:
                continue
            frames.append(frame)
            last = index
            if len(frames) == self.capacity:
                break
        if last is not None:
            self._next = (last + 1) % count
        return frames

    def _poll(self, index: int) -> Optional[Frame]:
        """A waiting frame of source `index`, or None (none yet, or the source just ended)."""
        try:
            frame = self.sources[index].get(timeout=0)
        except queue.Empty:
            return None
        except EdgeEdetError as exc:  # e.g. a looping file that cannot be reopened: this source ends
            self.failures[index] = str(exc)
            frame = None
        else:
            if frame is not None:
                return frame
        self.open.remove(index)
        if self.on_end is not None:
            self.on_end(index)
        return None
