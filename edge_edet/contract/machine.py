"""What this machine has: TensorRT, CUDA devices, pycuda, ONNX Runtime providers, OpenCV video I/O,
the CPU and memory a benchmark ran on, and this process's peak memory.

Every probe is lazy and never raises: `edge-edet doctor` reports what is missing instead of
crashing on it, and the builder and the TensorRT back-end use the same probes to record (and
later compare) the TensorRT version and GPU an engine was built with.
"""
from __future__ import annotations

import os
import platform
import re
import sys
from typing import Dict, List, Optional

from . import jetpack
from .errors import EdgeEdetError
from .names import TRT_INSTALL_HINT as INSTALL_HINT


def import_tensorrt(purpose: str = "this"):
    """`import tensorrt`, or one sentence saying it is needed and how to get it."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgeEdetError(f"{purpose} needs TensorRT, which is not installed here: {INSTALL_HINT}") from None
    return trt


def tensorrt_version() -> Optional[str]:
    try:
        import tensorrt as trt
    except ImportError:
        return None
    return str(getattr(trt, "__version__", "unknown"))


def efficient_nms_available() -> Optional[bool]:
    """Whether TensorRT's plugin library registers EfficientNMS_TRT here (None without TensorRT)."""
    try:
        import tensorrt as trt
    except ImportError:
        return None
    try:
        from .trt_logging import get_logger

        trt.init_libnvinfer_plugins(get_logger(trt), "")  # TensorRT keeps this logger: never a temporary one
        names = registered_plugins(trt)
        return None if names is None else "EfficientNMS_TRT" in names
    except Exception:
        return None


def registered_plugins(trt) -> Optional[set]:
    """Plugin names in TensorRT's registry (10.x: all_creators; 8.5: plugin_creator_list), or None."""
    registry = trt.get_plugin_registry()
    for attribute in ("all_creators", "plugin_creator_list"):
        creators = getattr(registry, attribute, None)
        if creators is not None:
            return {str(getattr(c, "name", "")) for c in creators}
    return None


def gpu_info(index: int = 0) -> Dict[str, object]:
    """{'name', 'compute_capability' ('8.7'), 'count', 'source'} from pycuda or cuda-python; {} if neither."""
    try:
        import pycuda.driver as cuda

        cuda.init()
        count = cuda.Device.count()
        if count <= index:
            return {"count": count, "source": "pycuda"}
        device = cuda.Device(index)
        major, minor = device.compute_capability()
        return {"name": device.name(), "compute_capability": f"{major}.{minor}", "count": count,
                "memory_mib": device.total_memory() >> 20, "source": "pycuda"}
    except ImportError:
        pass
    except Exception as exc:  # driver present but unusable: say so
        return {"error": f"pycuda: {exc}".strip(), "source": "pycuda"}
    cudart = _cuda_runtime()
    if cudart is None:
        return {}
    try:
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count <= index:
            return {"count": int(count) if int(err) == 0 else 0, "source": "cuda-python"}
        err, props = cudart.cudaGetDeviceProperties(index)
        name = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name, "compute_capability": f"{props.major}.{props.minor}", "count": int(count),
                "memory_mib": int(props.totalGlobalMem) >> 20, "source": "cuda-python"}
    except Exception as exc:
        return {"error": f"cuda-python: {exc}", "source": "cuda-python"}


def nvml_available() -> bool:
    """Whether NVIDIA's management library starts here (a desktop or data-centre driver): what GPU
    metrics (Triton's, DCGM's) need.  False on CPU machines and on Jetsons, which have no NVML."""
    import ctypes

    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    try:
        if nvml.nvmlInit_v2() != 0:
            return False
        nvml.nvmlShutdown()
        return True
    except AttributeError:
        return False


def _cuda_runtime():
    """cuda-python's runtime module (new and old import paths), or None."""
    try:
        from cuda.bindings import runtime as cudart
        return cudart
    except ImportError:
        pass
    try:
        from cuda import cudart
        return cudart
    except ImportError:
        return None


def jetson_model() -> Optional[str]:
    """'NVIDIA Jetson Orin Nano Developer Kit' on a Jetson, else None."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            with open(path, "rb") as handle:
                return handle.read().decode(errors="replace").strip("\x00 \n")
        except OSError:
            continue
    return None


def jetpack_release() -> Optional[str]:
    """L4T release line ('# R36 (release), REVISION: 4.0, ...') which maps to a JetPack version."""
    try:
        with open("/etc/nv_tegra_release", "r", encoding="utf-8", errors="replace") as handle:
            return handle.readline().strip() or None
    except OSError:
        return None


def jetpack_here() -> Optional[jetpack.JetPack]:
    """This board's row of contract/jetpack.py (from its L4T release), or None off a Jetson."""
    return jetpack.by_l4t(jetpack_release())


