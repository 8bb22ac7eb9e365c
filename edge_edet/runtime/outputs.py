"""Which outputs belong to which source when a run has several.

    place_outputs([("out_{source}.mp4", "video", "--output"), ("dets.jsonl", "jsonl", "--json")], 2)
    -> [("out_0.mp4", "video", "--output", 0), ("out_1.mp4", "video", "--output", 1),
        ("dets.jsonl", "jsonl", "--json", None)]

A file output with `{source}` in its name becomes one file per source (the source's number, from
0 in --source order); one without it is shared: JSON lines carry each line's source, a preview
serves every source and their mosaic, a window shows the mosaic.  A video, or a folder of frame
images (`DIR/`), cannot interleave several sources, so with more than one source it needs the
placeholder.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from ..contract.errors import EdgeEdetError

PLACEHOLDER = "{source}"
FILE_KINDS = ("video", "jsonl", "images")
UNSHARED_KINDS = ("video", "images")  # a video, or a folder of frame images, holds one source's frames

Placed = Tuple[str, str, str, Optional[int]]  # uri, kind, flag, source (None: every source)


def place_outputs(outputs: Sequence[Tuple[str, str, str]], sources: int) -> List[Placed]:
    placed: List[Placed] = []
    for uri, kind, flag in outputs:
        if PLACEHOLDER in uri:
            if kind not in FILE_KINDS:
                raise EdgeEdetError(f"{flag} {uri}: {PLACEHOLDER} names one file per source; a preview already "
                                    f"serves /stream/N.mjpg per source and a window shows every source")
            placed.extend((uri.replace(PLACEHOLDER, str(k)), kind, flag, k) for k in range(sources))
        elif kind in UNSHARED_KINDS and sources > 1:
            what, example = ("video", "out_{source}.mp4") if kind == "video" else ("image folder", "annotated_{source}/")
            raise EdgeEdetError(f"{flag} {uri}: {sources} sources cannot share one {what}; put {PLACEHOLDER} in "
                                f"its name for one {what} per source (e.g. {example})")
        else:
            placed.append((uri, kind, flag, None))
    return placed
