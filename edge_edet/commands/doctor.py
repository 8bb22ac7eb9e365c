"""`edge-edet doctor`: what this machine has for edge_edet, and what to install for what is missing.

Reports TensorRT, CUDA devices, pycuda, ONNX Runtime providers and OpenCV's video back-ends
(GStreamer for CSI cameras and RTSP pipelines, FFmpeg for files and streams, V4L2 for USB
cameras).  Never fails because something is absent: absence is the answer.  `--json` prints the
same as one JSON object.
"""
from __future__ import annotations

import json

HELP = "report TensorRT, CUDA devices, pycuda, ONNX Runtime providers and OpenCV video back-ends"


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help=HELP, description=HELP + ".")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def report_lines(report: dict) -> list:
    """Human-readable lines for an environment report (pure: tested on made-up reports)."""
    from ..engine.versions import INSTALL_HINT, TrtVersion
    from ..runtime.backends.tensorrt_backend import PYCUDA_HINT

    from ..contract.jetpack import by_l4t, cuda_python_hint

    lines = []
    if report.get("jetson"):
        lines.append(f"board        {report['jetson']}" + (f"  ({report['l4t']})" if report.get("l4t") else ""))
    row = by_l4t(report.get("l4t"))
    if row is not None:
        lines.append(f"JetPack      {row.releases} (Python {row.python}, TensorRT {row.tensorrt}, CUDA {row.cuda}): "
                     f"install with pip install -e \".[{row.extra}]\" in a venv made with --system-site-packages; "
                     f"--cuda-graph: {cuda_python_hint(row)}")
    trt = report.get("tensorrt")
    if trt:
        try:
            version = TrtVersion.parse(trt)
            gen = version.generation
            if not version.supports_dla:
                dla = "no DLA in this version"
            else:  # the board decides too: Orin Nano and Thor have none; 11.4.1 has it on AGX Orin only
                dla = "no DLA on this board" if version.dla_refusal(report.get("jetson")) else "DLA supported"
            lines.append(f"TensorRT     {trt} ({gen} build path; {dla})")
        except Exception as exc:  # an unsupported (too old) TensorRT is a finding, not a crash
            lines.append(f"TensorRT     {trt} ({exc})")
        nms = report.get("efficient_nms")
        if nms is not None:
            lines.append("             EfficientNMS_TRT plugin: " + ("yes" if nms else
                         "no (export with --nms onnx, the default)"))
    else:
        lines.append(f"TensorRT     not installed: {INSTALL_HINT}")
    gpu = report.get("gpu") or {}
    if gpu.get("name"):
        lines.append(f"CUDA device  {gpu['name']} (compute {gpu.get('compute_capability', '?')}, "
                     f"{gpu.get('memory_mib', '?')} MiB; {gpu.get('count', 1)} device(s), via {gpu.get('source')})")
    elif gpu.get("error"):
        lines.append(f"CUDA device  none usable ({gpu['error']})")
    elif gpu.get("count") == 0:
        lines.append("CUDA device  none found (driver present, no GPU visible)")
    else:
        lines.append("CUDA device  unknown (neither pycuda nor cuda-python is installed to ask the driver)")
    lines.append(f"pycuda       {report['pycuda']}" if report.get("pycuda")
                 else f"pycuda       not installed (TensorRT back-end needs it): {PYCUDA_HINT}")
    providers = report.get("onnxruntime")
    lines.append(f"onnxruntime  {', '.join(providers)}" if providers is not None
                 else "onnxruntime  not installed (runs .onnx models): pip install onnxruntime")
    video = report.get("opencv") or {}
    if video:
        marks = ", ".join(f"{name} {'yes' if video.get(name) else 'no'}" for name in ("GStreamer", "FFmpeg", "V4L2"))
        lines.append(f"OpenCV       {video.get('version')}: {marks}")
        if not video.get("GStreamer"):
            lines.append("             (CSI cameras need GStreamer: use the distribution's python3-opencv on a "
                         "Jetson, not opencv-python from pip)")
    elif row is not None:  # a pip OpenCV would lack GStreamer and shadow JetPack's
        lines.append("OpenCV       not importable: JetPack's python3-opencv, seen by a --system-site-packages venv")
    else:
        lines.append("OpenCV       not installed: pip install opencv-python-headless")
    return lines


def run(args) -> int:
    from ..contract.machine import environment_report

    report = environment_report()
    if getattr(args, "json", False):
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        for line in report_lines(report):
            print(line)
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
