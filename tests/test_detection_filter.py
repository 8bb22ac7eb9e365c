"""The runtime's display filter (--threshold, --classes, the model's default threshold), the F1
threshold sweep behind scripts/pick_threshold.py, and the random-weights warnings."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, shared_path
from edge_edet.commands.run import main as run_main
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo, MetadataError
from edge_edet.eval.threshold import at_threshold, best_threshold, f1_curve, match
from edge_edet.runtime.detection_filter import DetectionFilter, class_ids_for, make_filter
from edge_edet.runtime.detections import Detections


def _info(**kw):
    base = dict(model="lite0", input_size=(64, 64), labels=["person", "car", "dog"], mean=(0, 0, 0), std=(1, 1, 1),
                score_threshold=0.1)
    base.update(kw)
    return DeployInfo(**base)


def _found():
    return Detections(np.arange(16, dtype=np.float32).reshape(4, 4), np.array([0.9, 0.5, 0.3, 0.15], np.float32),
                      np.array([0, 1, 2, 0], np.int32), ["person", "car", "dog", "person"])


def test_filter_keeps_scores_at_or_above_the_threshold_and_the_named_classes():
    kept = DetectionFilter(0.3, [0, 2])(_found())
    assert kept.labels == ["person", "dog"] and kept.scores.tolist() == pytest.approx([0.9, 0.3])
    assert kept.boxes.shape == (2, 4) and kept.class_ids.tolist() == [0, 2]
    assert len(DetectionFilter(0.95)(_found())) == 0


def test_default_is_the_models_own_threshold_never_below_the_graph_floor():
    assert make_filter(_info(default_threshold=0.31)).threshold == pytest.approx(0.31)
    assert make_filter(_info()).threshold == pytest.approx(0.1)  # no default: the graph's floor
    assert make_filter(_info(default_threshold=0.31), threshold=0.6).threshold == pytest.approx(0.6)
    said = []
    assert make_filter(_info(), threshold=0.05, warn=said.append).threshold == pytest.approx(0.1)
    assert len(said) == 1 and "below this model's graph floor 0.1" in said[0]


@pytest.mark.parametrize("value", [1.5, float("nan"), -0.1, float("inf")])
def test_threshold_out_of_range_is_refused(value):
    with pytest.raises(EdgeEdetError, match="--threshold must be a number from 0 to 1"):
        make_filter(_info(), threshold=value)


def test_classes_by_name_and_unknown_names_list_the_known_ones():
    assert class_ids_for(["Person", "dog"], ["person", "car", "dog"]) == [0, 2]
    with pytest.raises(EdgeEdetError, match=r"--classes unicorn: not a label of this model; it knows person, car, dog"):
        class_ids_for(["unicorn"], ["person", "car", "dog"])


def test_default_threshold_travels_in_the_metadata():
    info = _info(default_threshold=0.31)
    again = DeployInfo.from_json(info.to_json())
    assert again.default_threshold == pytest.approx(0.31) and again.display_threshold == pytest.approx(0.31)
    assert DeployInfo.from_json(_info().to_json()).default_threshold is None  # older artifacts: no field
    with pytest.raises(MetadataError, match="default threshold"):
        _info(default_threshold=float("nan"))
    assert _info(weights="random").weights_warning().startswith("this lite0 model was exported with random weights")
    assert _info(weights="person").weights_warning() is None


# -- the run command ----------------------------------------------------------------------------------
def _run(capsys, *argv):
    code = run_main(list(argv), prog="webcam.py")
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, words", [
    (["--threshold", "1.5"], "--threshold must be a number from 0 to 1, got 1.5"),
    (["--threshold", "nan"], "--threshold must be a number from 0 to 1, got nan"),
    (["--classes", "person,unicorn"], "--classes unicorn: not a label of this model; it knows person, bicycle"),
])
def test_bad_threshold_or_class_is_one_sentence(deploy_lite0, tmp_path, capsys, argv, words):
    video = shared_path("data", "video", "cars_short.mp4")
    out = str(tmp_path / "out.mp4")
    code, _, err = _run(capsys, "--engine", deploy_lite0, "--source", video, "--headless", "--output", out, *argv)
    assert code == 2 and words in err, err
    assert err.strip().splitlines()[-1].startswith("webcam.py: error:") and "Traceback" not in err
    assert not os.listdir(tmp_path)  # nothing half-written


def test_every_sink_sees_the_filtered_detections(deploy_lite0, tmp_path, capsys):
    video = shared_path("data", "video", "cars_short.mp4")
    rows = {}

    def detections(name, *extra):
        path = str(tmp_path / f"{name}.jsonl")
        code, _, err = _run(capsys, "--engine", deploy_lite0, "--source", video, "--headless", "--max-frames", "3",
                            "--json", path, *extra)
        assert code == 0, err
        assert err.count("random weights") == 1  # the suite's model has random weights: said once
        return [d for line in open(path) for d in json.loads(line)["detections"]]

    everything = detections("all")
    from collections import Counter

    names = [name for name, _ in Counter(d["label"] for d in everything).most_common(2)]
    assert {d["label"] for d in everything} - set(names)  # unfiltered: other labels too
    wanted = sorted(d["score"] for d in everything if d["label"] in names)
    assert len(wanted) >= 2
    middle = len(wanted) // 2
    while middle < len(wanted) - 1 and wanted[middle] == wanted[middle - 1]:
        middle += 1
    cut = (wanted[middle - 1] + wanted[middle]) / 2  # between two scores (JSON rounds them): some kept, some hidden
    kept = detections("some", "--threshold", repr(cut), "--classes", ",".join(names))
    expected = [d for d in everything if d["label"] in names and d["score"] >= cut]
    assert 0 < len(kept) == len(expected) < len(wanted)
    assert all(d["label"] in names and d["score"] >= cut for d in kept)


# -- picking the threshold ----------------------------------------------------------------------------
def test_f1_sweep_matches_greedily_at_iou_half_and_skips_crowd_regions():
    anns = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
            {"image_id": 1, "category_id": 1, "bbox": [20, 0, 10, 10]},
            {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "iscrowd": 1},
            {"image_id": 1, "category_id": 2, "bbox": [80, 80, 5, 5]}]  # another class: not scored
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},    # TP
            {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.8},    # duplicate: FP
            {"image_id": 1, "category_id": 1, "bbox": [55, 55, 5, 5], "score": 0.7},    # inside the crowd: skipped
            {"image_id": 1, "category_id": 1, "bbox": [21, 1, 10, 10], "score": 0.4},   # TP (IoU 0.68)
            {"image_id": 1, "category_id": 1, "bbox": [90, 0, 10, 10], "score": 0.2}]   # FP
    scores, hits, total = match(dets, anns, [1])
    assert total == 2 and scores.tolist() == [0.9, 0.8, 0.4, 0.2] and hits.tolist() == [True, False, True, False]
    curve = f1_curve(scores, hits, total)
    best = best_threshold(curve)
    assert best["threshold"] == pytest.approx(0.4) and best["recall"] == 1.0
    assert best["precision"] == pytest.approx(2 / 3) and best["f1"] == pytest.approx(0.8)
    assert at_threshold(curve, 0.85)["f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert at_threshold(curve, 0.95)["f1"] == 0.0


# -- random weights and info ----------------------------------------------------------------------------
def test_info_refuses_an_unknown_model_before_importing_torch():
    code = ("import sys; sys.modules['torch'] = None; from edge_edet.cli import main; "
            "sys.exit(main(['info', 'd9']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "unknown model 'd9'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_export_without_weights_warns_and_eval_warns_once(tmp_path, capsys):
    from edge_edet.cli import main

    out = str(tmp_path / "random.onnx")
    assert main(["export", "--model", "lite0", "--input-size", "256", "--score-threshold", "0.001",
                 "--output", out]) == 0
    err = capsys.readouterr().err
    assert "no --weights given: lite0 gets random weights and will make no meaningful detections" in err
    images = shared_path("data", "coco80_val", "images")
    code = main(["eval", "--model", out, "--images", images, "--annotations",
                 shared_path("data", "coco80_val", "annotations.json"), "--max-images", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and err.count("exported with random weights") == 1


@pytest.mark.slow
def test_bundled_export_carries_its_default_threshold(tmp_path):
    from edge_edet.cli import main
    from edge_edet.contract.metadata import read_onnx_metadata
    from edge_edet.model.weights import checkpoint_facts

    out = str(tmp_path / "person.onnx")
    assert main(["export", "--model", "lite0", "--weights", "person", "--output", out]) == 0
    info = read_onnx_metadata(out)
    picked = checkpoint_facts("person").default_threshold
    assert info.default_threshold == pytest.approx(picked) and info.labels == ["person"]
    assert info.score_threshold == pytest.approx(min(0.4, picked))  # the graph keeps what run shows
