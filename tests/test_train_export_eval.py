"""The train -> export -> eval loop with no extra flags: a run's checkpoint carries its label names
and input size, export writes them into the ONNX, and eval matches them to the dataset by name.
Plus the contradictions export refuses in one sentence, and the training progress lines."""
import io
import json
import os

import cv2
import numpy as np
import onnx
import pytest

from edge_edet.cli import main
from edge_edet.contract.metadata import read_onnx_metadata

SIZE = 256  # lite0 at 256 (a multiple of 128) keeps the loop quick


def _dataset(folder, n=2, size=(120, 160)):
    images_dir = os.path.join(folder, "images")
    os.makedirs(images_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n):
        image = rng.integers(0, 60, size + (3,), dtype=np.uint8)
        x, y = 20 + 10 * i, 15 + 5 * i
        image[y:y + 60, x:x + 50] = (40, 200, 240)
        cv2.imwrite(os.path.join(images_dir, f"{i}.jpg"), image)
        images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": size[1], "height": size[0]})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 3, "bbox": [x, y, 50, 60], "iscrowd": 0})
    path = os.path.join(folder, "ann.json")
    with open(path, "w") as handle:
        json.dump({"images": images, "annotations": annotations, "categories": [{"id": 3, "name": "thing"}]}, handle)
    return images_dir, path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from edge_edet.train.trainer import Trainer, TrainOptions

    folder = str(tmp_path_factory.mktemp("loop"))
    images_dir, path = _dataset(os.path.join(folder, "data"))
    run = os.path.join(folder, "run")
    Trainer(TrainOptions(model="lite0", train_images=images_dir, train_annotations=path, val_images=images_dir,
                         val_annotations=path, output=run, epochs=1, batch_size=2, input_size=str(SIZE),
                         init="none", workers=0, progress=False, max_steps_per_epoch=1, eval_batch_size=2)).fit()
    return {"folder": folder, "images": images_dir, "annotations": path, "best": os.path.join(run, "best.pth")}


@pytest.mark.slow
def test_train_export_eval_needs_no_labels_flag(trained, capsys):
    out = os.path.join(trained["folder"], "model.onnx")
    # docs/training.md's export, as written: the graph keeps the default score floor (0.4)
    assert main(["export", "--model", "lite0", "--weights", trained["best"], "--output", out]) == 0
    info = read_onnx_metadata(out)
    assert info.labels == ["thing"] and info.input_size == (SIZE, SIZE) and info.weights == trained["best"]
    assert info.score_threshold == 0.4
    assert "1 class," in capsys.readouterr().out  # not "1 classes"
    report = os.path.join(trained["folder"], "report.json")
    assert main(["eval", "--model", out, "--images", trained["images"], "--annotations", trained["annotations"],
                 "--no-progress", "--output", report]) == 0
    captured = capsys.readouterr()
    assert "score floor lowered from 0.4 to 0.001" in captured.err
    with open(report) as handle:
        result = json.load(handle)
    assert result["categories"]["evaluated"] == 1 and result["images"]["evaluated"] == 2
    # a one-step model scores far under 0.4: eval still sees its boxes (100 per image, the graph's cap)
    assert result["detections"] == 2 * info.max_detections
    assert "2 images, 1 category, 200 detections" in captured.out
    assert 0.0 <= result["metrics"]["AP50"] <= 1.0
    kept = os.path.join(trained["folder"], "kept.json")
    assert main(["eval", "--model", out, "--images", trained["images"], "--annotations", trained["annotations"],
                 "--no-progress", "--keep-score-threshold", "--output", kept]) == 0
    with open(kept) as handle:
        assert json.load(handle)["detections"] == 0  # the floor as exported: what the user saw
    assert "AP is an underestimate" in capsys.readouterr().err


def _one_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.slow  # the trained fixture
def test_export_refuses_a_checkpoint_of_another_model(trained, tmp_path, capsys):
    err = _one_error(capsys, ["export", "--model", "d0", "--weights", trained["best"],
                              "--output", str(tmp_path / "x.onnx")])
    assert "was trained as lite0, not d0" in err and "--model lite0" in err
    assert not os.listdir(tmp_path)


