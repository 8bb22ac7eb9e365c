"""edge_edet: EfficientDet from PyTorch to the edge (ONNX, TensorRT, streaming runtime).

Importing the package imports no torch: `edge_edet.runtime` must load on a Jetson without it.
`create_model` imports torch on first call.
"""
__version__ = "0.1.0"


def create_model(name, num_classes=None, input_size=None, checkpoint=None, **kwargs):
    """Build an EfficientDet from the config table (see edge_edet.model.factory).

    num_classes=None: the checkpoint's class count, or 90 (COCO) without a checkpoint.
    """
    from .model.factory import create_model as _create

    return _create(name, num_classes=num_classes, input_size=input_size, checkpoint=checkpoint, **kwargs)
