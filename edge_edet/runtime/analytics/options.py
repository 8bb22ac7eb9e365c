"""From the run command's --track / --line / --zone to a StreamAnalytics for an opened source.

Two steps so a mistake costs nothing: the text is checked before the model loads (parse_options),
the shapes against the frame once the source is open (for_source); each mistake is one sentence.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from ...contract.errors import EdgeEdetError
from .geometry import ShapeSpec, parse_line, parse_zone, resolve
from .stream import StreamAnalytics
from .tracker import DEFAULT_FPS


def parse_options(track: bool, lines: Sequence[str] = (), zones: Sequence[str] = (),
                  log: Optional[Callable[[str], None]] = None) -> Optional[List[ShapeSpec]]:
    """None when tracking is off; else the parsed shapes (maybe none).  Counting needs tracking:
    --line / --zone without --track turn it on, with one note."""
    specs = [parse_line(text, k) for k, text in enumerate(lines or ())]
    specs += [parse_zone(text, k) for k, text in enumerate(zones or ())]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise EdgeEdetError(f"{spec.flag} \"{spec.text}\": the name '{spec.name}' is used twice")
        seen.add(spec.name)
    if specs and not track:
        if log:
            log("counting (--line / --zone) needs tracking, so tracking is on (--track)")
        track = True
    return specs if track else None


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
