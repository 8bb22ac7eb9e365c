"""STAND-IN TensorRT (and pycuda / cuda-python) for the tests, generated per version from the API the
real TensorRT Python bindings report about themselves.  Nothing here is TensorRT.

    api, reason = load_api("10.3.0")   # the recorded API; reason: why it could not be had, else ""
    trt = build_module(api)             # a strict stand-in `tensorrt` module of that version
    api = api_or_skip("10.3.0")         # in a test: skip with the reason, or FAIL under CI=true

How the record is made (once per version, then cached as JSON beside the wheel): the bindings wheel
is fetched with pip (wheels.py), tiny stand-ins for NVIDIA's libraries are built with gcc
(stubs.py), and the real module is imported in a subprocess that writes its API (record.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from typing import Dict, Optional, Tuple

from .api import Api
from .record import FORMAT
from .stubs import build_stubs
from .tensorrt_module import build_module  # noqa: F401
from .wheels import VERSIONS, cache_dir, fetch_wheel

_apis: Dict[str, Api] = {}
HERE = os.path.dirname(os.path.abspath(__file__))


def record_path(version: str) -> str:
    return os.path.join(cache_dir(), f"tensorrt-{version}.api.json")


def load_api(version: str) -> Tuple[Optional[Api], str]:
    """The recorded API of TensorRT `version`, recording it first if it is not cached."""
    if version in _apis:
        return _apis[version], ""
    path = record_path(version)
    data = _read(path)
    if data is None:
        reason = _record(version, path)
        if reason:
            return None, reason
        data = _read(path)
        if data is None:
            return None, f"recording TensorRT {version}'s API wrote no usable {path}"
    _apis[version] = Api(data)
    return _apis[version], ""


def _read(path: str) -> Optional[dict]:
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if data.get("format") == FORMAT else None


def _record(version: str, path: str) -> str:
    wheel, reason = fetch_wheel(version)
    if not wheel:
        return reason
    unpacked = os.path.join(cache_dir(), "unpacked", os.path.basename(wheel)[:-4])
    if not os.path.isdir(os.path.join(unpacked, "tensorrt_bindings")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    so_path = os.path.join(unpacked, "tensorrt_bindings", "tensorrt.so")
    if not os.path.isfile(so_path):
        return f"{wheel} has no tensorrt_bindings/tensorrt.so"
    stubs, reason = build_stubs(so_path, version, os.path.join(cache_dir(), "stubs", version))
    if not stubs:
        return reason
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(filter(None, [stubs, os.environ.get("LD_LIBRARY_PATH")])))
    env.pop("PYTHONPATH", None)  # the bindings need nothing but themselves
    partial = path + f".{os.getpid()}.tmp"
    try:
        done = subprocess.run([sys.executable, os.path.join(HERE, "record.py"), unpacked, partial], env=env,
                              capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            return f"importing the real TensorRT {version} bindings with stub libraries failed: {tail[0]}"
        os.replace(partial, path)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"recording TensorRT {version}'s API failed ({exc})"
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return ""


def api_or_skip(version: str) -> Api:
    """In a test: the API of `version`; skipped with the reason, except under CI=true where a wheel
    CI can install but could not get is a failure (the project's rule: CI never skips what it can have)."""
    import pytest

    api, reason = load_api(version)
    if api is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return api


__all__ = ["VERSIONS", "cache_dir", "load_api", "api_or_skip", "build_module", "Api"]
