"""`--decode auto|cpu|nvdec`: which reader decodes a video file or an rtsp:// stream.

    plan = plan_decode(parse_source("clip.mp4"), "auto", pixel_format="BGRx")
    plan.pipeline   # the GStreamer pipeline (NVDEC) or None (OpenCV's FFmpeg on the CPU)
    plan.note       # with auto: one sentence saying why the CPU reader was chosen, else ''

auto uses the hardware pipeline when this OpenCV has GStreamer, the stream's codec is known and
every element of the pipeline is in GStreamer's registry (asked through PyGObject when it is
importable, else `gst-inspect-1.0 --exists`); otherwise the CPU reader, saying why.  nvdec makes
any of those a one-sentence error; cpu always takes FFmpeg.  The pipeline strings themselves are
built in contract/gst_pipeline.py.  The probe is a parameter so the choice is tested without
GStreamer.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional, Sequence

from .errors import EdgeEdetError
from .gst_pipeline import (HARDWARE_PROFILES, LIVE_SCHEMES, PROFILES, VIDEO_EXTENSIONS, codec_from_extension,
                           csi_pipeline, decode_pipeline, needed_elements)
from .source_uri import SourceSpec, csi_options

DECODE_MODES = ("auto", "cpu", "nvdec")
CPU_READER = "FFmpeg (CPU)"
# FOURCCs OpenCV's FFmpeg back-end reports (container tags, or the codec name when there is none)
FOURCC_CODECS = {"avc1": "h264", "avc3": "h264", "h264": "h264", "x264": "h264",
                 "hev1": "h265", "hvc1": "h265", "hevc": "h265", "h265": "h265", "x265": "h265",
                 "mp4v": "mpeg4", "fmp4": "mpeg4", "xvid": "mpeg4", "divx": "mpeg4", "dx50": "mpeg4"}


class DecodePlan:
    """What reads a source: a GStreamer pipeline, or None for OpenCV's own back-ends."""

    def __init__(self, pipeline: Optional[str], description: str, note: str = "", pixel_format: str = "BGR"):
        self.pipeline, self.description, self.note, self.pixel_format = pipeline, description, note, pixel_format

    def describe(self) -> str:
        """One line for the log and the exit summary."""
        return f"{self.description}: {self.pipeline}" if self.pipeline else self.description

    def __repr__(self):
        return f"DecodePlan({self.describe()!r})"


class SystemProbe:
    """What this machine has: OpenCV's GStreamer, GStreamer's element registry, a stream's codec."""

    def opencv_gstreamer(self) -> bool:
        from .machine import opencv_video_backends

        return bool(opencv_video_backends().get("GStreamer"))

    def __init__(self):
        self._elements = {}

    def element_exists(self, name: str) -> Optional[bool]:
        """Whether GStreamer's registry has this element factory; None when nothing can tell."""
        if name not in self._elements:
            self._elements[name] = self._ask_registry(name)
        return self._elements[name]

    @staticmethod
    def _ask_registry(name: str) -> Optional[bool]:
        try:
            import gi

            gi.require_version("Gst", "1.0")
            from gi.repository import Gst

            Gst.init(None)
            return Gst.ElementFactory.find(name) is not None
        except (ImportError, ValueError, AttributeError):
            pass
        tool = shutil.which("gst-inspect-1.0")
        if tool is None:
            return None
        try:
            return subprocess.run([tool, "--exists", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return None

    def codec(self, spec: SourceSpec) -> Optional[str]:
        """'h264' / 'h265' / 'mpeg4' from the file extension or OpenCV's FFmpeg, else None."""
        known = codec_from_extension(spec.target) if spec.kind == "file" else None
        if known:
            return known
        try:
            import cv2

            from .frames import OPEN_TIMEOUT_MS, _QuietOpenCV

            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS] if spec.live else []
            with _QuietOpenCV():
                cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
            try:
                fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)) if cap.isOpened() else 0
            finally:
                cap.release()
        except Exception:
            return None
        name = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ").lower() if fourcc > 0 else ""
        return FOURCC_CODECS.get(name)


def decodable(spec: SourceSpec) -> bool:
    """A source --decode is about: a video file of a known container or an rtsp:// stream."""
    if spec.kind == "file":
        return os.path.splitext(str(spec.target))[1].lower() in VIDEO_EXTENSIONS
    return spec.kind == "stream" and str(spec.target).split("://", 1)[0].lower() in LIVE_SCHEMES


def plan_decode(spec: SourceSpec, mode: str = "auto", pixel_format: str = "BGR", probe=None,
                profiles: Sequence[str] = HARDWARE_PROFILES) -> DecodePlan:
    """Choose the reader of `spec` (see the module docstring); nvdec raises EdgeEdetError when it cannot."""
    if mode not in DECODE_MODES:
        raise EdgeEdetError(f"--decode {mode}: expected one of {', '.join(DECODE_MODES)}")
    if spec.kind == "gstreamer":  # the user's pipeline as written; csi:// may skip the BGR conversion
        if spec.uri.lower().startswith("csi://"):
            return DecodePlan(csi_pipeline(pixel_format=pixel_format, **csi_options(spec.uri)), "GStreamer (CSI, VIC)",
                              pixel_format=pixel_format)
        return DecodePlan(str(spec.target), "GStreamer (your pipeline)")
    if mode == "cpu" or not decodable(spec):
        if mode == "nvdec":
            raise EdgeEdetError(f"--decode nvdec reads video files ({', '.join(VIDEO_EXTENSIONS)}) and rtsp:// "
                                f"streams; {spec.shown} is neither")
        return DecodePlan(None, CPU_READER if spec.kind in ("file", "stream") else "OpenCV")
    probe = probe or SystemProbe()
    pipeline, reason = _hardware_pipeline(spec, probe, profiles, pixel_format)
    if pipeline is not None:
        return DecodePlan(pipeline[1], f"GStreamer, {pipeline[0]}", pixel_format=pixel_format)
    if mode == "nvdec":
        raise EdgeEdetError(f"--decode nvdec cannot decode {spec.shown} in hardware: {reason}; "
                            f"use --decode cpu (FFmpeg)")
    return DecodePlan(None, CPU_READER, note=f"--decode auto: decoding {spec.shown} with FFmpeg on the CPU: {reason}")


def _hardware_pipeline(spec, probe, profiles, pixel_format):
    """((decoder, pipeline), '') for the first profile whose elements all exist, or (None, why not)."""
    if not probe.opencv_gstreamer():
        return None, ("this OpenCV has no GStreamer (pip's opencv-python never has; on a Jetson use JetPack's "
                      "OpenCV through a --system-site-packages venv)")
    codec = probe.codec(spec)
    if codec is None:
        return None, "its codec is unknown (OpenCV's FFmpeg could not tell H.264, H.265 or MPEG-4)"
    live = spec.kind == "stream"
    missing_everywhere = []
    for name in profiles:
        profile = PROFILES[name]
        needed = needed_elements(str(spec.target), codec, name, live, pixel_format)
        missing = [element for element in needed if not probe.element_exists(element)]
        if not missing:
            return (profile.decoders[codec], decode_pipeline(str(spec.target), codec, name, live, pixel_format)), ""
        missing_everywhere.append(f"{name}: no {', '.join(missing)}")
    return None, f"GStreamer lacks the elements for {codec} ({'; '.join(missing_everywhere)})"
