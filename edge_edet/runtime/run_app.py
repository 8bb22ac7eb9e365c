"""`edge-edet run` and `demo/webcam.py`: one argument list, one main.

    edge-edet run --engine d1.trt --source 0
    python demo/webcam.py --engine d0.onnx --source clip.mp4 --no-drop --headless --output out.mp4

Order of work: check every output (folders, video extension, port) before anything heavy, then
load the model, open the source, and only then start the stream; so a mistake costs seconds and
never leaves a file behind.  Ctrl-C / SIGTERM stop the stream cleanly (outputs finalised, summary
printed, exit 0); a second one stops at once.  Exit 1 when a live source was lost mid-run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import List, Optional, Sequence

from ..errors import EdgeEdetError
from ..argtypes import positive_int as _positive_int
from ..fileio import write_text_atomic

BUNDLED_DEPLOY_NAMES = ("person.trt", "person.engine", "person.plan", "person.onnx")
MAKE_BUNDLED = "edge-edet export --model lite0 --weights person --output person.onnx"
EXIT_SOURCE_LOST = 1


def add_arguments(parser: argparse.ArgumentParser, default_source: str = "0") -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--engine", "--model", dest="model", default=None, metavar="PATH",
                       help="deploy .onnx (ONNX Runtime) or TensorRT engine (.trt/.engine/.plan) made by edge-edet; "
                            f"default: a person detector ({', '.join(BUNDLED_DEPLOY_NAMES)}) in the current folder")
    model.add_argument("--providers", default=None,
                       help="ONNX Runtime execution providers, comma-separated, in order: cpu, cuda, tensorrt "
                            "(default: CUDA when onnxruntime-gpu has it, else CPU)")
    model.add_argument("--threads", type=_positive_int, default=None,
                       help="ONNX Runtime CPU threads (default: one per core)")
    model.add_argument("--cuda-graph", action="store_true",
                       help="TensorRT engines with a static batch: replay the enqueue as a CUDA graph "
                            "(needs cuda-python)")

    source = parser.add_argument_group("source")
    source.add_argument("--source", default=default_source,
                        help="camera index (0), /dev/videoN, video file, rtsp:// or http(s):// stream, "
                             "csi://N (Jetson CSI camera), a GStreamer pipeline ending in appsink, an image "
                             f"folder or a glob (default: {default_source})")
    drop = source.add_mutually_exclusive_group()
    drop.add_argument("--drop", dest="drop", action="store_true", default=None,
                      help="keep only the newest frame (default for cameras and streams: latency never builds up)")
    drop.add_argument("--no-drop", dest="drop", action="store_false",
                      help="process every frame (default for files and folders)")
    source.add_argument("--loop", action="store_true", help="replay a file or folder forever")
    source.add_argument("--reconnect", type=_non_negative_int, default=5,
                        help="times a lost network stream is reopened, with exponential back-off (default 5)")
    source.add_argument("--max-frames", type=_positive_int, default=None, help="stop after this many frames")

    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true",
                     help="no window (automatic when there is no display)")
    out.add_argument("--output", default=None, metavar="VIDEO",
                     help="write the annotated stream to a video file (.mp4, .avi, .mkv)")
    out.add_argument("--json", default=None, metavar="FILE",
                     help="write detections as JSON lines: frame index, timestamp, boxes in frame pixels, "
                          "label, score")
    out.add_argument("--serve", default=None, metavar="[HOST:]PORT",
                     help="MJPEG preview over HTTP, e.g. 8080 (loopback only) or 0.0.0.0:8080 (the network)")
    out.add_argument("--no-overlay", dest="overlay", action="store_false",
                     help="do not draw boxes, labels and FPS on the frames")
    out.add_argument("--summary-json", default=None, metavar="FILE",
                     help="also write the end-of-run summary as JSON")


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def find_default_model(search_dirs: Sequence[str]) -> str:
    """The bundled person detector's deploy file, or one clear sentence on how to make it."""
    for folder in search_dirs:
        for name in BUNDLED_DEPLOY_NAMES:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    raise EdgeEdetError(f"no --engine given and no person detector found ({', '.join(BUNDLED_DEPLOY_NAMES)} in "
                        f"{', '.join(dict.fromkeys(search_dirs))}); make one with `{MAKE_BUNDLED}` "
                        f"or pass --engine MODEL")