@pytest.mark.slow  # the trained fixture
def test_export_refuses_a_labels_file_of_another_count(trained, tmp_path, capsys):
    labels = tmp_path / "two.labels"
    labels.write_text("thing\nother\n")
    err = _one_error(capsys, ["export", "--model", "lite0", "--weights", trained["best"], "--labels", str(labels),
                              "--output", str(tmp_path / "x.onnx")])
    assert "has 2 labels" in err and "1 class (thing)" in err
    assert sorted(os.listdir(tmp_path)) == ["two.labels"]


@pytest.mark.slow  # the trained fixture
def test_checkpoint_facts_of_a_run_and_of_the_bundled_model(trained):
    from edge_edet.model.weights import checkpoint_facts

    facts = checkpoint_facts(trained["best"])
    assert (facts.model_name, facts.labels, facts.input_size) == ("lite0", ["thing"], (SIZE, SIZE))
    bundled = checkpoint_facts("person")
    assert bundled.model_name == "lite0" and bundled.labels == ["person"]
    assert 0.05 < bundled.default_threshold < 0.9  # picked by scripts/pick_threshold.py
    assert checkpoint_facts(None).labels is None and checkpoint_facts("coco").model_name is None


def test_progress_prints_one_line_per_n_steps_with_the_budget_eta():
    from edge_edet.train.progress import TrainProgress

    stream = io.StringIO()
    progress = TrainProgress(total_steps=100, budget_s=120.0, every=10, stream=stream, tty=False)
    for step in range(1, 31):
        progress.update(step, 1, 5, loss=1.0 / step, lr=1e-3, elapsed=60.0 + step)
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/100", "10/100", "20/100", "30/100"]
    assert "loss 0.0333" in lines[-1] and "(epoch 1/5)" in lines[-1] and "elapsed 01:30" in lines[-1]
    # 70 steps left at 10 s a step, but only 30 s of the budget: the budget ends the run
    progress._mark = (0, 0.0)
    line = progress.line(30, 1, 5, loss=0.5, lr=1e-3, elapsed=90.0, now=300.0)
    assert line.endswith("00:30 left (budget)"), line


def test_eta_without_a_budget_follows_the_pace():
    from edge_edet.train.progress import TrainProgress

    progress = TrainProgress(total_steps=10, every=1, stream=io.StringIO(), tty=False)
    progress._mark = (0, 0.0)
    assert progress.eta(step=2, elapsed=4.0, now=4.0) == (16.0, "steps")  # 2 s a step, 8 steps to go


@pytest.mark.slow  # the trained fixture
def test_budget_includes_validation(trained, tmp_path):
    """A budget too small for setup plus one validation pass is refused; otherwise training stops
    early enough for the last validation to fit."""
    from edge_edet.contract.errors import EdgeEdetError
    from edge_edet.train.trainer import Trainer, TrainOptions

    options = dict(model="lite0", train_images=trained["images"], train_annotations=trained["annotations"],
                   val_images=trained["images"], val_annotations=trained["annotations"], epochs=1, batch_size=2,
                   input_size=str(SIZE), init="none", workers=0, progress=False, eval_batch_size=2)
    import edge_edet.train.trainer as trainer_module

    read = []
    real_read_coco = trainer_module.read_coco

    def recording_read_coco(annotations, *args, **kwargs):
        read.append(kwargs.get("need_boxes", False))
        return real_read_coco(annotations, *args, **kwargs)

    trainer_module.read_coco = recording_read_coco
    try:
        with pytest.raises(EdgeEdetError, match="leaves no time to train"):
            Trainer(TrainOptions(output=str(tmp_path / "a"), max_minutes=0.001, **options))
    finally:
        trainer_module.read_coco = real_read_coco
    assert read == [False]  # refused first: after the validation set, before the training set is read
    assert not (tmp_path / "a").exists()
    trainer = Trainer(TrainOptions(output=str(tmp_path / "b"), max_minutes=10, **options))
    trainer.eval_reserve = 600.0 - trainer.elapsed() + 1.0  # as if validation took the rest of the budget
    assert trainer.time_is_up()
    trainer.eval_reserve = 0.0
    assert not trainer.time_is_up()
    assert trainer.progress() == pytest.approx(trainer.elapsed() / 600.0, abs=1e-3)  # no step yet: the clock's share
