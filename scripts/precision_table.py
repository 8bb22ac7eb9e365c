#!/usr/bin/env python3
"""The README's precision table, end to end: FP32 / FP16 / INT8 entropy / INT8 percentile / INT8 mixed.

    python scripts/precision_table.py --weights person --workdir runs/precision
    python scripts/precision_table.py --weights person --rows fp32,int8_entropy   # only these rows
    python scripts/precision_table.py --weights person --rows fp32,int8_percentile,int8_fp16  # INT8 + FP16

Exports the person detector (lite0 at 320, score threshold 0.001 for AP), converts it to FP16,
calibrates INT8 on 500 person_coco/train images (entropy and percentile from one pass over the images; the
mixed graph reuses the percentile ranges; the same functions `edge-edet calibrate` runs), scores every graph with
`edge-edet eval` on person_coco/val in ONNX Runtime, and times one-image ONNX Runtime latency on this
CPU, the graphs interleaved so background load hits them alike.  Also times INT8 laid out for ONNX
Runtime's CPU kernels (uint8 activations, Q/DQ on outputs too), which TensorRT does not accept.
Finished steps are reused when their files exist (--force redoes them).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
sys.path.insert(0, REPO)  # this checkout's edge_edet, as the `python -m edge_edet` steps below use
RANGES_FORMAT = 2  # 2: entropy is the EntropyCalibration2 search (precision/entropy.py); older files are redone
ROWS = [("fp32", "FP32"), ("fp16", "FP16"), ("int8_entropy", "INT8 entropy (EntropyCalibration2 search)"),
        ("int8_percentile", "INT8 percentile"), ("int8_mixed", "INT8 mixed (percentile, 8 most sensitive layers fp16)"),
        ("int8_fp16", "INT8 + FP16 compute (percentile, `calibrate --fp16`: strongly typed TensorRT)"),
        ("int8_ort", "INT8 minmax, ONNX Runtime CPU layout (not for TensorRT)")]


def cli(*args):
    command = [sys.executable, "-m", "edge_edet"] + [str(a) for a in args]
    print("+ edge-edet " + " ".join(str(a) for a in args), flush=True)
    subprocess.run(command, check=True)


def latency_ms(paths, runs: int, threads: int) -> dict:
    """Median one-image latency per graph as the runtime runs it (its ONNX Runtime back-end and session
    settings), round-robin so load changes hit every graph alike."""
    import numpy as np

    from edge_edet.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    backends = {key: OnnxRuntimeBackend(path, providers=["cpu"], threads=threads) for key, path in paths.items()}
    height, width = next(iter(backends.values())).info.input_size
    image = np.random.default_rng(0).integers(0, 255, (1, height, width, 3), dtype=np.uint8)
    times = {key: [] for key in backends}
    for _ in range(3):
        for backend in backends.values():
            backend.infer(image)
    for _ in range(runs):
        for key, backend in backends.items():
            start = time.perf_counter()
            backend.infer(image)
            times[key].append(1000.0 * (time.perf_counter() - start))
    return {key: float(np.median(values)) for key, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lite0")
    parser.add_argument("--weights", default="person")
    parser.add_argument("--labels", default=None, help="labels file when --weights is a path")
    parser.add_argument("--num-classes", default=None)
    parser.add_argument("--workdir", default=os.path.join(REPO, "runs", "precision"))
    parser.add_argument("--calib-images", default=os.path.join(SHARED, "data", "person_coco", "train"))
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--val-images", default=os.path.join(SHARED, "data", "person_coco", "val"))
    parser.add_argument("--val-annotations", default=os.path.join(SHARED, "data", "person_coco", "val.json"))
    parser.add_argument("--max-val-images", type=int, default=None, help="smoke runs: evaluate fewer images")
    parser.add_argument("--mixed-layers", type=int, default=None)
    parser.add_argument("--latency-runs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--rows", default=",".join(key for key, _ in ROWS),
                        help="comma-separated rows to make (fp32 is always made: the reference)")
    args = parser.parse_args()
    wanted = {"fp32"} | set(args.rows.split(","))
    unknown = wanted - {key for key, _ in ROWS}
    if unknown:
        parser.error(f"unknown rows {', '.join(sorted(unknown))}; choose from {', '.join(key for key, _ in ROWS)}")
    rows = [(key, label) for key, label in ROWS if key in wanted]

    os.makedirs(args.workdir, exist_ok=True)
    path = {key: os.path.join(args.workdir, f"{args.model}_{key}.onnx") for key, _ in rows}
    todo = lambda key: key in wanted and (args.force or not os.path.isfile(path[key]))

    if todo("fp32"):
        extra = ["--labels", args.labels] if args.labels else []
        extra += ["--num-classes", args.num_classes] if args.num_classes else []
        cli("export", "--model", args.model, "--weights", args.weights, "--score-threshold", "0.001",
            "--output", path["fp32"], *extra)
    if todo("fp16"):
        cli("convert", "--precision", "fp16", path["fp32"], path["fp16"])

    int8_keys = [k for k in ("int8_entropy", "int8_percentile", "int8_mixed", "int8_ort", "int8_fp16") if todo(k)]
    if int8_keys:
        import onnx

        from edge_edet.contract.metadata import deploy_info_from_onnx_model, write_onnx_metadata
        from edge_edet.precision.calibration_data import load_calibration_images
        from edge_edet.precision.quantize import CalibrationResult, calibrate_methods, quantize_int8, quantize_with_ranges
        from edge_edet.contract.onnx_io import save_onnx_atomic
        from edge_edet.precision.sensitivity import DEFAULT_MIXED_LAYERS, most_sensitive

        model = onnx.load(path["fp32"])
        info = deploy_info_from_onnx_model(model)
        print(f"+ edge-edet calibrate --model {path['fp32']} --images {args.calib_images} "
              f"--num-images {args.num_images} --method entropy|percentile [--mixed]  (same functions)", flush=True)
        images = load_calibration_images(args.calib_images, info, args.num_images)
        ranges_file = os.path.join(args.workdir, f"{args.model}_ranges.json")
        saved = {}
        if os.path.isfile(ranges_file) and not args.force:  # a rerun after a failure reuses the slow part
            with open(ranges_file) as handle:
                saved = json.load(handle)
        if saved.get("format") == RANGES_FORMAT and saved.get("num_images") == len(images):
            ranges = {k: CalibrationResult(**v) for k, v in saved["results"].items()}
        else:
            ranges = calibrate_methods(model, images, ("entropy", "percentile"), all_tensors=False)
            with open(ranges_file, "w") as handle:
                json.dump({"format": RANGES_FORMAT, "num_images": len(images),
                           "results": {k: vars(v) for k, v in ranges.items()}}, handle)
        entropy = ranges["entropy"]
        if "int8_entropy" in int8_keys:
            graph, _ = quantize_int8(model, images, "entropy", calibration=entropy)
            save_onnx_atomic(graph, path["int8_entropy"])
        if "int8_mixed" in int8_keys:
            best = ranges["percentile"]  # the default method
            layers = most_sensitive(model, best, images, count=args.mixed_layers or DEFAULT_MIXED_LAYERS)
            print("fp16 layers: " + ", ".join(layers), flush=True)
            graph, _ = quantize_int8(model, images, "percentile", mixed=True, mixed_layers=layers, calibration=best)
            save_onnx_atomic(graph, path["int8_mixed"])
        if "int8_ort" in int8_keys:
            minmax = calibrate_methods(model, images, ("minmax",), all_tensors=True, symmetric=False)["minmax"]  # every tensor
            graph = quantize_with_ranges(model, minmax, target="onnxruntime")
            info.precision = "int8"
            info.extra = dict(info.extra, int8={"method": "minmax", "target": "onnxruntime-cpu"})
            write_onnx_metadata(graph, info)
            save_onnx_atomic(graph, path["int8_ort"])
        if "int8_percentile" in int8_keys:
            graph, _ = quantize_int8(model, images, "percentile", calibration=ranges["percentile"])
            save_onnx_atomic(graph, path["int8_percentile"])
        if "int8_fp16" in int8_keys:
            graph, _ = quantize_int8(model, images, "percentile", calibration=ranges["percentile"], fp16=True)
            save_onnx_atomic(graph, path["int8_fp16"])

    metrics = {}
    for key, _ in rows:
        report = os.path.join(args.workdir, f"{args.model}_{key}.eval.json")
        if args.force or not os.path.isfile(report):
            limit = ["--max-images", args.max_val_images] if args.max_val_images else []
            # ONNX Runtime runs the Q/DQ pairs as float (TensorRT's arithmetic), OpenVINO as int8 kernels
            cli("eval", "--model", path[key], "--images", args.val_images, "--annotations", args.val_annotations,
                "--backend", "onnxruntime", "--output", report, "--no-progress", *limit)
        with open(report) as handle:
            metrics[key] = json.load(handle)["metrics"]
    latency = latency_ms({key: path[key] for key, _ in rows}, args.latency_runs, args.threads)

    import onnxruntime

    lines = [f"| graph | AP | AP50 | ONNX Runtime latency (ms, median, {args.threads} threads) | vs FP32 |",
             "| --- | --- | --- | --- | --- |"]
    for key, label in rows:
        ap, ap50 = metrics[key]["AP"], metrics[key]["AP50"]  # pycocotools' 0..1 scale, as everywhere
        lines.append(f"| {label} | {ap:.4f} | {ap50:.4f} | {latency[key]:.1f} | {latency['fp32'] / latency[key]:.2f}x |")
    table = "\n".join(lines)
    print()
    print(table)
    print(f"\nONNX Runtime {onnxruntime.__version__}, CPUs: {_cpu_name()}, calibration: {args.num_images} images "
          f"of {args.calib_images}, eval: {args.val_annotations}")
    if "int8_fp16" in path:
        from edge_edet.contract.metadata import read_onnx_metadata

        extra = read_onnx_metadata(path["int8_fp16"]).extra or {}
        print(f"INT8 + FP16: {extra.get('int8', {}).get('fp16_casts_added')} Cast nodes added by the FP16 compute")
    with open(os.path.join(args.workdir, "precision_table.json"), "w") as handle:
        json.dump({"metrics": metrics, "latency_ms": latency, "table": table}, handle, indent=2)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
