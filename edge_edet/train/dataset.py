"""COCO-format detection data for training: parse and check the json once, then serve augmented
images with their anchor targets.

User data is checked, not trusted: annotations that point at missing image files, boxes of zero or
negative size, boxes outside their image and categories the model was not told about are skipped,
dropped or clipped and *counted*; `DatasetReport.summary()` turns the counts into one warning line.
An empty dataset is an error.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..contract.errors import EdgeEdetError
from ..eval.coco import normalise_name, read_coco_json
from .assigner import assign
from .augment import clip_boxes, eval_transform, normalise, train_transform


CLIP_TOLERANCE = 0.5  # pixels: rounding overshoot from downscaling is clipped silently


class DatasetError(EdgeEdetError, ValueError):
    """Training data that cannot be used (missing folder, malformed json, nothing left to train on)."""


@dataclass
class DatasetReport:
    """What was skipped, dropped or clipped while reading one annotations file."""

    name: str
    images: int = 0
    boxes: int = 0
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> Optional[str]:
        """One warning sentence, or None when the file was clean."""
        words = {
            "missing_images": "images whose files are missing were skipped",
            "unreadable_images": "images that OpenCV cannot read were skipped",
            "bad_boxes": "boxes of zero or negative size were dropped",
            "outside_boxes": "boxes entirely outside their image were dropped",
            "clipped_boxes": "boxes reaching outside their image were clipped",
            "unknown_category": "boxes of classes the model was not told about were dropped",
            "orphan_annotations": "annotations of images not listed in the file were dropped",
            "crowd_boxes": "crowd boxes (iscrowd=1) were left out",
        }
        parts = [f"{count} {words[key]}" for key, count in sorted(self.counts.items()) if count]
        if not parts:
            return None
        return f"{self.name}: " + "; ".join(parts) + f" ({self.images} images, {self.boxes} boxes kept)."


@dataclass
class Record:
    image_id: int
    path: str
    width: int
    height: int
    boxes: np.ndarray  # [K, 4] xyxy pixels
    labels: np.ndarray  # [K] class indices


def category_labels(annotations_path: str) -> List[str]:
    """Category names of a COCO json, ordered by category id: the default label list of a run."""
    data = _read_json(annotations_path)
    categories = sorted(data["categories"], key=lambda c: c["id"])
    if not categories:
        raise DatasetError(f"annotations file {annotations_path} lists no categories")
    return [str(c["name"]) for c in categories]


def _read_json(path: str) -> dict:
    try:
        return read_coco_json(path)
    except EdgeEdetError as exc:  # same sentence, as the training data error
        raise DatasetError(str(exc)) from None


def read_coco(annotations_path: str, images_dir: str, labels: Sequence[str], check_files: bool = True,
              need_boxes: bool = False):
    """(records, report): every listed image whose file exists, with its boxes as class indices into
    `labels` (matched to the json's categories by name)."""
    if not os.path.isdir(images_dir):
        raise DatasetError(f"image folder {images_dir} does not exist")
    data = _read_json(annotations_path)
    report = DatasetReport(os.path.basename(annotations_path))
    index_of = {normalise_name(name): i for i, name in enumerate(labels)}
    category_to_class = {}
    for category in data["categories"]:
        try:
            name = normalise_name(category["name"])
            if name in index_of:
                category_to_class[category["id"]] = index_of[name]
        except (KeyError, TypeError):
            raise DatasetError(f"annotations file {annotations_path} has a category without id or name") from None
    by_image: Dict[int, list] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    records = []
    listed = set()
    for image in data["images"]:
        try:
            image_id, file_name = int(image["id"]), str(image["file_name"])
        except (KeyError, TypeError, ValueError):
            raise DatasetError(f"annotations file {annotations_path} has an image entry without id or file_name") from None
        listed.add(image_id)
        path = os.path.join(images_dir, file_name)
        if check_files and not os.path.isfile(path):
            report.counts["missing_images"] += 1
            continue
        width, height = int(image.get("width") or 0), int(image.get("height") or 0)
        if not (width and height):
            frame = cv2.imread(path)
            if frame is None:
                report.counts["unreadable_images"] += 1
                continue
            height, width = frame.shape[:2]
        boxes, classes = [], []
        for ann in by_image.get(image_id, []):
            if ann.get("iscrowd", 0):
                report.counts["crowd_boxes"] += 1
                continue
            if ann.get("category_id") not in category_to_class:
                report.counts["unknown_category"] += 1
                continue
            try:
                x, y, w, h = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                report.counts["bad_boxes"] += 1
                continue
            if not (w > 0 and h > 0) or not np.isfinite([x, y, w, h]).all():
                report.counts["bad_boxes"] += 1
                continue
            # float64 until clipped to the image: a box at 1e308 is outside it, not a float32 overflow
            box = np.array([[x, y, x + w, y + h]], np.float64)
            clipped, _ = clip_boxes(box, np.zeros(1, np.int64), width, height, min_side=1e-3)
            if clipped.shape[0] == 0:
                report.counts["outside_boxes"] += 1
                continue
            if np.abs(clipped - box).max() > CLIP_TOLERANCE:
                report.counts["clipped_boxes"] += 1
            boxes.append(clipped[0].astype(np.float32))
            classes.append(category_to_class[ann["category_id"]])
        records.append(Record(image_id, path, width, height, np.asarray(boxes, np.float32).reshape(-1, 4),
                              np.asarray(classes, np.int64)))
        report.boxes += len(boxes)
    report.counts["orphan_annotations"] += sum(len(v) for k, v in by_image.items() if k not in listed)
    report.images = len(records)
    if need_boxes and records and not report.boxes:
        raise DatasetError(f"{annotations_path} has no usable box for the classes {', '.join(labels)} "
                           f"({report.summary() or 'every box was skipped'}); nothing to train on")
    if not records:
        raise DatasetError(f"{annotations_path} with images in {images_dir} leaves no image to use "
                           f"({len(data['images'])} listed, {report.counts['missing_images']} missing)")
    return records, report


class DetectionDataset:
    """Indexable training (augmented, with anchor targets) or evaluation (letterbox only) samples."""

    def __init__(self, records: List[Record], cfg, anchors: np.ndarray, train: bool,
                 scale_range=(0.1, 2.0), flip_prob: float = 0.5, seed: int = 0):
        from .augment import pad_color_bgr

        self.records = records
        self.cfg = cfg
        self.anchors = anchors
        self.train = train
        self.scale_range = scale_range
        self.flip_prob = flip_prob
        self.seed = seed
        self.epoch = 0
        self.pad_bgr = pad_color_bgr(cfg.mean)

    def __len__(self) -> int:
        return len(self.records)

    def _read(self, record: Record) -> np.ndarray:
        frame = cv2.imread(record.path, cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"image {record.path} cannot be read")
        return frame

    def __getitem__(self, index: int):
        record = self.records[index]
        frame = self._read(record)
        if not self.train:
            image, scale = eval_transform(frame, self.cfg.input_size, self.pad_bgr)
            return normalise(image, self.cfg.mean, self.cfg.std), record.image_id, scale
        rng = np.random.default_rng((self.seed, self.epoch, index))
        image, boxes, labels = train_transform(frame, record.boxes, record.labels, self.cfg.input_size, rng,
                                               self.scale_range, self.flip_prob, self.pad_bgr)
        cls_target, box_target = assign(self.anchors, boxes, labels)
        return normalise(image, self.cfg.mean, self.cfg.std), cls_target, box_target
