"""The deploy contract's names and defaults, each defined once (DESIGN.md: Contracts).

The exporter writes these names into the graph, the engine builder and every back-end read
them, and the commands take their defaults from here; nothing else spells them out.
"""
from __future__ import annotations

# -- tensors ----------------------------------------------------------------------------------
INPUT_NAME = "images"  # uint8 [B, H, W, 3] BGR, letterboxed
NMS_OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
RAW_OUTPUTS = ("boxes", "scores")  # `--nms none` graphs: decoded boxes [B,N,4], probabilities [B,N,C]

# -- artifacts --------------------------------------------------------------------------------
ONNX_EXTENSION = ".onnx"
ENGINE_EXTENSIONS = (".trt", ".engine", ".plan")  # a serialized TensorRT engine, any of these
NMS_KINDS = ("onnx", "efficientnms", "none")
PRECISIONS = ("fp32", "fp16", "int8")  # the precision a graph or engine carries
BUILD_PRECISIONS = PRECISIONS + ("best",)  # what `edge-edet build --precision` may ask for

# -- back-ends for a deploy .onnx (runtime/backends: `--backend`, `--device`) -------------------
ONNX_BACKENDS = ("onnxruntime", "openvino")
AUTO_BACKEND = "auto"  # OpenVINO on a CPU run where it is installed and faster for the graph, else ONNX Runtime
OPENVINO_DEVICES = ("CPU", "GPU", "NPU", "AUTO")
OPENVINO_EXECUTION_MODES = ("accuracy", "performance")  # `--execution-mode`: the graph's precision, or OpenVINO's
TRITON_PLATFORMS = ("onnxruntime", "openvino", "tensorrt")  # `triton-repo --platform`: what tritonserver runs

# -- export defaults (stored in the artifact's metadata; the runtime reads them from there) ---
DEFAULT_SCORE_THRESHOLD = 0.4
DEFAULT_IOU_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100
DEFAULT_PRE_NMS_TOP_K = 5000
# ONNX opsets the deploy graph is exported at: from 13 (Unsqueeze with axes as an input, as the NMS tail
# writes it) to 17 (TensorRT 8.5's ONNX parser, JetPack 5; opset 18 changed ReduceMax's axes)
MIN_OPSET, MAX_OPSET = 13, 17
DEFAULT_OPSET = 17

# -- INT8 calibration -------------------------------------------------------------------------
CALIBRATION_METHODS = ("entropy", "percentile", "minmax")
DEFAULT_CALIBRATION_METHOD = "percentile"
DEFAULT_TRT_VERSION = "8.5.2"  # cache header when the builder's own version is not known (JetPack 5.1)

# -- TensorRT ---------------------------------------------------------------------------------
TRT_INSTALL_HINT = ("on a Jetson it comes with JetPack (`sudo apt install nvidia-jetpack`, or the "
                    "python3-libnvinfer package); on a desktop GPU `pip install tensorrt`")
