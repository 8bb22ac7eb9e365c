"""The paper's loss: sigmoid focal loss on classes (alpha 0.25, gamma 1.5) plus Huber loss on box codes
(delta 0.1, weight 50 as the official code), both normalised by the number of positive anchors."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from .assigner import IGNORE

ALPHA = 0.25
GAMMA = 1.5
HUBER_DELTA = 0.1
BOX_WEIGHT = 50.0


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = ALPHA, gamma: float = GAMMA) -> torch.Tensor:
    """Element-wise sigmoid focal loss: -alpha_t (1 - p_t)^gamma log(p_t); targets are 0/1 floats."""
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (1 - p_t).pow(gamma) * ce


def huber_loss(pred: torch.Tensor, target: torch.Tensor, delta: float = HUBER_DELTA) -> torch.Tensor:
    """Element-wise Huber loss (quadratic below `delta`, linear above), as tf.losses.huber_loss."""
    return F.huber_loss(pred, target, reduction="none", delta=delta)


def detection_loss(cls_logits: torch.Tensor, box_codes: torch.Tensor, cls_targets: torch.Tensor,
                   box_targets: torch.Tensor, box_weight: float = BOX_WEIGHT) -> Dict[str, torch.Tensor]:
    """{'loss', 'cls_loss', 'box_loss', 'num_positives'} for a batch.

    cls_logits [B, N, C], box_codes [B, N, 4] (the model's flattened outputs); cls_targets [B, N]
    (class index, NEGATIVE or IGNORE), box_targets [B, N, 4] (from `assigner.assign`).
    """
    num_classes = cls_logits.shape[-1]
    positive = cls_targets >= 0
    num_pos = positive.sum().clamp(min=1).to(cls_logits.dtype)
    one_hot = F.one_hot(cls_targets.clamp(min=0), num_classes).to(cls_logits.dtype)
    one_hot = one_hot * positive.unsqueeze(-1).to(cls_logits.dtype)
    valid = (cls_targets != IGNORE).unsqueeze(-1).to(cls_logits.dtype)
    cls_loss = (focal_loss(cls_logits, one_hot) * valid).sum() / num_pos
    box_loss = (huber_loss(box_codes, box_targets) * positive.unsqueeze(-1)).sum() / (num_pos * 4.0)
    return {"loss": cls_loss + box_weight * box_loss, "cls_loss": cls_loss, "box_loss": box_loss,
            "num_positives": positive.sum()}
