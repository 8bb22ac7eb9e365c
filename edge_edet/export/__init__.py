"""Deploy ONNX export: pre-processing, network, box decoding and NMS in one graph (DESIGN.md).

    from edge_edet.export import export_onnx
    info = export_onnx(model, "d0.onnx", nms="onnx", dynamic_batch=None)
"""
from .exporter import export_onnx, export_model_proto

__all__ = ["export_onnx", "export_model_proto"]
