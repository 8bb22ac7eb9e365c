#!/usr/bin/env python3
"""CPU time per frame: OpenCV's FFmpeg reader vs the GStreamer software twin, with and without the BGR conversion.

    PYTHONPATH=. /usr/bin/python3 scripts/bench_decode.py [--video ../shared/data/video/people_walking.mp4]
                                                          [--repeats 5] [--size 320]

Needs an OpenCV with GStreamer (Debian's python3-opencv under /usr/bin/python3; pip's has none) and
gstreamer1.0-libav / -plugins-good / -plugins-bad.  Each reader decodes the whole clip on a capture
thread exactly as `edge-edet run` does; "CPU" is the process's CPU time (every thread: FFmpeg's and
GStreamer's own included) divided by the frames, median of the repeats: once reading only ("decode"),
once reading and letterboxing each frame ("total"; BGRx frames lose their fourth channel in the
letterbox); the letterbox column is the difference.  On a Jetson the decode itself moves to NVDEC and the BGRx conversion to the VIC, so what
stays on the CPU there is the "without BGR conversion" row minus the software decoding.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402

from edge_edet.contract.decode import plan_decode  # noqa: E402
from edge_edet.contract.frames import open_reader  # noqa: E402
from edge_edet.contract.letterbox import letterbox  # noqa: E402
from edge_edet.contract.source_uri import parse_source  # noqa: E402
from edge_edet.runtime.sources import FrameSource  # noqa: E402

DEFAULT_VIDEO = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "video", "people_walking.mp4")


def cpu_per_frame(spec, pipeline, size=None):
    """Process CPU time (ms, every thread) per frame for one pass over the clip; with `size`, each
    frame is also letterboxed as the runtime does.  Returns (ms, frames)."""
    out = np.empty((size, size, 3), np.uint8) if size else None
    frames = 0
    cpu0 = time.process_time()
    with FrameSource(spec, open_reader(spec, pipeline=pipeline), drop=False) as source:
        for frame in source:
            if size:
                letterbox(frame.image, (size, size), (0, 0, 0), out=out)
            frames += 1
    return 1000 * (time.process_time() - cpu0) / frames, frames


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=DEFAULT_VIDEO)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=320, help="letterbox side (the person detector's 320)")
    parser.add_argument("--json", default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    spec = parse_source(args.video)
    rows = [("FFmpeg reader (BGR)", None)]
    for pixel_format, label in (("BGR", "GStreamer twin, with BGRx->BGR videoconvert"),
                                ("BGRx", "GStreamer twin, BGRx to the letterbox")):
        rows.append((label, plan_decode(spec, "nvdec", pixel_format=pixel_format, profiles=("software",)).pipeline))
    results = []
    for label, pipeline in rows:
        decode = [cpu_per_frame(spec, pipeline) for _ in range(args.repeats)]
        total = [cpu_per_frame(spec, pipeline, args.size) for _ in range(args.repeats)]
        decode_ms, total_ms = statistics.median(r[0] for r in decode), statistics.median(r[0] for r in total)
        results.append({"reader": label, "pipeline": pipeline, "frames": decode[0][1], "decode_cpu_ms": round(decode_ms, 3),
                        "letterbox_cpu_ms": round(total_ms - decode_ms, 3), "total_cpu_ms": round(total_ms, 3)})
    print(f"{os.path.basename(args.video)}, {results[0]['frames']} frames, median of {args.repeats}, "
          f"letterbox {args.size}x{args.size}, {os.cpu_count()} CPUs")
    print(f"{'reader':<46} {'decode ms':>9} {'letterbox':>9} {'total':>7}  (CPU time per frame)")
    for row in results:
        print(f"{row['reader']:<46} {row['decode_cpu_ms']:>9.3f} {row['letterbox_cpu_ms']:>9.3f} "
              f"{row['total_cpu_ms']:>7.3f}")
    saved = results[1]["total_cpu_ms"] - results[2]["total_cpu_ms"]
    print(f"dropping the videoconvert saves {saved:.3f} ms of CPU per frame")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
