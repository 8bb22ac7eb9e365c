#!/usr/bin/env python3
"""Tracking quality and cost without a video: MOT ground truth through a noisy synthetic detector.

    python scripts/bench_tracking.py GT.txt [--miss 0.15] [--jitter 0.04] [--fp-every 3] [--seed 7]

GT.txt is a MOT ground truth: MOT15 (10 columns, the last three world coordinates), MOT16/17/20
(9 columns: ..., conf, class, visibility; pedestrians kept) or bare boxes, told apart by what the
columns mean; e.g. TUD-Campus's or TUD-Stadtmitte's, which the `motmetrics` wheel ships as
motmetrics/data/TUD-Campus/gt.txt.  The detector drops each box
with probability --miss, moves its centre and size by Gaussian noise of --jitter times its size,
scores it uniformly in 0.3-0.95, and adds one false positive (a box of a typical size somewhere in
the scene) every --fp-every frames, seeded.  Our ByteTracker and Roboflow's `trackers`
ByteTrackTracker see the same detections in the same run; MOTA, IDF1 and ID switches come from
`trackers.eval` (TrackEval's matching); ms_per_frame is the tracker's update alone, detections
prepared beforehand.  Needs `pip install supervision motmetrics` and `pip install --no-deps
trackers==2.6.1` (benchmark only: `trackers` requires the GUI opencv-python, whose cv2 would replace
the headless one the runtime uses).  Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's edge_edet, not an installed one

from edge_edet.runtime.analytics import ByteTracker  # noqa: E402


MOT_LAYOUTS = {
    "MOT15": "10 columns: frame, id, left, top, width, height, conf, then x, y, z world coordinates "
             "(-1 when unknown; TUD-Stadtmitte has real ones)",
    "MOT16/17": "9 columns: frame, id, left, top, width, height, conf (0 = ignore), class (1 = pedestrian), "
                "visibility 0..1 (MOT16, MOT17 and MOT20 ground truth)",
    "boxes": "6 or 7 columns: frame, id, left, top, width, height[, conf]",
}


def mot_layout(rows: np.ndarray, path: str = "the file") -> str:
    """Which MOT layout the columns are, told by their meaning, not by a value in column 8: MOT15's
    columns 8-10 are world coordinates, MOT16/17's 8 and 9 a class id and a visibility."""
    columns = rows.shape[1]
    if columns == 10:
        return "MOT15"
    if columns == 9:
        classes, visibility = rows[:, 7], rows[:, 8]
        if np.all(classes == np.round(classes)) and np.all(classes >= 1) and np.all((visibility >= 0) & (visibility <= 1)):
            return "MOT16/17"
        raise SystemExit(f"bench_tracking.py: error: {path} has 9 columns but column 8 is not a class id (1, 2, ...) "
                         f"with a visibility 0..1 in column 9; expected {MOT_LAYOUTS['MOT16/17']}")
    if columns in (6, 7):
        return "boxes"
    raise SystemExit(f"bench_tracking.py: error: {path} has {columns} columns, which is no MOT layout: "
                     + "; ".join(f"{name}: {text}" for name, text in MOT_LAYOUTS.items()))


