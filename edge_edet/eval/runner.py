"""Run a detector over the images of a COCO json and score it: the engine behind `edge-edet eval`.

The detector is anything with the `edge_edet.runtime.Detector` surface (`detect`, `labels`,
`info`, `backend.max_batch`), so ONNX Runtime and TensorRT evaluate through the same code.
Images OpenCV cannot read are skipped, counted and warned about, never fatal on their own:
one corrupt file should not throw away an hour of evaluation.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import cv2

from ..contract.cli import warn
from ..contract.errors import EdgeEdetError
from ..contract.progress import progress_bar
from .coco import STAT_NAMES, detections_to_coco, evaluate, label_to_category, normalise_name

MAX_EVAL_SCORE_THRESHOLD = 0.05  # above this, AP is visibly underestimated
OFFICIAL_SCORE_THRESHOLD = 0.001  # what the official EfficientDet evaluation uses
AP_FIELDS = STAT_NAMES[:6]  # AP, AP50, AP75, AP_small, AP_medium, AP_large


def threshold_warning(score_threshold: float) -> Optional[str]:
    """The sentence to warn with when the graph drops too many low-score boxes for AP."""
    if score_threshold > MAX_EVAL_SCORE_THRESHOLD:
        return (f"the graph's score threshold is {score_threshold:g}, above {MAX_EVAL_SCORE_THRESHOLD:g}: "
                f"AP needs low-score boxes (the official evaluation uses {OFFICIAL_SCORE_THRESHOLD:g}), so this "
                f"AP is an underestimate; re-export with --score-threshold {OFFICIAL_SCORE_THRESHOLD:g}")
    return None


def image_entries(coco, max_images: Optional[int] = None) -> List[dict]:
    """The json's image entries in file order, the first `max_images` when given."""
    entries = list(coco.dataset["images"])
    for entry in entries:
        if not isinstance(entry, dict) or "id" not in entry or "file_name" not in entry:
            raise EdgeEdetError("annotations file has an image entry without 'id' or 'file_name'")
    return entries[:max_images] if max_images else entries


def read_image(path: str):
    """(BGR uint8 image, None) or (None, reason) for a missing or undecodable file."""
    if not os.path.isfile(path):
        return None, "file does not exist"
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None, "OpenCV cannot decode it"
    return image, None


def run_detector(detector, coco, images_dir: str, class_to_category: Dict[int, int],
                 max_images: Optional[int] = None, progress: bool = True,
                 warn: Callable[[str], None] = warn) -> dict:
    """Detections (COCO result rows) for every readable image; unreadable ones skipped and listed."""
    if not os.path.isdir(images_dir):
        raise EdgeEdetError(f"images folder {images_dir} does not exist")
    entries = image_entries(coco, max_images)
    if not entries:
        raise EdgeEdetError("annotations file lists no images")
    step = max(1, int(detector.backend.max_batch))
    rows: List[dict] = []
    evaluated: List[int] = []
    skipped: List[dict] = []
    with progress_bar(len(entries), "eval", "img", enabled=progress) as bar:
        for start in range(0, len(entries), step):
            frames, ids = [], []
            for entry in entries[start:start + step]:
                image, reason = read_image(os.path.join(images_dir, entry["file_name"]))
                if image is None:
                    skipped.append({"file_name": entry["file_name"], "image_id": entry["id"], "reason": reason})
                    warn(f"skipped image {entry['file_name']}: {reason}")
                    continue
                frames.append(image)
                ids.append(entry["id"])
            if frames:
                for image_id, found in zip(ids, detector.detect(frames)):
                    rows.extend(detections_to_coco(image_id, found.boxes, found.scores, found.class_ids,
                                                   class_to_category))
                evaluated.extend(ids)
            bar.update(min(step, len(entries) - start))
    if not evaluated:
        raise EdgeEdetError(f"none of the {len(entries)} images listed in the annotations could be read "
                            f"from {images_dir}; check --images")
    return {"detections": rows, "image_ids": evaluated, "skipped": skipped, "requested": len(entries)}


def evaluate_detector(detector, coco, images_dir: str, max_images: Optional[int] = None,
                      progress: bool = True, warn: Callable[[str], None] = warn) -> dict:
    """The eval report: COCO stats over the categories the model knows, plus what was skipped."""
    warnings: List[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        warn(message)

    mapping = label_to_category(detector.labels, coco)
    if not mapping:
        raise EdgeEdetError("none of the model's labels match a category name in the annotations file")
    for message in (detector.info.weights_warning(), threshold_warning(float(detector.info.score_threshold))):
        if message:
            note(message)
    lowered_from = getattr(detector.backend, "lowered_floor_from", None)
    if lowered_from is not None:
        print(f"edge-edet: scoring with the graph's score floor lowered from {lowered_from:g} to "
             f"{float(detector.info.score_threshold):g} for this evaluation (AP needs the low-score boxes; "
             "--keep-score-threshold keeps it)", file=sys.stderr, flush=True)
    known = {normalise_name(c["name"]): c for c in coco.dataset["categories"]}
    unmatched_labels = sorted({label for label in detector.labels
                               if normalise_name(label) not in known and label.upper() != "N/A"})
    category_ids = sorted(set(mapping.values()))
    not_in_model = sorted(c["name"] for c in coco.dataset["categories"] if c["id"] not in set(category_ids))
    if not_in_model:
        note(f"{len(not_in_model)} dataset categories have no model label and are left out of AP")

    started = time.perf_counter()
    run = run_detector(detector, coco, images_dir, mapping, max_images, progress, warn)
    seconds = time.perf_counter() - started
    metrics = evaluate(coco, run["detections"], run["image_ids"], category_ids=category_ids)
    if run["skipped"]:
        note(f"{len(run['skipped'])} of {run['requested']} images could not be read and were skipped; "
             "AP covers the remaining images")
    return {
        "model_info": detector.info.summary(),
        "backend": detector.backend.describe(),
        "images": {"requested": run["requested"], "evaluated": len(run["image_ids"]),
                   "skipped": len(run["skipped"])},
        "skipped_images": run["skipped"],
        "categories": {"evaluated": len(category_ids), "dataset_categories_not_in_model": not_in_model,
                       "model_labels_not_in_dataset": unmatched_labels},
        "detections": len(run["detections"]),
        "metrics": metrics,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(run["image_ids"]) / seconds, 3) if seconds > 0 else None,
        "warnings": warnings,
    }


def format_metrics(metrics: Dict[str, float], names: Sequence[str] = AP_FIELDS) -> str:
    """One line per stat on pycocotools' 0..1 scale (the one scale of every AP this project prints)."""
    return "\n".join(f"{name:>10}  {metrics[name]:.4f}" for name in names)
