"""From the run command's --track / --line / --zone to a StreamAnalytics for an opened source.

Two steps so a mistake costs nothing: the text is checked before the model loads (parse_options),
the shapes against the frame once the source is open (for_source); each mistake is one sentence.
With several sources a shape written `N:x1,y1,...` belongs to source N (numbered from 0 in
--source order); one without the prefix applies to every source.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, List, Optional, Sequence, Tuple

from ...contract.errors import EdgeEdetError
from .geometry import ShapeSpec, parse_line, parse_zone, resolve
from .stream import StreamAnalytics
from .tracker import DEFAULT_FPS


SOURCE_PREFIX = re.compile(r"^\s*(\d+)\s*:(.*)$", re.S)


def split_source(flag: str, text: str, sources: int) -> Tuple[Optional[int], str]:
    """'1:0,0.5,1,0.5' -> (1, '0,0.5,1,0.5'); no prefix -> (None, text), every source."""
    match = SOURCE_PREFIX.match(str(text))
    if not match:
        return None, str(text)
    index = int(match.group(1))
    if index >= sources:
        have = "source 0" if sources == 1 else f"sources 0 to {sources - 1}"
        raise EdgeEdetError(f"{flag} \"{text}\": there is no source {index}; this run has {have} "
                            f"(numbered from 0 in --source order)")
    return index, match.group(2)


def parse_options(track: bool, lines: Sequence[str] = (), zones: Sequence[str] = (), sources: int = 1,
                  log: Optional[Callable[[str], None]] = None) -> Optional[List[List[ShapeSpec]]]:
    """None when tracking is off; else the shapes of each of `sources` sources (maybe none).
    Counting needs tracking: --line / --zone without --track turn it on, with one note."""
    placed = []  # (source or None, spec)
    for flag, texts, parse in (("--line", lines, parse_line), ("--zone", zones, parse_zone)):
        for k, text in enumerate(texts or ()):
            index, shape = split_source(flag, text, sources)
            placed.append((index, dataclasses.replace(parse(shape, k), text=str(text))))
    per_source = [[spec for index, spec in placed if index is None or index == k] for k in range(sources)]
    for specs in per_source:
        seen = set()
        for spec in specs:
            if spec.name in seen:
                raise EdgeEdetError(f"{spec.flag} \"{spec.text}\": the name '{spec.name}' is used twice")
            seen.add(spec.name)
    if placed and not track:
        if log:
            log("counting (--line / --zone) needs tracking, so tracking is on (--track)")
        track = True
    return per_source if track else None


def for_source(specs: Sequence[ShapeSpec], source, log: Optional[Callable[[str], None]] = None) -> StreamAnalytics:
    """Analytics for an opened FrameSource: its frame rate scales the lost-track buffer, its frame
    size places the shapes now (or at the first frame when the source cannot tell beforehand)."""
    fps = getattr(source, "fps", 0.0) or 0.0
    if not fps and log:
        log(f"the frame rate of {source.spec.shown} is unknown; tracking assumes {DEFAULT_FPS:g} FPS "
            f"(a lost track keeps its ID for {DEFAULT_FPS:g} frames)")
    size = getattr(source, "frame_size", None)
    if size:
        shapes = resolve(specs, *size)
        return StreamAnalytics(fps=fps, lines=[s for s in shapes if hasattr(s, "p1")],
                               zones=[s for s in shapes if not hasattr(s, "p1")])
    return StreamAnalytics(fps=fps, specs=specs)
