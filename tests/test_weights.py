"""Checkpoint plumbing: the official-weights download path, run on a local file; formats; bundled names."""
import hashlib
import os

import pytest
import torch

from edge_edet.contract.config import get_config
from edge_edet.model import create_model
from edge_edet.model.weights import CheckpointError, download_coco, read_state_file

from conftest import shared_path


def test_coco_download_checks_the_hash_in_the_file_name(tmp_path, monkeypatch):
    """The real torch-hub download code, pointed at a file:// URL: a good hash loads, a bad one fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    state = torch.load(shared_path("fixtures", "effdet", "tf_efficientdet_lite0_random.pth"), map_location="cpu")
    raw = tmp_path / "raw.pth"
    torch.save(state, raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    good = tmp_path / f"tf_efficientdet_lite0-{digest}.pth"
    os.rename(raw, good)
    cfg = get_config("lite0", coco_url=good.as_uri())
    loaded = download_coco(cfg, progress=False)
    assert torch.equal(loaded["class_net.predict.conv_pw.bias"], state["class_net.predict.conv_pw.bias"])
    assert (tmp_path / "hub" / "hub" / "checkpoints" / good.name).exists()  # cached like any hub download

    bad = tmp_path / "tf_efficientdet_lite0-00000000.pth"
    bad.write_bytes(good.read_bytes())
    with pytest.raises(CheckpointError, match="could not download COCO weights"):
        download_coco(get_config("lite0", coco_url=bad.as_uri()), progress=False)


def test_prefixed_and_wrapped_checkpoints_load(tmp_path):
    state = torch.load(shared_path("fixtures", "effdet", "tf_efficientdet_lite0_random.pth"), map_location="cpu")
    wrapped = tmp_path / "train_bench.pth"
    torch.save({"state_dict": {"model." + k: v.half() if v.is_floating_point() else v for k, v in state.items()},
                "epoch": 3}, wrapped)
    model = create_model("lite0", checkpoint=str(wrapped))
    assert model.state_dict()["box_net.predict.conv_pw.weight"].dtype == torch.float32
    assert torch.allclose(model.state_dict()["box_net.predict.conv_pw.weight"],
                          state["box_net.predict.conv_pw.weight"], atol=1e-3)


def test_num_classes_none_takes_the_checkpoints_count(tmp_path):
    model = create_model("lite0", num_classes=3)
    path = tmp_path / "three.pth"
    torch.save(model.state_dict(), path)
    assert create_model("lite0", num_classes=None, checkpoint=str(path)).config.num_classes == 3


def test_unreadable_checkpoint_is_one_sentence(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        read_state_file(str(junk))
