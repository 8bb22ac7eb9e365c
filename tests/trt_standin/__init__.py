"""STAND-IN TensorRT (and pycuda / cuda-python) for the tests, generated per version from the real
TensorRT Python bindings wheels.  Nothing here is TensorRT; see tensorrt_module.py.

    surface, reason = load_surface("10.3.0")   # reason: why not (registry unreachable), else ""
    trt = build_module(surface)                 # a strict stand-in `tensorrt` module
"""
from __future__ import annotations

import json
import os
from typing import Dict, Optional, Tuple

from .surface import SURFACE_FORMAT, Surface, read_surface, save
from .tensorrt_module import build_module  # noqa: F401
from .wheels import ENUM_REFERENCE, VERSIONS, cache_dir, fetch_wheel

_surfaces: Dict[str, Surface] = {}


def load_surface(version: str) -> Tuple[Optional[Surface], str]:
    """The names of TensorRT `version` (downloaded and read once, then cached as JSON beside the wheel)."""
    if version in _surfaces:
        return _surfaces[version], ""
    wheel, reason = fetch_wheel(version)
    if not wheel:
        return None, reason
    cached = wheel + ".surface.json"
    if os.path.isfile(cached):
        with open(cached) as handle:
            data = json.load(handle)
        if data.get("format") == SURFACE_FORMAT:
            _surfaces[version] = Surface.from_json(data)
            return _surfaces[version], ""
    reference = None
    if int(version.split(".")[0]) >= 11:
        reference, reason = load_surface(ENUM_REFERENCE)
        if reference is None:
            return None, reason
    try:
        surface = read_surface(wheel, version, reference)
    except ImportError as exc:
        return None, f"reading the bindings needs capstone and pyelftools ({exc}); pip install -e '.[test]'"
    save(surface, cached)
    _surfaces[version] = surface
    return surface, ""


__all__ = ["VERSIONS", "cache_dir", "load_surface", "build_module", "Surface"]
