"""`edge-edet eval`: COCO scoring, image iteration, bad input, and an exported model end to end."""
import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_edet.cli import main
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.eval.coco import detections_to_coco, evaluate, load_coco
from edge_edet.eval.runner import AP_FIELDS, threshold_warning
from edge_edet.contract.metadata import DeployInfo, write_onnx_metadata

from conftest import shared_path

# -- COCO level: the scoring itself -------------------------------------------------------------


def _ground_truth_as_detections(coco, shift_fraction=0.0):
    rows = []
    for ann in coco.dataset["annotations"]:
        x, y, w, h = ann["bbox"]
        rows.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                     "bbox": [x + shift_fraction * w, y + shift_fraction * h, w, h], "score": 1.0})
    return rows


def test_ground_truth_as_detections_scores_ap_one_on_coco80():
    coco = load_coco(shared_path("data", "coco80_val", "annotations.json"))
    metrics = evaluate(coco, _ground_truth_as_detections(coco))
    for name in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"):
        assert metrics[name] == pytest.approx(1.0), name


def test_shifted_ground_truth_scores_lower():
    coco = load_coco(shared_path("data", "coco80_val", "annotations.json"))
    exact = evaluate(coco, _ground_truth_as_detections(coco))["AP"]
    shifted = evaluate(coco, _ground_truth_as_detections(coco, shift_fraction=0.2))
    assert shifted["AP"] < exact - 0.2
    assert shifted["AP50"] > shifted["AP75"]  # a 20% shift still overlaps at IoU 0.5 more often than at 0.75


def test_evaluation_restricted_to_the_models_categories():
    coco = load_coco(shared_path("data", "coco80_val", "annotations.json"))
    people = [row for row in _ground_truth_as_detections(coco) if row["category_id"] == 1]
    assert evaluate(coco, people)["AP"] < 0.1  # 79 categories without a single detection
    assert evaluate(coco, people, category_ids=[1])["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("content,fragment", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"images": []}), "is not COCO format"),
    (json.dumps({"images": [{"id": 1}], "annotations": [{"bbox": [0, 0, 1, 1]}], "categories": []}), "malformed"),
])
def test_malformed_annotations_are_one_sentence_and_exit_2(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(EdgeEdetError, match=fragment):
        load_coco(str(path))
    code = main(["eval", "--model", str(tmp_path / "absent.onnx"), "--images", str(tmp_path),
                 "--annotations", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("edge-edet: error: ") and fragment in err and "\n" not in err


def test_threshold_warning_only_above_005():
    assert threshold_warning(0.001) is None and threshold_warning(0.05) is None
    assert "0.001" in threshold_warning(0.4)


# -- runner level: a real ONNX graph that always detects the same boxes --------------------------
# The graph is genuine ONNX run by ONNX Runtime through the real Detector; its outputs are constants,
# so the ground truth is known exactly without training a model.

INPUT = 64
LABELS = ["person", "N/A", "cat"]  # a 90-id style list with a gap: classes map to the json by name
BOXES = np.array([[4, 8, 20, 30], [30, 10, 60, 50]], np.float32)  # letterbox pixels
CLASSES = np.array([0, 2], np.int32)
SCORES = np.array([0.9, 0.8], np.float32)
FRAME_HW = (96, 128)  # letterbox scale 0.5: frame boxes are BOXES * 2


def constant_detector_onnx(path, score_threshold=0.001):
    k = len(BOXES)
    consts = {"num_detections": np.array([[k]], np.int32), "detection_boxes": BOXES[None],
              "detection_scores": SCORES[None], "detection_classes": CLASSES[None]}
    nodes = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name + "_value"))
             for name, value in consts.items()]
    types = {np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT}
    graph = helper.make_graph(
        nodes, "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, INPUT, INPUT, 3])],
        [helper.make_tensor_value_info(name, types[v.dtype], list(v.shape)) for name, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_onnx_metadata(model, DeployInfo(model="lite0", input_size=(INPUT, INPUT), labels=LABELS,
                                          mean=(127.5,) * 3, std=(127.5,) * 3, score_threshold=score_threshold,
                                          weights="constant test graph"))
    onnx.save(model, str(path))
    return str(path)


def coco_dataset(folder, count=3, shift=0.0, corrupt=()):
    """Images plus a json whose ground truth is the constant graph's boxes in frame pixels."""
    images_dir = folder / "images"
    images_dir.mkdir()
    rng = np.random.default_rng(0)
    data = {"images": [], "annotations": [],
            "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]}
    for index in range(count):
        name = f"{index:04d}.jpg"
        if name in corrupt:
            (images_dir / name).write_bytes(b"this is not a jpeg")
        else:
            cv2.imwrite(str(images_dir / name), rng.integers(0, 255, FRAME_HW + (3,), dtype=np.uint8))
        data["images"].append({"id": 100 + index, "file_name": name, "height": FRAME_HW[0], "width": FRAME_HW[1]})
        for box, cls in zip(BOXES * 2, CLASSES):
            x1, y1, x2, y2 = (float(v) for v in box)
            w, h = x2 - x1, y2 - y1
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": 100 + index,
                                        "category_id": {0: 1, 2: 17}[int(cls)], "iscrowd": 0, "area": w * h,
                                        "bbox": [x1 + shift * w, y1, w, h]})
    path = folder / "annotations.json"
    path.write_text(json.dumps(data))
    return str(images_dir), str(path)


def _eval(tmp_path, capsys, *extra, score_threshold=0.001, **dataset):
    model = constant_detector_onnx(tmp_path / "constant.onnx", score_threshold)
    images, annotations = coco_dataset(tmp_path, **dataset)
    report_path = tmp_path / "report.json"
    code = main(["eval", "--model", model, "--images", images, "--annotations", annotations,
                 "--output", str(report_path), "--no-progress", *extra])
    out, err = capsys.readouterr()
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return code, report, out, err


def test_exact_detections_score_ap_one_through_the_runtime(tmp_path, capsys):
    code, report, out, err = _eval(tmp_path, capsys)
    assert code == 0, err
    assert report["metrics"]["AP"] == pytest.approx(1.0)
    assert report["metrics"]["AP50"] == pytest.approx(1.0)
    assert report["images"] == {"requested": 3, "evaluated": 3, "skipped": 0}
    assert report["detections"] == 6
    # 'dog' has no model label, so it is left out of AP (and said so); 'N/A' is not a complaint
    assert report["categories"]["evaluated"] == 2
    assert report["categories"]["dataset_categories_not_in_model"] == ["dog"]
    assert report["categories"]["model_labels_not_in_dataset"] == []
    assert set(AP_FIELDS) <= set(report["metrics"])
    assert "AP50" in out


def test_shifted_ground_truth_scores_lower_through_the_runtime(tmp_path, capsys):
    code, report, _, err = _eval(tmp_path, capsys, shift=0.3)
    assert code == 0, err
    assert 0.0 <= report["metrics"]["AP"] < 0.9
    assert report["metrics"]["AP75"] < report["metrics"]["AP50"]


def test_max_images_limits_the_run(tmp_path, capsys):
    code, report, _, _ = _eval(tmp_path, capsys, "--max-images", "2", count=4)
    assert code == 0
    assert report["images"] == {"requested": 2, "evaluated": 2, "skipped": 0}


def test_high_score_threshold_warns(tmp_path, capsys):
    code, report, _, err = _eval(tmp_path, capsys, score_threshold=0.4)
    assert code == 0
    assert "score threshold is 0.4" in err and "0.001" in err
    assert any("0.001" in w for w in report["warnings"])


def test_undecodable_image_is_skipped_counted_warned_and_exits_nonzero(tmp_path, capsys):
    code, report, _, err = _eval(tmp_path, capsys, count=3, corrupt=("0001.jpg",))
    assert code == 1
    assert "skipped image 0001.jpg: OpenCV cannot decode it" in err
    assert "1 of 3 images could not be read" in err
    assert report["images"] == {"requested": 3, "evaluated": 2, "skipped": 1}
    assert report["skipped_images"][0]["file_name"] == "0001.jpg"
    assert report["metrics"]["AP"] == pytest.approx(1.0)  # AP over the images that were read


def test_no_readable_image_is_an_error(tmp_path, capsys):
    code, report, _, err = _eval(tmp_path, capsys, count=2, corrupt=("0000.jpg", "0001.jpg"))
    assert code == 2 and report is None
    assert "none of the 2 images" in err


def test_onnx_without_our_metadata_is_one_sentence_and_exit_2(tmp_path, capsys):
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "foreign",
                              [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 8, 8, 3])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    images, annotations = coco_dataset(tmp_path)
    code = main(["eval", "--model", str(foreign), "--images", images, "--annotations", annotations])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("edge-edet: error: ") and "no edge_edet metadata" in err and "\n" not in err