def _write_json_atomic(path: str, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def peak_rss_mb() -> Optional[float]:
    """Peak resident memory of this process (VmHWM), in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except Exception:
        return None


class _StopOnSignals:
    """SIGINT / SIGTERM ask the pipeline to stop cleanly; a second one stops at once."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.previous = {}

    def _handle(self, signum, _frame):
        if self.pipeline.stopping:
            raise KeyboardInterrupt
        self.pipeline.stop(f"stopped by {signal.Signals(signum).name}")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _log(message: str) -> None:
    print(f"edge-edet: {message}", file=sys.stderr, flush=True)


def run(args, search_dirs: Optional[Sequence[str]] = None) -> int:
    """Run a stream from parsed arguments; user mistakes raise EdgeEdetError."""
    from .mjpeg import parse_serve
    from .sinks import JsonLinesSink, MjpegSink, VideoFileSink, WindowSink, check_output_path, display_available

    model_path = args.model or find_default_model(search_dirs or [os.getcwd()])
    # 1. outputs, before anything heavy: a typo in a path must not cost a model load
    for flag, path in (("--output", args.output), ("--json", args.json), ("--summary-json", args.summary_json)):
        if path:
            check_output_path(path, flag)
    serve = parse_serve(args.serve) if args.serve else None
    sinks: List = []
    source = None
    detector = None
    try:
        if args.output:
            sinks.append(VideoFileSink(args.output))
        if serve:
            sinks.append(MjpegSink(*serve))
        # 2. model, then source
        from .detector import Detector

        providers = [p.strip() for p in args.providers.split(",") if p.strip()] if args.providers else None
        options = {"threads": args.threads} if args.threads else {}
        if args.cuda_graph:
            options["cuda_graph"] = True
        detector = Detector.from_file(model_path, providers=providers, **options)
        from .sources import open_source

        source = open_source(args.source, drop=args.drop, loop=args.loop, reconnect=args.reconnect,
                             max_frames=args.max_frames)
        for sink in sinks:
            if isinstance(sink, VideoFileSink):
                sink.fps = source.fps or 30.0
        if args.json:
            sinks.append(JsonLinesSink(args.json))
        if not args.headless:
            if display_available():
                sinks.append(WindowSink(f"edge-edet: {os.path.basename(model_path)}"))
            else:
                _log("no display found, running headless" +
                     ("" if (args.output or args.serve or args.json) else " (add --serve, --output or --json to see results)"))
    except BaseException:
        for sink in sinks:
            getattr(sink, "discard", sink.close)()
        if source is not None:
            source.close()
        if detector is not None:
            detector.close()
        raise

    from .pipeline import Pipeline
    from .stats import format_summary

    pipeline = Pipeline(detector, source, sinks, overlay=args.overlay)
    mode = "every frame" if source.drop is False else "latest frame"
    where = "".join(f", preview at {s.url}" for s in sinks if isinstance(s, MjpegSink))
    _log(f"running {detector.info.model} ({os.path.basename(model_path)}) on {source.spec.shown} ({mode}){where}; "
         f"Ctrl-C stops")
    try:
        with _StopOnSignals(pipeline):
            summary = pipeline.run()
    finally:
        detector.close()
    if summary["frames"] == 0 and not pipeline.stop_reason:
        reason = f": {source.ended_reason}" if source.ended_reason else ""
        raise EdgeEdetError(f"source {source.spec.shown} gave no frames{reason}")
    summary["peak_rss_mb"] = peak_rss_mb()
    print(format_summary(summary))
    print(f"peak RSS {summary['peak_rss_mb']} MiB")
    if summary.get("ended"):
        _log(summary["ended"])
    if args.summary_json:
        _write_json_atomic(os.path.abspath(args.summary_json), summary)
    lost = bool(source.ended_reason) and not pipeline.stop_reason
    return EXIT_SOURCE_LOST if lost else 0


def build_parser(prog: str = "edge-edet run", default_source: str = "0") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser, default_source)
    return parser


DESCRIPTION = ("Run a deploy model on a live or recorded source: capture, pre-processing, inference, "
               "post-processing and rendering overlap on threads; prints frames, dropped frames, end-to-end "
               "and engine-only FPS and per-stage p50/p99 at the end.")


def main(argv=None, prog: str = "edge-edet run", search_dirs: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry (demo/webcam.py): user mistakes print one sentence and exit 2."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args, search_dirs=search_dirs)
    except EdgeEdetError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
