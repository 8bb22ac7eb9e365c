"""Fetch the real TensorRT Python bindings wheels (about 1 MB each) into a cache, with pip.

`pip download --no-deps` of `tensorrt-bindings` (8.6) / `tensorrt-cu12-bindings` (10.x, 11.x):
the wheels hold the pybind11 extension whose code names every class and member of that version.
The cache folder is $EDGE_EDET_TRT_BINDINGS or ~/.cache/edge_edet/trt_bindings; a wheel already
there is not fetched again.  A registry that cannot be reached is reported as a reason string
(the tests skip with it), never as a pass.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import Tuple

# version label -> (pip requirement, wheel file prefix).  One row per TensorRT line the project meets.
VERSIONS = {
    "8.6.1": ("tensorrt-bindings==8.6.1", "tensorrt_bindings-8.6.1-"),  # JetPack 5.1 has 8.5.2: no wheel exists
    "10.3.0": ("tensorrt-cu12-bindings==10.3.0", "tensorrt_cu12_bindings-10.3.0-"),  # JetPack 6.1 / 6.2
    "10.7.0": ("tensorrt-cu12-bindings==10.7.0", "tensorrt_cu12_bindings-10.7.0-"),  # last 10.x with DLA
    "10.13.3.9": ("tensorrt-cu12-bindings==10.13.3.9", "tensorrt_cu12_bindings-10.13.3.9-"),
    "11.0.0.114": ("tensorrt-cu12-bindings==11.0.0.114", "tensorrt_cu12_bindings-11.0.0.114-"),
    "11.4.0.106": ("tensorrt-cu12-bindings==11.4.0.106", "tensorrt_cu12_bindings-11.4.0.106-"),
}
# the newest version whose enums carry their class name in the code (see surface.py)
ENUM_REFERENCE = "10.13.3.9"
# the wheels are the same API for every CPython and platform: always fetch one fixed flavour so the
# cache and the results do not depend on the machine running the tests
PIP_PLATFORM_ARGS = ["--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                     "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64"]


def cache_dir() -> str:
    path = os.environ.get("EDGE_EDET_TRT_BINDINGS") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                     "edge_edet", "trt_bindings")
    os.makedirs(path, exist_ok=True)
    return path


def cached_wheel(version: str) -> str:
    prefix = VERSIONS[version][1]
    found = sorted(glob.glob(os.path.join(cache_dir(), prefix + "*.whl")))
    return found[-1] if found else ""


def fetch_wheel(version: str, timeout: float = 300.0) -> Tuple[str, str]:
    """(wheel path, "") or ("", reason it could not be fetched)."""
    wheel = cached_wheel(version)
    if wheel:
        return wheel, ""
    requirement = VERSIONS[version][0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", cache_dir(), *PIP_PLATFORM_ARGS, requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"pip download {requirement} failed ({exc})"
    wheel = cached_wheel(version)
    if done.returncode != 0 or not wheel:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return "", f"pip download {requirement} failed: the registry could not be reached or lacks it ({tail[0]})"
    return wheel, ""
