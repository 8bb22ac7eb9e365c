"""The one builder: `create_model(name, num_classes=90, input_size=None, checkpoint=None)`."""
from __future__ import annotations

from typing import Optional

from ..contract.config import get_config
from .efficientdet import EfficientDet


def create_model(name: str, num_classes: Optional[int] = None, input_size=None, checkpoint: Optional[str] = None,
                 zero_pad_maxpool: bool = False, pretrained_backbone: Optional[str] = None) -> EfficientDet:
    """Build a model from its table row; optionally load a checkpoint.

    checkpoint: a path (effdet or zylo117 format, detected from its keys), 'coco' (official
    weights, downloaded to the torch hub cache) or a bundled name such as 'person'.  A checkpoint
    with another class count is transferred (class prediction layer re-initialised);
    num_classes=None (the default) takes the checkpoint's own class count, or 90 (COCO) without one,
    so `create_model('lite0', checkpoint='person')` is the 1-class person detector, not a COCO head.
    zero_pad_maxpool: reproduce zylo117's zero-padded max-pools (set automatically for its checkpoints).
    """
    from . import weights

    cfg = get_config(name, input_size=input_size)
    state = None
    if checkpoint is not None:
        state, kind = weights.load_checkpoint_state(checkpoint, cfg)
        if num_classes is None:  # take the class count the checkpoint was trained with
            num_classes = weights.checkpoint_num_classes(state, cfg)
    cfg = get_config(cfg.name, num_classes=90 if num_classes is None else num_classes, input_size=cfg.input_size)
    if checkpoint is not None and kind == "zylo117":
        zero_pad_maxpool = True
    if zero_pad_maxpool:
        cfg = get_config(cfg.name, num_classes=cfg.num_classes, input_size=cfg.input_size, maxpool_zero_pad=True)
    model = EfficientDet(cfg)
    weights.init_prediction_bias(model)
    if pretrained_backbone:
        weights.load_imagenet_backbone(model, pretrained_backbone)
    if state is not None:
        weights.apply_state(model, state, source=str(checkpoint))
    return model.eval()
