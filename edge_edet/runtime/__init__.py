"""The deploy-side runtime: numpy, OpenCV and onnxruntime or OpenVINO, or TensorRT + pycuda.  Never torch.

    from edge_edet.runtime import Detector
    detector = Detector.from_file("d0.onnx")        # OpenVINO or ONNX Runtime (backend=); or d1.trt / .engine / .plan
    results = detector.detect([frame_bgr, ...])      # list of Detections, boxes in frame pixels
"""
from .detections import Detections
from .detector import Detector
from ..contract.letterbox import letterbox
from .pipeline import Pipeline, benchmark_source
from ..contract.frames import iter_frames
from .sources import open_source

__all__ = ["Detections", "Detector", "letterbox", "Pipeline", "benchmark_source", "iter_frames", "open_source"]