def cuda_python_hint() -> str:
    """The cuda-python install line that fits this machine's CUDA driver (every JetPack's pin off a Jetson)."""
    return jetpack.cuda_python_hint(jetpack_here())


def pycuda_version() -> Optional[str]:
    try:
        import pycuda
    except ImportError:
        return None
    return str(getattr(pycuda, "VERSION_TEXT", getattr(pycuda, "__version__", "installed")))


def onnxruntime_providers() -> Optional[List[str]]:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return list(ort.get_available_providers())


def opencv_video_backends() -> Dict[str, object]:
    """OpenCV version and, for GStreamer / FFmpeg / V4L2, whether this build has them."""
    try:
        import cv2
    except ImportError:
        return {}
    result: Dict[str, object] = {"version": cv2.__version__}
    result.update(parse_video_io(cv2.getBuildInformation()))
    try:  # a back-end can also arrive as a plugin library; hasBackend sees those too
        registry = cv2.videoio_registry
        for label, cap in (("GStreamer", "CAP_GSTREAMER"), ("FFmpeg", "CAP_FFMPEG"), ("V4L2", "CAP_V4L2")):
            result[label] = bool(result.get(label)) or bool(registry.hasBackend(getattr(cv2, cap)))
    except Exception:
        pass
    return result


def parse_video_io(build_information: str) -> Dict[str, bool]:
    """{'GStreamer': bool, 'FFmpeg': bool, 'V4L2': bool} from cv2.getBuildInformation() text."""
    section = build_information.split("Video I/O:", 1)[1] if "Video I/O:" in build_information else ""
    section = re.split(r"\n\s*\n|\n  [A-Z][^\n]*:\s*\n", section, maxsplit=1)[0] if section else ""

    def has(label: str) -> bool:
        match = re.search(rf"^\s*{label}\s*:\s*(\S+)", section, re.M | re.I)
        return bool(match) and match.group(1).upper() not in ("NO", "OFF")

    return {"GStreamer": has("GStreamer"), "FFmpeg": has("FFMPEG"), "V4L2": has(r"v4l/v4l2")}


def environment_report() -> Dict[str, object]:
    """Everything `edge-edet doctor` prints, as data."""
    return {"tensorrt": tensorrt_version(), "efficient_nms": efficient_nms_available(), "gpu": gpu_info(),
            "pycuda": pycuda_version(),
            "jetson": jetson_model(), "l4t": jetpack_release(), "onnxruntime": onnxruntime_providers(),
            "opencv": opencv_video_backends(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


# -- what a benchmark ran on, and how much memory it took ------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", "r", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_mb():
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 20)
    except (ValueError, OSError, AttributeError):
        return None


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask: a container's or taskset's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory_bytes() -> Optional[int]:
    """Memory that can be used now without swapping (Linux MemAvailable), or the total; None if unknown."""
    try:
        with open("/proc/meminfo", "r", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    total = _memory_total_mb()
    return total * 2 ** 20 if total else None


# lower bounds of the memory one image takes per input pixel (measured on lite0 320x320 on a CPU:
# ONNX Runtime inference about 200 bytes, a PyTorch training step about 2000), so a refusal is never
# wrong; what they refuse is a count that cannot possibly fit
INFERENCE_BYTES_PER_PIXEL = 150
TRAINING_BYTES_PER_PIXEL = 1500


def _size_text(nbytes: float) -> str:
    for unit, scale in (("TB", 2 ** 40), ("GB", 2 ** 30), ("MB", 2 ** 20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 2 ** 10:.0f} KB"


def check_count_fits_memory(flag: str, count: int, bytes_each: float, each: str) -> None:
    """One sentence, before any work, when `count` items of `bytes_each` cannot fit in the memory this
    machine has free (a typo such as --batch 100000 must not swap the machine to a halt)."""
    free = available_memory_bytes()
    if free is None or count * bytes_each <= free:
        return
    fits = int(free // bytes_each)
    hint = f"use at most {fits}" if fits >= 1 else "not even one fits: free memory or use a smaller model"
    raise EdgeEdetError(f"{flag} {count} needs at least {_size_text(count * bytes_each)} ({each}), more than "
                        f"the {_size_text(free)} of memory free here; {hint}")


def describe_machine() -> dict:
    """CPU, cores usable by this process, memory, OS and the numeric libraries' versions."""
    import cv2
    import numpy

    return {
        "cpu": _cpu_model(),
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable_cpus(),
        "memory_mb": _memory_total_mb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "hostname": platform.node(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: VmHWM, the high-water mark of this process's own memory.  getrusage's ru_maxrss is not
    used there because Linux carries it across exec, so a child would report its parent's peak.
    """
    try:
        with open("/proc/self/status", "r", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 2 ** 10, 1)
    except OSError:
        pass
    import resource  # POSIX only; after the /proc read so other systems get here only when needed

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / 2 ** 20 if sys.platform == "darwin" else peak / 2 ** 10, 1)
