#!/usr/bin/env python3
"""The README's demo picture: the person detector on the pedestrian clip, one annotated frame as a PNG.

    python scripts/demo_frame.py

Exports the bundled person detector (`edge-edet export --model lite0 --weights person`, so it runs
at the default threshold stored in its metadata), streams ../shared/data/video/people_walking.mp4
through `edge-edet run --backend openvino --headless --output out.mp4 --json dets.jsonl --summary-json
summary.json` (the README's main job; `--backend onnxruntime` for the other back-end),
then saves frame --frame of the annotated video, scaled to --width pixels, as
docs/images/people_walking.png, and prints the run's FPS and the detections per frame (frames with
at least one person, mean boxes per frame) for the README.  Re-run it after replacing the weights.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
VIDEO = os.path.join(SHARED, "data", "video", "people_walking.mp4")
PICTURE = os.path.join(REPO, "docs", "images", "people_walking.png")


def edge_edet(*args) -> None:
    print("+ edge-edet " + " ".join(str(a) for a in args), flush=True)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run([sys.executable, "-m", "edge_edet"] + [str(a) for a in args], check=True, cwd=REPO, env=env)


def per_frame(jsonl: str, label: str = "person") -> dict:
    """Frames, frames with at least one `label` box, and mean `label` boxes per frame."""
    counts = []
    with open(jsonl, encoding="utf-8") as handle:
        for line in handle:
            counts.append(sum(1 for d in json.loads(line)["detections"] if d["label"] == label))
    frames = len(counts)
    return {"frames": frames, "frames_with_one": sum(1 for c in counts if c > 0),
            "mean_boxes": sum(counts) / frames if frames else 0.0}


def save_frame(video: str, index: int, width: int, out: str) -> None:
    import cv2

    sys.path.insert(0, REPO)
    from edge_edet.contract.fileio import write_bytes_atomic

    capture = cv2.VideoCapture(video)
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"demo_frame.py: error: cannot read frame {index} of {video}")
    height = int(round(image.shape[0] * width / image.shape[1]))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_bytes_atomic(out, data.tobytes())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="deploy ONNX or engine to run (default: export the bundled person detector)")
    parser.add_argument("--source", default=VIDEO)
    parser.add_argument("--backend", default="openvino", help="what runs the .onnx (default openvino, as the README)")
    parser.add_argument("--frame", type=int, default=150, help="frame of the annotated video to save (default 150)")
    parser.add_argument("--width", type=int, default=480, help="PNG width in pixels (default 480)")
    parser.add_argument("--output", default=PICTURE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        model = args.model
        if model is None:
            model = os.path.join(work, "person.onnx")
            edge_edet("export", "--model", "lite0", "--weights", "person", "--output", model)
        video, dets, summary_path = (os.path.join(work, name) for name in ("out.mp4", "dets.jsonl", "summary.json"))
        edge_edet("run", "--engine", model, "--backend", args.backend, "--source", args.source, "--headless",
                  "--output", video, "--json", dets, "--summary-json", summary_path)
        with open(summary_path, encoding="utf-8") as handle:
            summary = json.load(handle)
        counts = per_frame(dets)
        save_frame(video, args.frame, args.width, args.output)
    print(f"wrote {os.path.relpath(args.output, REPO)} (frame {args.frame} of the annotated video)")
    print(f"{summary['frames']} frames through {summary.get('backend', {}).get('label', '?')}, end-to-end "
          f"{summary['end_to_end_fps']:.1f} FPS, engine-only {summary['engine_fps']:.1f} FPS; person in {counts['frames_with_one']} of {counts['frames']} frames, "
          f"{counts['mean_boxes']:.2f} boxes per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
