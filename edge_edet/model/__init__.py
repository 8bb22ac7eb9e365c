"""The PyTorch side: EfficientDet modules, anchors, checkpoints.  Imports torch."""
from .efficientdet import EfficientDet, flatten_outputs
from .factory import create_model

__all__ = ["EfficientDet", "create_model", "flatten_outputs"]
