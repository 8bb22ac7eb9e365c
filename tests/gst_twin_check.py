"""Run by tests/test_gst_twin.py under Debian's /usr/bin/python3, whose OpenCV has GStreamer (pip's has none).

    /usr/bin/python3 tests/gst_twin_check.py BGRx,BGR VIDEO [VIDEO...]   (PYTHONPATH = the checkout)

For each video: the software twin of the hardware decode pipeline, chosen by the project's own
plan_decode with the real probe (codec from OpenCV's FFmpeg or the file extension, elements from
GStreamer's registry), read through the project's reader on a capture thread (runtime/sources.py),
against the same file through the FFmpeg reader.  Prints one JSON object per video: frame counts,
the worst per-frame mean absolute difference, the pipelines, seconds.  Imports only torch-free parts.
"""
import json
import sys
import time

import numpy as np


def compare(spec, pipeline):
    """Frame counts of the FFmpeg reader and of `pipeline`, read side by side, and per-frame differences."""
    from edge_edet.contract.frames import open_reader
    from edge_edet.runtime.sources import FrameSource

    counts, diffs, shapes = [0, 0], [], set()
    with FrameSource(spec, open_reader(spec), drop=False) as cpu, \
            FrameSource(spec, open_reader(spec, pipeline=pipeline), drop=False) as twin:
        while True:
            a, b = cpu.get(), twin.get()
            counts[0] += a is not None
            counts[1] += b is not None
            if a is None or b is None:
                break
            shapes.add((a.image.shape, b.image.shape))
            diffs.append(float(np.abs(a.image.astype(np.int16) - b.image[..., :3].astype(np.int16)).mean()))
        for source, index in ((cpu, 0), (twin, 1)):  # whichever is longer
            while source.get() is not None:
                counts[index] += 1
    return counts, diffs, sorted(shapes)


def check(path, pixel_formats):
    from edge_edet.contract.decode import plan_decode
    from edge_edet.contract.source_uri import parse_source

    spec = parse_source(path)
    result = {"video": path}
    started = time.perf_counter()
    for pixel_format in pixel_formats:
        plan = plan_decode(spec, "nvdec", pixel_format=pixel_format, profiles=("software",))
        counts, diffs, shapes = compare(spec, plan.pipeline)
        result[pixel_format] = {"pipeline": plan.pipeline, "ffmpeg_frames": counts[0], "frames": counts[1],
                                "shapes": [[list(a), list(b)] for a, b in shapes],
                                "max_mean_abs_diff": max(diffs) if diffs else None}
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


if __name__ == "__main__":
    formats = sys.argv[1].split(",")  # BGRx,BGR
    for video in sys.argv[2:]:
        print(json.dumps(check(video, formats)), flush=True)