def test_labels_map_by_name_for_both_coco_conventions():
    from edge_edet.eval.coco import label_to_category

    coco = load_coco(shared_path("data", "coco80_val", "annotations.json"))
    names80 = [c["name"] for c in sorted(coco.dataset["categories"], key=lambda c: c["id"])]
    by_name = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    mapping80 = label_to_category(names80, coco)
    assert len(mapping80) == 80 and mapping80[0] == by_name["person"]
    names90 = ["N/A"] * 90
    for name, cid in by_name.items():
        names90[cid - 1] = name
    mapping90 = label_to_category(names90, coco)
    assert len(mapping90) == 80 and all(mapping90[cid - 1] == cid for cid in by_name.values())
    rows = detections_to_coco(7, [[0, 0, 10, 20]], [0.5], [by_name["toothbrush"] - 1], mapping90)
    assert rows == [{"image_id": 7, "category_id": by_name["toothbrush"], "bbox": [0.0, 0.0, 10.0, 20.0],
                     "score": 0.5}]


# -- an exported model, end to end on the real coco80_val ---------------------------------------


@pytest.fixture(scope="module")
def lite0_onnx(deploy_lite0):
    """The suite's random-weight lite0 at 256 with the evaluation threshold (AP is ~0; the run is what is tested)."""
    return deploy_lite0


def test_coco80_val_runs_end_to_end(lite0_onnx, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    code = main(["eval", "--model", lite0_onnx, "--images", shared_path("data", "coco80_val", "images"),
                 "--annotations", shared_path("data", "coco80_val", "annotations.json"),
                 "--output", str(report_path), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["images"] == {"requested": 80, "evaluated": 80, "skipped": 0}
    assert report["categories"]["evaluated"] == 80  # 90-id labels with 'N/A' gaps, matched by name
    assert report["model_info"]["model"] == "lite0" and report["model_info"]["score_threshold"] == 0.001
    for name in AP_FIELDS:
        assert 0.0 <= report["metrics"][name] <= 1.0
    assert report["detections"] > 0
    assert len(report["warnings"]) == 1 and "random weights" in report["warnings"][0]  # the suite's model: said once
    assert "score threshold" not in err
