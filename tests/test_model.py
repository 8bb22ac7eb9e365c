"""Foundation: the family's parameter counts, anchors, multiply-adds and golden vectors."""
import numpy as np
import pytest
import torch

from edge_edet.contract.anchors import generate_anchors
from edge_edet.contract.config import ConfigError, get_config
from edge_edet.model import EfficientDet, create_model, flatten_outputs
from edge_edet.model.weights import CheckpointError

from conftest import shared_path

EFFDET_PARAMS = dict(d0=3_880_067, d1=6_625_898, d2=8_097_039, d3=12_032_296, d4=20_723_675, d5=33_653_315,
                     d6=51_871_782, d7=51_871_782, d7x=77_147_166, lite0=3_243_470, lite1=4_248_318,
                     lite2=5_252_334, lite3=8_350_862, lite3x=9_280_862, lite4=15_130_894)


@pytest.mark.parametrize("name", list(EFFDET_PARAMS))
def test_parameter_count_equals_effdet(name):
    with torch.device("meta"):
        model = EfficientDet(get_config(name))
    assert sum(p.numel() for p in model.parameters()) == EFFDET_PARAMS[name]


@pytest.mark.parametrize("name,count", [("d0", 49_104), ("d7", 441_936), ("d7x", 442_260), ("lite0", 19_206)])
def test_anchor_count_at_default_size(name, count):
    assert generate_anchors(get_config(name)).shape == (count, 4)


@pytest.mark.parametrize("name,paper_gmacs,size", [("d0", 2.54, 512), ("d1", 6.10, 640), ("d3", 24.9, 896)])
def test_multiply_adds_match_paper(name, paper_gmacs, size):
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = EfficientDet(get_config(name)).eval()
        x = torch.zeros(1, 3, size, size)
        with FlopCounterMode(display=False) as counter:
            model(x)
    macs = counter.get_total_flops() / 2 / 1e9
    assert abs(macs - paper_gmacs) / paper_gmacs < 0.05, macs


def test_non_square_input_follows_configured_size():
    model = create_model("d0", input_size="384x640")
    with torch.no_grad():
        cls, box = model(torch.zeros(1, 3, 384, 640))
    assert [tuple(c.shape[2:]) for c in cls] == [(48, 80), (24, 40), (12, 20), (6, 10), (3, 5)]
    assert generate_anchors(model.config).shape[0] == sum(h * w * 9 for h, w in model.config.pyramid_sizes())


def _effdet_fixture(name):
    return (shared_path("fixtures", "effdet", f"tf_efficientdet_{name}_random.pth"),
            np.load(shared_path("fixtures", "effdet", f"tf_efficientdet_{name}_io.npz")))


@pytest.mark.parametrize("name", ["d0", "lite0"])
def test_effdet_golden_outputs_and_anchors(name):
    checkpoint, io = _effdet_fixture(name)
    model = create_model(name, checkpoint=checkpoint)
    with torch.no_grad():
        cls, box = model(torch.from_numpy(io["input_nchw"]))
    for level in range(5):
        assert np.abs(cls[level].numpy() - io[f"class_out_{level}"]).max() < 1e-4
        assert np.abs(box[level].numpy() - io[f"box_out_{level}"]).max() < 1e-4
    anchors_yxyx = generate_anchors(model.config)[:, [1, 0, 3, 2]]
    np.testing.assert_allclose(anchors_yxyx, io["anchors_yxyx"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(model.config.mean), io["mean"], atol=1e-6)


def _box_iou(a, b):
    x1 = np.maximum(a[:, None, 0], b[None, :, 0]); y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2]); y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.mark.parametrize("name", ["d0", "lite0"])
def test_reference_postprocess_reproduces_stable_detections(name):
    from edge_edet.model.reference import reference_detect

    checkpoint, io = _effdet_fixture(name)
    model = create_model(name, checkpoint=checkpoint)
    boxes, scores, classes = reference_detect(model, torch.from_numpy(io["input_nchw"]))[0]
    stable = io["stable_detections"]
    iou = _box_iou(stable[:, :4], boxes)
    for row, ious in zip(stable, iou):
        match = np.flatnonzero((ious >= 0.99) & (classes + 1 == row[5]) & (np.abs(scores - row[4]) < 1e-4))
        assert match.size >= 1, row


def test_zylo117_checkpoint_needs_zero_padded_maxpool():
    io = np.load(shared_path("fixtures", "zylo117", "efficientdet-d0_io.npz"))
    checkpoint = shared_path("fixtures", "zylo117", "efficientdet-d0_random.pth")
    model = create_model("d0", checkpoint=checkpoint)
    assert model.config.maxpool_zero_pad
    x = torch.from_numpy(io["input_nchw"])
    with torch.no_grad():
        features = model.forward_features(x)
        cls, box = flatten_outputs(*model(x), 90)
    for level in range(5):
        assert np.abs(features[level].numpy() - io[f"feature_{level}"]).max() < 1e-5
    assert np.abs(box.numpy() - io["regression"]).max() < 1e-4
    assert np.abs(torch.sigmoid(cls).numpy() - io["classification"]).max() < 1e-4

    tf_padded = EfficientDet(get_config("d0")).eval()
    tf_padded.load_state_dict(model.state_dict())
    with torch.no_grad():
        features = tf_padded.forward_features(x)
    assert max(np.abs(features[level].numpy() - io[f"feature_{level}"]).max() for level in range(5)) > 1e-3


def test_transfer_to_other_class_count_reinitialises_class_predictor():
    checkpoint, _ = _effdet_fixture("lite0")
    source = torch.load(checkpoint, map_location="cpu")
    model = create_model("lite0", num_classes=3, checkpoint=checkpoint)
    state = model.state_dict()
    loaded = [k for k in state if k in source and state[k].shape == source[k].shape]
    assert torch.equal(state["box_net.predict.conv_pw.weight"], source["box_net.predict.conv_pw.weight"])
    assert set(state) - set(loaded) == {"class_net.predict.conv_pw.weight", "class_net.predict.conv_pw.bias"}
    assert torch.allclose(state["class_net.predict.conv_pw.bias"], torch.tensor(-4.59512), atol=1e-4)


def test_wrong_checkpoint_names_what_it_looks_like():
    checkpoint, _ = _effdet_fixture("lite0")
    with pytest.raises(CheckpointError) as err:
        create_model("d0", checkpoint=checkpoint)
    message = str(err.value)
    assert "looks like lite0" in message and "requested d0" in message and "missing" in message


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        get_config("d9")
    assert "d0" in str(err.value) and "lite4" in str(err.value)


def test_input_size_not_multiple_of_128_names_nearest():
    with pytest.raises(ConfigError) as err:
        get_config("d0", input_size=500)
    assert "384" in str(err.value) and "512" in str(err.value)
    assert get_config("lite0", input_size=320).input_size == (320, 320)  # native size is allowed


def test_aliases():
    assert get_config("efficientdet-d0").name == "d0" and get_config("tf_efficientdet_lite0").name == "lite0"
