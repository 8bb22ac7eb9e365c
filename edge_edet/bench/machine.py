"""What a benchmark ran on: figures mean nothing without the CPU, core count and library versions."""
from __future__ import annotations

import os
import platform
import resource
import sys


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


def describe_machine() -> dict:
    """CPU, cores usable by this process, memory, OS and the numeric libraries' versions."""
    import cv2
    import numpy

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "architecture": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / 2 ** 20 if sys.platform == "darwin" else peak / 2 ** 10, 1)
