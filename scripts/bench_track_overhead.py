#!/usr/bin/env python3
"""Streaming FPS with and without --track / --line: the same `edge-edet run` command, interleaved.

    python scripts/bench_track_overhead.py --engine person.onnx [--source VIDEO] [--rounds 3] [--max-frames 150]

Runs the command without and with `--track --line ...` alternately (so background load hits both
alike), every frame (the file default), headless, and reads end_to_end_fps from --summary-json.
Prints each run, then as its last line one JSON object: median FPS of each side, their ratio,
the median share of engine-only FPS each side reached within its own run (background load slows
the engine too; this share is what tracking could take away), and the track stage's p50 / mean.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))


def run(command: list) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "summary.json")
        subprocess.run(command + ["--summary-json", summary], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(summary, encoding="utf-8") as handle:
            return json.load(handle)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--source", default=os.path.join(SHARED, "data", "video", "people_walking.mp4"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--line", default="0.5,0.3,0.5,0.9,centre")
    args = parser.parse_args(argv)
    base = [sys.executable, "-m", "edge_edet", "run", "--engine", args.engine, "--source", args.source,
            "--headless", "--max-frames", str(args.max_frames)]
    sides = {"without": [], "with": []}
    share = {"without": [], "with": []}  # end-to-end FPS over engine-only FPS, within each run
    track_ms = []
    for k in range(args.rounds):
        for side in ("without", "with") if k % 2 == 0 else ("with", "without"):
            command = base + (["--track", "--line", args.line] if side == "with" else [])
            summary = run(command)
            sides[side].append(summary["end_to_end_fps"])
            share[side].append(summary["end_to_end_vs_engine"])
            if side == "with":
                track_ms.append((summary["stages"]["track"]["p50_ms"], summary["stages"]["track"]["mean_ms"]))
            print(f"round {k + 1} {side:<8} --track: {summary['end_to_end_fps']} FPS end to end, "
                  f"{summary['end_to_end_vs_engine'] * 100:.1f}% of engine-only, {summary['frames']} frames"
                  + (f", counts {json.dumps(summary['counts']['lines'])}" if side == "with" else ""), flush=True)
    without, with_track = round(statistics.median(sides["without"]), 3), round(statistics.median(sides["with"]), 3)
    print(json.dumps({"command": " ".join(base[2:]), "fps_without_track": without, "fps_with_track": with_track,
                      "with_vs_without": round(with_track / without, 4),
                      "share_of_engine_without": round(statistics.median(share["without"]), 4),
                      "share_of_engine_with": round(statistics.median(share["with"]), 4),
                      "track_stage_p50_ms": round(statistics.median(p for p, _ in track_ms), 3),
                      "track_stage_mean_ms": round(statistics.median(m for _, m in track_ms), 3),
                      "runs": sides}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
