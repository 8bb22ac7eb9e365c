#!/usr/bin/env python3
"""Pick a model's default display threshold on validation data: the F1-optimal score cut.

    python scripts/pick_threshold.py --weights person --write

Exports the model with a graph floor of 0.001 (as `edge-edet eval` needs), runs it in ONNX Runtime
over the validation images, matches detections to the ground truth at IoU >= 0.5 (greedy per image,
highest score first) and sweeps the cut (edge_edet.eval.threshold).  Prints precision / recall / F1
at a few thresholds and the F1 peak.  `--write` stores the peak, rounded down to 0.01, in the bundled
weights' facts file (edge_edet/weights/<name>.json); `edge-edet export --weights person` copies it
into the deploy ONNX's metadata as `default_threshold`, which `edge-edet run` applies.
Re-run it after replacing the bundled weights.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
sys.path.insert(0, REPO)
SHOWN = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="person", help="bundled name or checkpoint (default person)")
    parser.add_argument("--model", default="lite0", help="model name (default lite0)")
    parser.add_argument("--onnx", default=None, help="score this deploy ONNX (floor <= 0.001) instead of exporting")
    data = os.path.join(SHARED, "data", "person_coco")
    parser.add_argument("--images", default=os.path.join(data, "val"))
    parser.add_argument("--annotations", default=os.path.join(data, "val.json"))
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--write", action="store_true",
                        help="store the threshold in the bundled weights' facts file (edge_edet/weights/*.json)")
    args = parser.parse_args(argv)

    from edge_edet.contract.cli import guarded

    return guarded(lambda: run(args), "pick_threshold.py")


def run(args) -> int:
    from edge_edet.commands import export
    from edge_edet.contract.errors import EdgeEdetError
    from edge_edet.contract.fileio import write_json_atomic
    from edge_edet.eval.coco import label_to_category, load_coco
    from edge_edet.eval.runner import run_detector
    from edge_edet.eval.threshold import at_threshold, best_threshold, f1_curve, match
    from edge_edet.model.weights import BUNDLED, bundled_facts_path
    from edge_edet.runtime import Detector

    if args.write and args.weights not in BUNDLED:
        raise EdgeEdetError(f"--write stores into a bundled model's facts file; {args.weights} is not bundled "
                            f"(bundled: {', '.join(BUNDLED)}); pass the threshold to export --default-threshold")
    coco = load_coco(args.annotations)
    with tempfile.TemporaryDirectory() as workdir:
        path = args.onnx
        if path is None:
            path = os.path.join(workdir, "floor0001.onnx")
            code = export.main(["--model", args.model, "--weights", args.weights, "--score-threshold", "0.001",
                                "--output", path])
            if code:
                return code
        detector = Detector.from_file(path, **({"threads": args.threads} if args.threads else {}))
        try:
            if detector.info.score_threshold > 0.001:
                raise EdgeEdetError(f"{path} drops scores under {detector.info.score_threshold:g} in the graph; "
                                    "export it with --score-threshold 0.001")
            mapping = label_to_category(detector.labels, coco)
            if not mapping:
                raise EdgeEdetError("none of the model's labels match a category name in the annotations file")
            result = run_detector(detector, coco, args.images, mapping, progress=False)
        finally:
            detector.close()
    seen = set(result["image_ids"])
    annotations = [a for a in coco.dataset["annotations"] if a["image_id"] in seen]
    scores, hits, total = match(result["detections"], annotations, sorted(set(mapping.values())))
    curve = f1_curve(scores, hits, total)
    peak = best_threshold(curve)
    if peak["threshold"] is None:
        raise EdgeEdetError("the model made no detections on the validation images; nothing to pick from")
    picked = math.floor(peak["threshold"] * 100) / 100  # rounded down: keeps every box the peak keeps
    chosen = at_threshold(curve, picked)
    print(f"{args.weights} ({args.model}) on {args.annotations}: {len(seen)} images, {total} ground-truth boxes, "
          f"{len(scores)} detections at the 0.001 floor; matching at IoU >= 0.5")
    print(" threshold  precision  recall     F1")
    for row in [at_threshold(curve, t) for t in SHOWN]:
        print(f"{row['threshold']:10.2f}  {row['precision']:9.3f}  {row['recall']:6.3f}  {row['f1']:5.3f}")
    print(f"F1 peak at score {peak['threshold']:.4f}: precision {peak['precision']:.3f}, recall {peak['recall']:.3f}, "
          f"F1 {peak['f1']:.3f}")
    print(f"default threshold {picked:.2f}: precision {chosen['precision']:.3f}, recall {chosen['recall']:.3f}, "
          f"F1 {chosen['f1']:.3f}")
    if args.write:
        target = bundled_facts_path(args.weights)
        write_json_atomic(target, {
            "default_threshold": picked,
            "picked_by": "F1 peak on " + os.path.relpath(args.annotations, SHARED) + " at IoU >= 0.5, rounded down "
                         "to 0.01 (python scripts/pick_threshold.py --weights " + args.weights + " --write)",
            "precision": round(chosen["precision"], 4), "recall": round(chosen["recall"], 4),
            "f1": round(chosen["f1"], 4), "images": len(seen), "ground_truth_boxes": total})
        print(f"wrote {os.path.relpath(target, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
