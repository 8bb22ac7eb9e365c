"""COCO AP through pycocotools, with the model's labels mapped to the dataset's category ids by name.

Both COCO conventions work because mapping is by name: a 90-id label list (with 'N/A' gaps, as
effdet's checkpoints) and an 80-class list both resolve to the dataset's own ids.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Dict, List, Optional, Sequence

from ..contract.errors import EdgeEdetError

STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def normalise_name(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def read_coco_json(path: str) -> dict:
    """The json of a COCO annotations file, checked for the three lists COCO needs."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise EdgeEdetError(f"annotations file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EdgeEdetError(f"annotations file {path} is not valid JSON") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise EdgeEdetError(f"annotations file {path} is not COCO format "
                            "(needs lists 'images', 'annotations' and 'categories')")
    problem = coco_entry_problem(data)
    if problem:
        raise EdgeEdetError(f"annotations file {path}: {problem}")
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def coco_entry_problem(data: dict) -> Optional[str]:
    """The first entry of a COCO json whose types are wrong, as one phrase; None when all are usable.
    Checked before any work, so pycocotools or training never meet a list where an id belongs, nor two
    entries sharing an id (the boxes of one would land on the other)."""
    image_ids: Dict[int, int] = {}
    for index, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not _is_int(image.get("id")) or not isinstance(image.get("file_name"), str):
            return f"images[{index}] needs an integer 'id' and a string 'file_name'"
        if image["id"] in image_ids:
            return (f"images[{index}] and images[{image_ids[image['id']]}] share the id {image['id']}; each image "
                    f"needs its own id")
        image_ids[image["id"]] = index
        for key in ("width", "height"):
            if key in image and image[key] is not None and not (_is_number(image[key]) and image[key] >= 0):
                return f"images[{index}] has '{key}' {image[key]!r}, not a number of pixels"
    category_ids: Dict[int, int] = {}
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not _is_int(category.get("id")) or not isinstance(category.get("name"), str):
            return f"categories[{index}] needs an integer 'id' and a string 'name'"
        if category["id"] in category_ids:
            return (f"categories[{index}] and categories[{category_ids[category['id']]}] share the id "
                    f"{category['id']}; each category needs its own id")
        category_ids[category["id"]] = index
    annotation_ids: Dict[object, int] = {}
    for index, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            return f"annotations[{index}] is {ann!r}, not an object"
        ann_id = ann.get("id")
        if isinstance(ann_id, (int, str)) and not isinstance(ann_id, bool):
            if ann_id in annotation_ids:
                return (f"annotations[{index}] and annotations[{annotation_ids[ann_id]}] share the id {ann_id}; "
                        f"each annotation needs its own id")
            annotation_ids[ann_id] = index
        if not _is_int(ann.get("image_id")) or not _is_int(ann.get("category_id")):
            return f"annotations[{index}] needs integer 'image_id' and 'category_id'"
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            return f"annotations[{index}] has bbox {bbox!r}; a bbox is [x, y, width, height] in numbers"
    return None


def load_coco(annotations_path: str):
    """pycocotools COCO object, or one clear error for a missing or malformed file."""
    try:
        from pycocotools.coco import COCO
    except ImportError:
        raise EdgeEdetError("COCO evaluation needs pycocotools: pip install pycocotools") from None
    data = read_coco_json(annotations_path)
    for ann in data["annotations"]:  # pycocotools needs 'area'; hand-made files often omit it
        if isinstance(ann, dict) and "area" not in ann and isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco.createIndex()
        except (KeyError, TypeError) as exc:
            raise EdgeEdetError(f"annotations file {annotations_path} is malformed ({exc!r} in an entry)") from None
    return coco


def label_to_category(labels: Sequence[str], coco) -> Dict[int, int]:
    """{model class index: dataset category id} for the labels the dataset knows (by name)."""
    by_name = {normalise_name(c["name"]): c["id"] for c in coco.dataset["categories"]}
    return {index: by_name[normalise_name(label)] for index, label in enumerate(labels)
            if normalise_name(label) in by_name}


def evaluate(coco, detections: List[dict], image_ids: Sequence[int] = None,
             category_ids: Sequence[int] = None) -> Dict[str, float]:
    """COCO bbox stats for `detections` (dicts: image_id, category_id, bbox [x, y, w, h], score).

    `image_ids` restricts the evaluation to the images that were actually run; `category_ids`
    to the categories the model can predict (a person model is not scored on 80 classes).
    """
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return {name: 0.0 for name in STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        results = coco.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(coco, results, "bbox")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        if category_ids is not None:
            evaluator.params.catIds = list(category_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(max(value, 0.0)) for name, value in zip(STAT_NAMES, evaluator.stats)}


def detections_to_coco(image_id: int, boxes, scores, class_ids, class_to_category: Dict[int, int]) -> List[dict]:
    """Rows for `evaluate` from one image's xyxy boxes; classes the dataset lacks are dropped."""
    rows = []
    for box, score, cid in zip(boxes, scores, class_ids):
        category = class_to_category.get(int(cid))
        if category is None:
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        rows.append({"image_id": int(image_id), "category_id": int(category),
                     "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return rows
