#!/usr/bin/env python3
"""What tracking plus counting costs per frame with many objects (the pipeline's post thread pays it).

    python scripts/bench_analytics_cost.py [--objects 50] [--frames 600] [--lines 2] [--zones 2]

A synthetic crowd: `--objects` boxes walking on straight paths across a 1280x720 frame (wrapping
round), Gaussian box noise, 10% of boxes missed, scores uniform in 0.3-0.95, one false positive
per frame; two lines and two zones.  Times StreamAnalytics.frame, what the pipeline's post thread
runs per frame (tracker, every counter, the counts and the trails copied for the sinks),
detections prepared beforehand: wall time per frame (median, mean, p99) and
this thread's CPU time per frame (time.thread_time: the work itself, when other processes share the
cores).  Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's edge_edet, not an installed one

from edge_edet.runtime.analytics import Line, StreamAnalytics, Zone  # noqa: E402

W, H = 1280, 720


def crowd(objects: int, frames: int, seed: int):
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 0], [W, H], (objects, 2))
    velocity = rng.uniform(-6, 6, (objects, 2))
    size = rng.uniform([30, 60], [60, 140], (objects, 2))
    out = []
    for f in range(frames):
        centre = np.mod(start + velocity * f, [W, H])
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) + rng.normal(0, 1.5, (objects, 4))
        boxes = boxes[rng.random(objects) >= 0.1]
        fp = rng.uniform([0, 0], [W - 60, H - 120])
        boxes = np.concatenate([boxes, [[fp[0], fp[1], fp[0] + 50, fp[1] + 100]]])
        scores = rng.uniform(0.3, 0.95, len(boxes))
        out.append((boxes, scores, np.zeros(len(boxes), np.int64), ["person"] * len(boxes)))
    return out


def trackers_alone(frames, which: str) -> float:
    """Median ms per frame of one tracker's update on these frames (after 30 frames)."""
    if which == "ours":
        from edge_edet.runtime.analytics import ByteTracker

        tracker = ByteTracker(fps=30)
        inputs = frames
        step = lambda i, f: tracker.update(f[0], f[1], f[2], f[3], frame_index=i)  # noqa: E731
    else:
        import supervision as sv
        from trackers import ByteTrackTracker

        tracker = ByteTrackTracker(frame_rate=30)
        inputs = [sv.Detections(xyxy=b.astype(np.float32), confidence=s.astype(np.float32), class_id=c)
                  for b, s, c, _ in frames]
        step = lambda i, f: tracker.update(f)  # noqa: E731
    times = []
    for index, item in enumerate(inputs):
        t0 = time.perf_counter()
        step(index, item)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times[30:])) * 1e3, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--zones", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reference", action="store_true",
                        help="also time the trackers alone on the same frames: our ByteTracker.update and "
                             "trackers.ByteTrackTracker.update (benchmark-only package)")
    args = parser.parse_args(argv)
    frames = crowd(args.objects, args.frames, args.seed)
    lines = [Line((0, H * (k + 1) / (args.lines + 1)), (W, H * (k + 1) / (args.lines + 1)), f"line{k + 1}")
             for k in range(args.lines)]
    zones = [Zone(((W * k / args.zones, 0), (W * (k + 1) / args.zones, 0), (W * (k + 1) / args.zones, H / 2),
                   (W * k / args.zones, H / 2)), f"zone{k + 1}") for k in range(args.zones)]
    analytics = StreamAnalytics(fps=30, lines=lines, zones=zones)
    times, cpu, tracked = [], [], []
    for index, (boxes, scores, classes, labels) in enumerate(frames):
        t0, c0 = time.perf_counter(), time.thread_time()
        view = analytics.frame(boxes, scores, classes, labels, frame_index=index, timestamp=index / 30,
                               frame_size=(W, H))  # what the pipeline's post thread calls
        times.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        tracked.append(len(view.trails))
    times = np.array(times[30:]) * 1e3  # after the tracks have formed
    cpu_ms = np.sum(cpu[30:]) * 1e3 / len(times)
    report = {"objects": args.objects, "frames": args.frames, "lines": args.lines, "zones": args.zones,
              "tracked_per_frame_mean": round(float(np.mean(tracked[30:])), 1),
              "ms_per_frame_median": round(float(np.median(times)), 3),
              "ms_per_frame_mean": round(float(np.mean(times)), 3),
              "ms_per_frame_p99": round(float(np.percentile(times, 99)), 3),
              "cpu_ms_per_frame_mean": round(float(cpu_ms), 3),
              "line_counts": {k: (v["in"], v["out"]) for k, v in analytics.counts()["lines"].items()}}
    if args.reference:
        report["tracker_only_ms_median"] = {"ours": trackers_alone(frames, "ours"),
                                            "trackers.ByteTrackTracker": trackers_alone(frames, "reference")}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