def load_gt(path: str, layout_out: list = None) -> dict:
    """frame -> (ids [N], boxes [N,4] x1,y1,x2,y2) from a MOT file (mot_layout): rows marked
    ignore (conf 0) are left out, and in MOT16/17 files classes other than pedestrian (1);
    a MOT15 file's world coordinates are not read.  `layout_out` receives the layout's name."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"bench_tracking.py: error: cannot read {path} as comma-separated numbers ({exc})")
    if rows.size == 0:
        raise SystemExit(f"bench_tracking.py: error: {path} holds no rows")
    layout = mot_layout(rows, path)
    if rows.shape[1] > 6:
        rows = rows[rows[:, 6] != 0]
    if layout == "MOT16/17":
        rows = rows[rows[:, 7] == 1]
    if not len(rows):
        raise SystemExit(f"bench_tracking.py: error: {path} ({layout}) has no row to score after leaving out "
                         "ignored rows (conf 0)" + (" and classes other than pedestrian" if layout == "MOT16/17" else ""))
    if layout_out is not None:
        layout_out.append(layout)
    frames = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        boxes = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1)
        frames[int(f)] = (r[:, 1].astype(int), boxes)
    return frames


def synthetic_detections(gt: dict, miss: float, jitter: float, fp_every: int, seed: int) -> dict:
    """frame -> (boxes [M,4], scores [M]) as a noisy detector would give them."""
    rng = np.random.default_rng(seed)
    all_boxes = np.concatenate([b for _, b in gt.values()])
    extent = all_boxes[:, :2].min(0), all_boxes[:, 2:].max(0)
    sizes = all_boxes[:, 2:] - all_boxes[:, :2]
    out = {}
    for frame in range(1, max(gt) + 1):
        boxes = gt.get(frame, (None, np.zeros((0, 4))))[1]
        keep = rng.random(len(boxes)) >= miss
        boxes = boxes[keep]
        wh = boxes[:, 2:] - boxes[:, :2]
        centre = boxes[:, :2] + wh / 2 + rng.normal(0, jitter, (len(boxes), 2)) * wh
        wh = wh * (1 + rng.normal(0, jitter, (len(boxes), 2)))
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
        if fp_every and frame % fp_every == 0:
            size = sizes[rng.integers(len(sizes))]
            corner = rng.uniform(extent[0], np.maximum(extent[1] - size, extent[0] + 1))
            boxes = np.concatenate([boxes, np.concatenate([corner, corner + size])[None]])
        out[frame] = (boxes, rng.uniform(0.3, 0.95, len(boxes)))
    return out


def write_mot(path: str, rows: list) -> None:
    """MOT17 layout (conf 1, class 1 = pedestrian, visibility 1), the layout trackers.eval scores."""
    with open(path, "w", encoding="ascii") as handle:
        for frame, tid, box in rows:
            x1, y1, x2, y2 = (float(v) for v in box)
            handle.write(f"{frame},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,1,1\n")


def run_ours(dets: dict, fps: float):
    tracker = ByteTracker(fps=fps)
    rows, spent = [], 0.0
    zeros = {f: np.zeros(len(s), np.int64) for f, (_, s) in dets.items()}
    for frame in sorted(dets):
        boxes, scores = dets[frame]
        t0 = time.perf_counter()
        result = tracker.update(boxes, scores, zeros[frame], frame_index=frame)
        spent += time.perf_counter() - t0
        rows.extend((frame, int(i), b) for i, b in zip(result.ids, result.boxes))
    return rows, spent


def run_reference(dets: dict, fps: float):
    import supervision as sv
    from trackers import ByteTrackTracker

    tracker = ByteTrackTracker(frame_rate=fps)
    inputs = {f: sv.Detections(xyxy=b.astype(np.float32), confidence=s.astype(np.float32),
                               class_id=np.zeros(len(s), int)) for f, (b, s) in dets.items()}
    rows, spent = [], 0.0
    for frame in sorted(dets):
        t0 = time.perf_counter()
        result = tracker.update(inputs[frame])
        spent += time.perf_counter() - t0
        rows.extend((frame, int(t), b) for t, b in zip(result.tracker_id, result.xyxy) if t >= 0)
    return rows, spent


def score(gt: dict, rows: list, frames: int, spent: float) -> dict:
    """trackers.eval on the ground truth as loaded (rewritten in MOT17 layout: MOT15 files have no class)."""
    from trackers.eval import evaluate_mot_sequence

    with tempfile.TemporaryDirectory() as tmp:
        gt_path, path = os.path.join(tmp, "gt.txt"), os.path.join(tmp, "tracks.txt")
        write_mot(gt_path, [(f, i, b) for f, (ids, boxes) in sorted(gt.items()) for i, b in zip(ids, boxes)])
        write_mot(path, rows)
        result = evaluate_mot_sequence(gt_path, path, metrics=["CLEAR", "Identity"])
    return {"mota": round(float(result.CLEAR.MOTA), 4), "idf1": round(float(result.Identity.IDF1), 4),
            "id_switches": int(result.CLEAR.IDSW), "ms_per_frame": round(spent / frames * 1e3, 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gt", help="MOT-format ground truth (frame,id,left,top,width,height,conf,...)")
    parser.add_argument("--miss", type=float, default=0.15, help="probability a box is not detected")
    parser.add_argument("--jitter", type=float, default=0.04, help="box noise, as a fraction of its size")
    parser.add_argument("--fp-every", type=int, default=3, help="one false positive every N frames (0: none)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fps", type=float, default=30.0, help="source frame rate both trackers assume")
    args = parser.parse_args(argv)
    layout = []
    gt = load_gt(args.gt, layout)
    dets = synthetic_detections(gt, args.miss, args.jitter, args.fp_every, args.seed)
    frames = len(dets)
    report = {}
    for name, runner in (("ours", run_ours), ("reference", run_reference)):
        rows, spent = runner(dets, args.fps)
        report[name] = score(gt, rows, frames, spent)
        print(f"{name:<10} " + "  ".join(f"{k} {v}" for k, v in report[name].items()), file=sys.stderr)
    report["setup"] = {"gt": os.path.basename(os.path.dirname(args.gt)) + "/" + os.path.basename(args.gt),
                       "layout": layout[0], "frames": frames, "miss": args.miss, "jitter": args.jitter, "fp_every": args.fp_every,
                       "seed": args.seed, "fps": args.fps}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
