"""Tiny stand-ins for NVIDIA's TensorRT libraries, built with gcc, so the real bindings import here.

The bindings extension `tensorrt_bindings/tensorrt.so` links libnvinfer, libnvonnxparser and
libnvinfer_plugin (and libnvparsers in 8.6) by SONAME and takes about nine C symbols from them
(`createInferBuilder_INTERNAL`, `getPluginRegistry`, ...).  `readelf -d` names the libraries and
`nm -D --undefined-only` the symbols; each symbol becomes a one-line C function returning 0 (the two
version queries return the release number), compiled into a shared library under each SONAME.
With those first on LD_LIBRARY_PATH `import tensorrt_bindings` succeeds: factories return None, so
nothing can be built, but every class, signature, property and enum of that version is the real one.
Symbols the C and C++ runtimes already provide (dlopen, memcpy, ...) are left to them.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from typing import List, Tuple

NVIDIA_LIBRARY = re.compile(r"^libnv[\w]*\.so(\.\d+)*$")


def _run(command: List[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def needed_libraries(so_path: str) -> List[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run(["readelf", "-d", so_path]))


def undefined_symbols(so_path: str) -> List[str]:
    names = []
    for line in _run(["nm", "-D", "--undefined-only", so_path]).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == "U" and "@" not in parts[-1]:
            names.append(parts[-1])
    return names


def _provided_elsewhere(symbol: str, system_libraries: List[str]) -> bool:
    for library in [None] + system_libraries:
        try:
            if hasattr(ctypes.CDLL(library), symbol):
                return True
        except OSError:
            continue
    return False


def version_number(version: str) -> int:
    """'10.3.0' -> 100300, '8.6.1' -> 8601 (what getInferLibVersion / getNvOnnxParserVersion return, and
    what a calibration cache's header line says)."""
    major, minor, patch = ([int(p) for p in version.split(".")[:3]] + [0, 0])[:3]
    return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch


def c_source(symbols: List[str], version: str) -> str:
    lines = ["/* stand-in NVIDIA TensorRT symbols: none of them does anything */"]
    for index, symbol in enumerate(symbols):
        value = version_number(version) if "Version" in symbol else 0
        lines.append(f'long edge_edet_stub_{index}(void) __asm__("{symbol}");')
        lines.append(f"long edge_edet_stub_{index}(void) {{ return {value}; }}")
    return "\n".join(lines) + "\n"


def build_stubs(so_path: str, version: str, target: str) -> Tuple[str, str]:
    """(folder with the stub libraries, "") or ("", why not).  Built once: an existing folder is reused."""
    if os.path.isfile(os.path.join(target, "done")):
        return target, ""
    for tool in ("gcc", "readelf", "nm"):
        if shutil.which(tool) is None:
            return "", f"importing the real TensorRT bindings needs {tool} (a C compiler and binutils), not found"
    try:
        libraries = needed_libraries(so_path)
        nvidia = [lib for lib in libraries if NVIDIA_LIBRARY.match(lib)]
        system = [lib for lib in libraries if lib not in nvidia]
        symbols = [s for s in undefined_symbols(so_path) if not _provided_elsewhere(s, system)]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".stubs-", dir=os.path.dirname(target))
        try:
            source = os.path.join(work, "stubs.c")
            with open(source, "w") as handle:
                handle.write(c_source(symbols, version))
            for library in nvidia:
                _run(["gcc", "-shared", "-fPIC", "-o", os.path.join(work, library), f"-Wl,-soname,{library}", source])
            open(os.path.join(work, "done"), "w").close()
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"building the stub TensorRT libraries failed ({exc})"
    return target, ""
