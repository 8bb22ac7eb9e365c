"""The JetPack releases edge_edet installs on, each fact written once.

setup.py reads this file on its own (runpy, without importing edge_edet) to make the `[jetpackN]`
extras; `edge-edet doctor`, the TensorRT back-end's cuda-python hint, docs/jetson.md's install
commands and the tests read the same rows.  Standard library only, no imports from the package:
it must load before anything is installed.

Why the extras look as they do: JetPack ships TensorRT's Python bindings (`python3-libnvinfer`),
a GStreamer-enabled OpenCV and NumPy 1 as apt packages, which a venv sees only when made with
`--system-site-packages`.  A pip `tensorrt`, `opencv-python` or `torch` would shadow or fight
them, and NumPy 2 breaks the apt OpenCV built against NumPy 1, so no extra names them and each
caps NumPy below 2.  cuda-python must match the board's CUDA driver: 11.8.x is the last line
with Python 3.8 wheels and the CUDA 11 API of JetPack 5; 13.x needs the CUDA 13 driver.
"""
from typing import Dict, NamedTuple, Optional, Tuple


class JetPack(NamedTuple):
    major: int  # 5, 6, 7: the `[jetpackN]` extra
    releases: str  # the JetPack releases the row covers
    l4t_major: int  # Jetson Linux (L4T) major, as /etc/nv_tegra_release says it ('# R36 (release)...')
    ubuntu: str
    python: str  # JetPack's own python3: the venv's interpreter
    tensorrt: str
    cuda: str
    apt_numpy: str  # python3-numpy from apt, which JetPack's OpenCV is built against
    apt_opencv: str
    cuda_python: str  # the pip requirement for --cuda-graph on this JetPack
    numpy: str  # the NumPy requirement the extra adds (keeps NumPy 1 for the apt OpenCV)
    boards: str
    apt: str  # what the install command apt-gets first (venv, headers for pycuda, gst-inspect; OpenCV where JetPack has none)

    @property
    def extra(self) -> str:
        return f"jetpack{self.major}"


JETPACKS: Tuple[JetPack, ...] = (
    JetPack(5, "5.1.x", 35, "20.04", "3.8", "8.5.2", "11.4", "1.17.4", "4.5.4",
            "cuda-python>=11.8,<11.9", "numpy<2", "Xavier, Orin", "python3-venv python3-dev gstreamer1.0-tools"),
    JetPack(6, "6.1 / 6.2", 36, "22.04", "3.10", "10.3", "12.6", "1.21.5", "4.8.0",
            "cuda-python>=12.6,<12.7", "numpy<2", "Orin", "python3-venv python3-dev gstreamer1.0-tools"),
    JetPack(7, "7.0 / 7.1 / 7.2", 38, "24.04", "3.12", "10.13 (7.0), 11.4.1 (7.2.2+)", "13.0", "1.26.4",
            "4.6 (Ubuntu's python3-opencv)", "cuda-python>=13,<14", "numpy<2", "Thor, Orin (7.2.2+)",
            "python3-venv python3-dev gstreamer1.0-tools python3-opencv"),
)

# What every JetPack extra installs besides the two rows' own pins: the TensorRT back-end's
# pycuda (built on the board against its CUDA: nvcc on PATH) and onnx, which the engine builder
# uses to read the ONNX's metadata.  Never tensorrt, opencv-python or torch (see the docstring).
JETPACK_COMMON = ("pycuda>=2022.1", "onnx>=1.15")

# Desktop and server GPUs (`[trt]`, `[cuda-graph]`): pip's TensorRT wheels and a cuda-python for
# a CUDA 12 driver (13.x needs a CUDA 13 driver: pick cuda-python's major to match the driver's).
DESKTOP_CUDA_PYTHON = "cuda-python>=12.6,<13"
NOT_ON_A_JETSON = ("tensorrt", "opencv-python", "opencv-contrib-python", "opencv-python-headless", "torch")


def extras() -> Dict[str, list]:
    """{'jetpack5': [...], ...}: what setup.py puts in extras_require."""
    return {row.extra: [row.numpy, row.cuda_python] + list(JETPACK_COMMON) for row in JETPACKS}


def install_command(row: JetPack, checkout: str = ".") -> str:
    """The one command that installs edge_edet on a board with this JetPack (docs/jetson.md), from a checkout.

    nvcc goes on PATH because pip builds pycuda against the board's CUDA."""
    return (f"sudo apt-get install -y {row.apt} && export PATH=/usr/local/cuda/bin:$PATH && "
            f"python3 -m venv --system-site-packages ~/edge-venv && . ~/edge-venv/bin/activate && "
            f"pip install -U pip && pip install -e \"{checkout}[{row.extra}]\"")


def by_l4t(release_line: Optional[str]) -> Optional[JetPack]:
    """The row for an /etc/nv_tegra_release line ('# R36 (release), REVISION: 4.0, ...'), or None."""
    if not release_line:
        return None
    text = release_line.lstrip("# ").strip()
    if not text.startswith("R"):
        return None
    digits = ""
    for char in text[1:]:
        if not char.isdigit():
            break
        digits += char
    return next((row for row in JETPACKS if digits and row.l4t_major == int(digits)), None)


def cuda_python_hint(row: Optional[JetPack]) -> str:
    """How to install cuda-python here: this board's pin, or every pin when the board is unknown."""
    if row is not None:
        return f"pip install '{row.cuda_python}' (JetPack {row.major}, CUDA {row.cuda})"
    pins = "; ".join(f"JetPack {r.major}: '{r.cuda_python}'" for r in JETPACKS)
    return f"pip install '{DESKTOP_CUDA_PYTHON}' on a desktop CUDA 12 driver (on a Jetson: {pins})"
