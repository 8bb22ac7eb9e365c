#!/usr/bin/env python3
"""The OpenVINO figures of docs/openvino.md and the README, end to end: same results, speed, streaming.

    python scripts/openvino_table.py --workdir runs/openvino                   # everything
    python scripts/openvino_table.py --parts speed --iterations 100            # only the latency table
    python scripts/openvino_table.py --parts accuracy,speed,size,stream --quick  # a small run, to try it

Parts (each prints its table and one JSON line; all of them go to WORKDIR/openvino_table.json):
  accuracy  AP on person_coco/val (450 images, graph exported with score threshold 0.001) through ONNX
            Runtime and OpenVINO (`edge-edet eval --backend ...`), and the detections per frame of the
            pedestrian video above the model's default threshold: frames with the same count.  Both for
            OpenVINO's accuracy mode (the default) and its performance mode (bf16 where the CPU has it).
  speed     `edge-edet bench --backend onnxruntime,openvino` (batch 1, alternating rounds) on the person
            detector FP32 at 320 and at 384, its FP16 graph (`edge-edet convert`), its INT8 Q/DQ graph
            (`edge-edet calibrate`) and d0 FP32; OpenVINO in accuracy mode, then in performance mode.
  size      ONNX Runtime at 320 against OpenVINO at 384 (the README's main-job question), both
            OpenVINO modes, alternating in one process.
  stream    `edge-edet bench --backend openvino --source VIDEO`: streaming FPS against engine-only FPS.
Also says whether this CPU has VNNI (INT8 dot products) and bf16, and how loaded the machine was.
Graphs are exported once into WORKDIR and reused (--force redoes them).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
sys.path.insert(0, REPO)  # this checkout's edge_edet, as the `python -m edge_edet` steps below use
PARTS = ("accuracy", "speed", "size", "stream")


def cli(*args, capture: bool = False) -> str:
    command = [sys.executable, "-m", "edge_edet"] + [str(a) for a in args]
    print("+ edge-edet " + " ".join(str(a) for a in args), flush=True)
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE if capture else None, text=True)
    return done.stdout or ""


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def cpu_flags() -> dict:
    flags = set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"vnni": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}), "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
            "load_average": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count()}


def graphs(workdir: str, force: bool, needed) -> dict:
    """The graphs the parts need, exported (and calibrated) once."""
    made = {}
    recipes = {
        "person": ("--model", "lite0", "--weights", "person"),
        "person_384": ("--model", "lite0", "--weights", "person", "--input-size", "384"),
        "person_eval": ("--model", "lite0", "--weights", "person", "--score-threshold", "0.001"),
        "d0": ("--model", "d0"),
    }
    for key in needed:
        path = os.path.join(workdir, key + ".onnx")
        if key == "person_fp16":
            if force or not os.path.isfile(path):
                cli("convert", "--precision", "fp16", graphs(workdir, force, ["person"])["person"], path)
        elif key == "person_int8":
            if force or not os.path.isfile(path):
                cli("calibrate", "--model", graphs(workdir, force, ["person"])["person"], "--images",
                    os.path.join(SHARED, "data", "person_coco", "train"), "--num-images", "500", "--output", path)
        elif force or not os.path.isfile(path):
            cli("export", *recipes[key], "--output", path)
        made[key] = path
    return made


def accuracy(paths: dict, quick: bool) -> dict:
    """AP through both back-ends and per-frame detection counts on the video."""
    import numpy as np

    from edge_edet.contract.frames import iter_frames
    from edge_edet.runtime import Detector
    from edge_edet.runtime.detection_filter import make_filter

    data = os.path.join(SHARED, "data", "person_coco")
    result = {"ap": {}, "video": {}}
    limit = ["--max-images", "40"] if quick else []
    for name, options in (("onnxruntime", ()), ("openvino", ()), ("openvino_performance",
                                                                   ("--execution-mode", "performance"))):
        report = os.path.join(os.path.dirname(paths["person_eval"]), f"eval_{name}.json")
        cli("eval", "--model", paths["person_eval"], "--images", os.path.join(data, "val"), "--annotations",
            os.path.join(data, "val.json"), "--backend", name.split("_")[0], *options, "--no-progress", *limit,
            "--output", report, capture=True)
        metrics = json.load(open(report))["metrics"]
        result["ap"][name] = {"AP": round(metrics["AP"], 4), "AP50": round(metrics["AP50"], 4)}
    video = os.path.join(SHARED, "data", "video", "people_walking.mp4")
    counts = {}
    for name, options in (("onnxruntime", {"backend": "onnxruntime"}), ("openvino", {"backend": "openvino"}),
                          ("openvino_performance", {"backend": "openvino", "execution_mode": "performance"})):
        detector = Detector.from_file(paths["person"], **options)
        detector.filter = make_filter(detector.info, None, None, warn=lambda message: None)
        counts[name] = np.array([len(detector.detect(frame)[0].boxes)
                                 for frame in iter_frames(video, limit=60 if quick else None)])
        detector.close()
    for name in ("openvino", "openvino_performance"):
        same = float(np.mean(counts[name] == counts["onnxruntime"]))
        result["video"][name] = {"frames": int(len(counts[name])), "same_count_pct": round(100 * same, 1),
                                 "detections": int(counts[name].sum()),
                                 "onnxruntime_detections": int(counts["onnxruntime"].sum())}
    for name, ap in result["ap"].items():
        print(f"{name:<22} AP {ap['AP']:.4f}  AP50 {ap['AP50']:.4f}"
              + (f"   video: same count in {result['video'][name]['same_count_pct']}% of "
                 f"{result['video'][name]['frames']} frames" if name in result["video"] else ""))
    return result


def speed(paths: dict, iterations: int) -> dict:
    rows = {}
    for key in ("person", "person_384", "person_fp16", "person_int8", "d0"):
        if key in paths:
            for mode in ("accuracy", "performance"):
                rows[f"{key} {mode}"] = last_json(cli(
                    "bench", "--model", paths[key], "--backend", "onnxruntime,openvino", "--execution-mode", mode,
                    "--iterations", iterations, capture=True))["backends"]
    print(f"{'graph, OpenVINO mode':<26} {'ONNX Runtime':>14} {'OpenVINO':>10} {'ratio':>7}")
    for key, row in rows.items():
        ort, ov = row["onnxruntime"]["median_ms"], row["openvino"]["median_ms"]
        print(f"{key:<26} {ort:>11.1f} ms {ov:>7.1f} ms {ort / ov:>6.2f}x")
    return rows


def size(paths: dict, iterations: int) -> dict:
    """ONNX Runtime at 320 against OpenVINO at 384, alternating rounds in one process."""
    from edge_edet.bench.latency import bench_backends, synthetic_frames
    from edge_edet.runtime import Detector

    detectors = {"onnxruntime_320": Detector.from_file(paths["person"], backend="onnxruntime"),
                 "openvino_384": Detector.from_file(paths["person_384"], backend="openvino"),
                 "openvino_384_performance": Detector.from_file(paths["person_384"], backend="openvino",
                                                                execution_mode="performance")}
    try:
        result = bench_backends(detectors, synthetic_frames(8), 1, iterations, 10)
    finally:
        for detector in detectors.values():
            detector.close()
    figures = {name: {"median_ms": r["latency"]["median_ms"], "p90_ms": r["latency"]["p90_ms"]}
               for name, r in result.items()}
    print(f"ONNX Runtime at 320: {figures['onnxruntime_320']['median_ms']:.1f} ms, OpenVINO at 384: "
          f"{figures['openvino_384']['median_ms']:.1f} ms (accuracy mode), "
          f"{figures['openvino_384_performance']['median_ms']:.1f} ms (performance mode) (medians)")
    return figures


def stream(paths: dict, quick: bool) -> dict:
    video = os.path.join(SHARED, "data", "video", "people_walking.mp4")
    extra = ["--max-frames", "60"] if quick else []
    rows = last_json(cli("bench", "--model", paths["person"], "--backend", "openvino", "--iterations", "20",
                         "--source", video, *extra, capture=True))["backends"]
    row = rows["openvino"]
    print(f"streaming through OpenVINO: {row['stream_fps']} FPS end to end, {row['stream_engine_fps']} FPS "
          f"engine-only ({row['stream_vs_engine']:.0%})")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=os.path.join(REPO, "runs", "openvino"))
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    parser.add_argument("--iterations", type=int, default=100, help="timed iterations per back-end (default 100)")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to check the script works (40 images, 60 frames, no FP16, INT8 or d0)")
    parser.add_argument("--force", action="store_true", help="export and calibrate again")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    os.makedirs(args.workdir, exist_ok=True)
    needed = {"accuracy": ["person", "person_eval"], "speed": ["person", "person_384"] +
              ([] if args.quick else ["person_fp16", "person_int8", "d0"]), "size": ["person", "person_384"], "stream": ["person"]}
    paths = graphs(args.workdir, args.force, sorted({g for part in parts for g in needed[part]}))
    report = {"machine": cpu_flags()}
    print(f"CPU: VNNI {'yes' if report['machine']['vnni'] else 'no'}, bf16 {'yes' if report['machine']['bf16'] else 'no'}; "
          f"load average at the start {report['machine']['load_average']} on {report['machine']['cpus']} CPUs")
    for part in parts:
        if part == "accuracy":
            report[part] = accuracy(paths, args.quick)
        elif part == "speed":
            report[part] = speed(paths, args.iterations)
        elif part == "size":
            report[part] = size(paths, args.iterations)
        else:
            report[part] = stream(paths, args.quick)
    report["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    with open(os.path.join(args.workdir, "openvino_table.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
