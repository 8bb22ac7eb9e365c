"""`edge-edet doctor`: the machine report, its wording for each finding, and the OpenCV parse."""
import json

from edge_edet.cli import main as cli_main
from edge_edet.commands.doctor import report_lines
from edge_edet.contract.machine import environment_report, parse_video_io

BUILD_INFO = """
  Video I/O:
    DC1394:                      NO
    FFMPEG:                      YES
      avcodec:                   YES (58.54.100)
    GStreamer:                   YES (1.16.3)
    v4l/v4l2:                    YES (linux/videodev2.h)

  Parallel framework:            pthreads
"""


def test_parse_video_io():
    assert parse_video_io(BUILD_INFO) == {"GStreamer": True, "FFmpeg": True, "V4L2": True}
    no_gst = BUILD_INFO.replace("YES (1.16.3)", "NO")
    assert parse_video_io(no_gst)["GStreamer"] is False
    assert parse_video_io("nothing here") == {"GStreamer": False, "FFmpeg": False, "V4L2": False}


def test_bare_machine_gets_install_hints():
    text = "\n".join(report_lines({"tensorrt": None, "gpu": {}, "pycuda": None, "onnxruntime": None, "opencv": {}}))
    assert "TensorRT     not installed" in text and "JetPack" in text and "pip install tensorrt" in text
    assert "pip install pycuda" in text and "pip install onnxruntime" in text
    assert "neither pycuda nor cuda-python" in text


def test_jetson_report():
    report = {"jetson": "NVIDIA Jetson Orin Nano Developer Kit", "l4t": "# R36 (release), REVISION: 4.0",
              "tensorrt": "10.3.0", "gpu": {"name": "Orin", "compute_capability": "8.7", "memory_mib": 7620,
                                            "count": 1, "source": "pycuda"},
              "pycuda": "2024.1", "onnxruntime": ["CUDAExecutionProvider", "CPUExecutionProvider"],
              "opencv": {"version": "4.8.0", "GStreamer": True, "FFmpeg": False, "V4L2": True}}
    lines = report_lines(report)
    assert lines[0].startswith("board        NVIDIA Jetson Orin Nano") and "R36" in lines[0]
    assert "TensorRT     10.3.0 (10.x build path; no DLA on this board)" in lines  # Orin Nano has no DLA
    assert "TensorRT     10.3.0 (10.x build path; DLA supported)" in report_lines(
        dict(report, jetson="NVIDIA Jetson AGX Orin Developer Kit"))
    assert any("Orin (compute 8.7, 7620 MiB" in line for line in lines)
    assert any("GStreamer yes, FFmpeg no, V4L2 yes" in line for line in lines)
    assert not any("CSI cameras need GStreamer" in line for line in lines)


def test_versions_without_dla_and_unusable_drivers_are_reported():
    lines = report_lines({"tensorrt": "10.8.0", "efficient_nms": False, "gpu": {"error": "pycuda: cuInit failed: no CUDA-capable device"},
                          "opencv": {"version": "5.0.0", "GStreamer": False}})
    assert "TensorRT     10.8.0 (10.x build path; no DLA in this version)" in lines
    assert any("EfficientNMS_TRT plugin: no (export with --nms onnx" in line for line in lines)
    assert any("none usable (pycuda: cuInit failed" in line for line in lines)
    assert any("CSI cameras need GStreamer" in line for line in lines)
    assert any("older than 8.5" in line for line in report_lines({"tensorrt": "7.1.3", "gpu": {}}))


def test_doctor_command_runs_here(capsys):
    assert cli_main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "TensorRT" in out and "onnxruntime  " in out and "OpenCV" in out
    assert cli_main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"tensorrt", "gpu", "pycuda", "onnxruntime", "opencv"} <= set(report)
    assert "CPUExecutionProvider" in report["onnxruntime"]
    assert report == json.loads(json.dumps(environment_report(), default=str))


def test_jetson_gets_its_own_jetpack_extra_and_cuda_python_pin():
    from edge_edet.contract.jetpack import by_l4t, cuda_python_hint

    for release, extra, pin in (("# R35 (release), REVISION: 5.0", "jetpack5", "cuda-python>=11.8,<11.9"),
                                ("# R36 (release), REVISION: 4.3", "jetpack6", "cuda-python>=12.6,<12.7"),
                                ("# R38 (release), REVISION: 2.1", "jetpack7", "cuda-python>=13,<14")):
        lines = report_lines({"jetson": "NVIDIA Jetson", "l4t": release, "tensorrt": None, "gpu": {}, "opencv": {}})
        jetpack = next(line for line in lines if line.startswith("JetPack"))
        assert f'pip install -e ".[{extra}]"' in jetpack and "--system-site-packages" in jetpack and pin in jetpack
        assert any("JetPack's python3-opencv" in line for line in lines)  # never pip's OpenCV on a board
        assert by_l4t(release).extra == extra
    assert by_l4t("# R32 (release)") is None and by_l4t(None) is None and by_l4t("garbage") is None
    everywhere = cuda_python_hint(None)
    assert all(pin in everywhere for pin in ("cuda-python>=12.6,<13", ">=11.8,<11.9", ">=12.6,<12.7", ">=13,<14"))


def test_cuda_graph_without_cuda_python_names_the_pin_for_this_machine(monkeypatch):
    import sys

    import pytest

    from edge_edet.contract.errors import EdgeEdetError
    from edge_edet.contract.machine import cuda_python_hint
    from edge_edet.runtime.backends.tensorrt_backend import CudaGraphReplay

    for name in ("cuda", "cuda.bindings", "cuda.bindings.driver", "cuda.cuda"):
        monkeypatch.setitem(sys.modules, name, None)  # import of any cuda-python layout fails
    with pytest.raises(EdgeEdetError) as caught:
        CudaGraphReplay(lambda: None, stream=None)
    assert str(caught.value) == f"--cuda-graph needs cuda-python: {cuda_python_hint()}"
    assert "cuda-python>=" in str(caught.value)
