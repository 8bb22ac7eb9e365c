"""TensorRT versions as data: which generation a version belongs to and what it can do.

Three generations are in the field (see ../shared/notes/tensorrt.md and NVIDIA's migration guides):
  * 8.5 (JetPack 5.1): weak typing, precision builder flags, INT8 calibrators, name-based I/O API;
  * 10.x (JetPack 6.x): bindings API gone, calibrators deprecated in 10.1 but working,
    strongly typed networks available;
  * 11.x: strongly typed only - the FP16/INT8 builder flags and calibrators were removed, so the
    precision must already be in the ONNX graph.
Everything here is plain Python so the dispatch is tested without TensorRT.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from ..contract.errors import EdgeEdetError
from ..contract.names import TRT_INSTALL_HINT

GEN_8 = "8.x"
GEN_10 = "10.x"
GEN_11 = "11.x"
OLDEST = (8, 5, 0)

INSTALL_HINT = TRT_INSTALL_HINT


@dataclass(frozen=True)
class TrtVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "TrtVersion":
        """'8.5.2.2', '10.3.0', '11.4.1.post1' -> TrtVersion."""
        match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(text))
        if not match:
            raise EdgeEdetError(f"cannot read a TensorRT version from '{text}'")
        major, minor, patch = (int(g) if g is not None else 0 for g in match.groups())
        return cls(major, minor, patch)

    @property
    def tuple(self) -> Tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def generation(self) -> str:
        if self.tuple < OLDEST:
            raise EdgeEdetError(f"TensorRT {self} is older than 8.5, the oldest this project supports "
                                f"(JetPack 5.1 ships 8.5.2); upgrade JetPack or TensorRT")
        if self.major in (8, 9):
            return GEN_8
        if self.major == 10:
            return GEN_10
        return GEN_11

    # -- capabilities (each one from NVIDIA's docs; see edge_edet.engine docstring) --------
    @property
    def has_precision_flags(self) -> bool:
        """BuilderFlag.FP16 / INT8 exist (removed in 11.0)."""
        return self.major < 11

    @property
    def has_calibrator(self) -> bool:
        """IBuilderConfig.int8_calibrator exists (deprecated in 10.1, removed in 11.0)."""
        return self.major < 11

    @property
    def has_strongly_typed(self) -> bool:
        """NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x; always on, flag deprecated, in 11)."""
        return self.major >= 10

    @property
    def needs_explicit_batch_flag(self) -> bool:
        """8.x needs EXPLICIT_BATCH for ONNX networks; 10.x ignores it; 11.x removed it."""
        return self.major < 10

    @property
    def has_progress_monitor(self) -> bool:
        """IProgressMonitor and IBuilderConfig.progress_monitor arrived in 10.0."""
        return self.major >= 10

    @property
    def has_version_compatible(self) -> bool:
        """BuilderFlag.VERSION_COMPATIBLE and hardware_compatibility_level arrived in 8.6."""
        return self.tuple >= (8, 6, 0)

    @property
    def supports_dla(self) -> bool:
        """Whether this release has DLA on some Jetson (Linux): 8.5 and 10.0-10.7 ("10.7 was the last
        10.x release that supported DLA"); none in 10.8-11.4.0 (11.4.0: Windows on ARM only); 11.4.1
        on Jetson AGX Orin with JetPack 7.2.2+; none after 11.4 (11.5 does not support JetPack)."""
        if self.major < 10:
            return True
        if self.major == 10:
            return self.minor <= 7
        return (self.major, self.minor) == (11, 4) and self.patch >= 1

    def dla_refusal(self, board: Optional[str] = None) -> Optional[str]:
        """A sentence if DLA cannot be used with this TensorRT on `board` (the Jetson model, None off a
        Jetson: then the GPU's own DLA core count decides), else None.  From NVIDIA's "Working with DLA"
        pages of TensorRT 10.7, 11.4.0, 11.4.1 and 11.5.0."""
        name = (board or "").lower()
        if "thor" in name:
            return f"{board} has no DLA (Jetson Thor has none); build for the GPU (drop --dla-core)"
        if "orin nano" in name:
            return f"{board} has no DLA (Jetson Orin Nano has none); build for the GPU (drop --dla-core)"
        if not self.supports_dla:
            if self.major == 10:
                return (f"TensorRT {self} has no DLA support (10.7 was the last 10.x release with DLA); "
                        f"build for the GPU (drop --dla-core) or use JetPack 6 with TensorRT <= 10.7")
            if (self.major, self.minor, self.patch) == (11, 4, 0):
                return (f"TensorRT {self} has DLA only on Windows on ARM; on Jetson AGX Orin use TensorRT 11.4.1 "
                        f"(JetPack 7.2.2+), or build for the GPU (drop --dla-core)")
            if self.tuple > (11, 4, 99):
                return (f"TensorRT {self} does not support JetPack, so no Jetson DLA (11.4.1 is the JetPack release, "
                        f"with DLA on Jetson AGX Orin); build for the GPU (drop --dla-core)")
            return (f"TensorRT {self} has no DLA support (DLA returned in TensorRT 11.4.1 with JetPack 7.2.2, on "
                    f"Jetson AGX Orin only); build for the GPU (drop --dla-core) or upgrade to TensorRT 11.4.1")
        if self.major >= 11 and board and "agx orin" not in name:
            return (f"TensorRT {self} has DLA only on Jetson AGX Orin (JetPack 7.2.2+), not on {board}; build for "
                    f"the GPU (drop --dla-core)")
        return None
