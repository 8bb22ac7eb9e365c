"""`edge-edet run` and `demo/webcam.py`: one argument list, one main (the library is edge_edet.runtime).

    edge-edet run --engine d1.trt --source 0
    python demo/webcam.py --engine d0.onnx --source clip.mp4 --no-drop --headless --output out.mp4
    edge-edet run --engine d0_b4.trt --source 0 --source rtsp://cam1/s --output out_{source}.mp4 --serve 8080

Order of work: check every output (folders, video extension, port) before anything heavy, then
load the model (once, however many sources), open the sources, and only then start the stream;
so a mistake costs seconds and never leaves a file behind.  Ctrl-C / SIGTERM stop the stream
cleanly (outputs finalised, summary printed, exit 0); a second one stops at once.  Exit 1 when a
live source was lost (or failed) mid-run; the others run on until they end.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import List, Optional, Sequence

from ..contract.cli import (add_backend_arguments, add_providers_argument, backend_options, guarded,
                             native_stderr_quiet, non_negative_int, positive_int, thread_count, warn)
from ..contract.decode import DECODE_MODES
from ..contract.errors import EdgeEdetError
from ..contract.fileio import STREAM, check_distinct_outputs, check_output_file, write_json_atomic
from ..contract.machine import peak_rss_mb
from ..contract.names import ENGINE_EXTENSIONS, ONNX_EXTENSION
from ..runtime.sinks import sink_kind

BUNDLED_DEPLOY_NAMES = tuple("person" + ext for ext in ENGINE_EXTENSIONS + (ONNX_EXTENSION,))
MAKE_BUNDLED = "edge-edet export --model lite0 --weights person --output person.onnx"
EXIT_SOURCE_LOST = 1


def add_arguments(parser: argparse.ArgumentParser, default_source: str = "0") -> None:
    model = parser.add_argument_group("model")
    model.add_argument("--engine", "--model", dest="model", default=None, metavar="PATH",
                       help="deploy .onnx (OpenVINO or ONNX Runtime: --backend) or TensorRT engine "
                            "(.trt/.engine/.plan) made by edge-edet, or "
                            "triton://HOST:PORT/MODEL (a model served by `edge-edet serve` or tritonserver); "
                            f"default: a person detector ({', '.join(BUNDLED_DEPLOY_NAMES)}) in the current folder")
    add_backend_arguments(model)
    add_providers_argument(model)
    model.add_argument("--threads", type=thread_count, default=None,
                       help="ONNX Runtime / OpenVINO CPU threads, at most one per core (default: one per core)")
    model.add_argument("--cuda-graph", action="store_true",
                       help="TensorRT engines with a static batch: replay the enqueue as a CUDA graph "
                            "(needs cuda-python)")

    shown = parser.add_argument_group("detections")
    shown.add_argument("--threshold", type=float, default=None, metavar="SCORE",
                       help="hide boxes scoring under SCORE (0..1) in every output; default: the model's own "
                            "default threshold from its metadata; it cannot go below the graph's floor")
    shown.add_argument("--classes", type=_names, default=None, metavar="NAMES",
                       help="keep only these labels, comma-separated by name, e.g. person,car (default: all)")

    source = parser.add_argument_group("source")
    source.add_argument("--source", action="append", default=None, metavar="URI",
                        help="camera index (0), /dev/videoN, video file, rtsp:// or http(s):// stream, "
                             "csi://N (Jetson CSI camera), a GStreamer pipeline ending in appsink, an image "
                             f"folder or a glob (default: {default_source}); repeat it for several sources, "
                             "numbered from 0 in this order: their frames go through the one model in batches "
                             "(a dynamic-batch model) or in turn")
    parser.set_defaults(default_source=default_source)
    drop = source.add_mutually_exclusive_group()
    drop.add_argument("--drop", dest="drop", action="store_true", default=None,
                      help="keep only the newest frame (default for cameras and streams: latency never builds up)")
    drop.add_argument("--no-drop", dest="drop", action="store_false",
                      help="process every frame (default for files and folders)")
    source.add_argument("--loop", action="store_true", help="replay a file or folder forever")
    source.add_argument("--reconnect", type=non_negative_int, default=5,
                        help="times a lost network stream is reopened, with exponential back-off (default 5)")
    source.add_argument("--max-frames", type=positive_int, default=None,
                        help="stop each source after this many frames")
    source.add_argument("--decode", choices=DECODE_MODES, default="auto",
                        help="video files (.mp4 .mkv .mov .avi .h264 .h265) and rtsp:// streams: auto = hardware "
                             "decoding through GStreamer (nvv4l2decoder on a Jetson, nvh264dec/nvh265dec on a desktop "
                             "GPU) where this OpenCV and GStreamer have it, else FFmpeg on the CPU (saying why); "
                             "cpu = FFmpeg; nvdec = hardware or an error (default: auto; docs/jetson.md)")
    source.add_argument("--verbose", action="store_true",
                        help="print how each source is decoded (the GStreamer pipeline) when the stream starts")

    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true",
                     help="no window (automatic when there is no display)")
    out.add_argument("--output", action="append", default=[], metavar="URI",
                     help="where results go; may be given several times: a video file (.mp4, .avi, .mkv, .mov), "
                          "a JSON-lines file (.jsonl: frame index, timestamp, source, boxes in frame pixels, label, "
                          "score), a folder DIR/ (one annotated image per frame, an image source's file names), "
                          "http://HOST:PORT (MJPEG preview; 127.0.0.1 = this machine only) or display://0 "
                          "(a window); with several sources {source} in a file name makes one file per source "
                          "(out_{source}.mp4), a preview serves /stream/N.mjpg per source and all of them tiled")
    out.add_argument("--json", default=None, metavar="FILE",
                     help="same as --output FILE.jsonl, whatever the file's extension; '-' (standard output) "
                          "or an existing FIFO receive the lines as a stream, one flushed line per frame; "
                          "several sources share it (each line has its source) unless the name has {source}")
    out.add_argument("--serve", default=None, metavar="[HOST:]PORT",
                     help="same as --output http://HOST:PORT; e.g. 8080 (loopback only) or 0.0.0.0:8080 (the network)")
    out.add_argument("--no-overlay", dest="overlay", action="store_false",
                     help="do not draw boxes, labels and FPS on the frames")
    out.add_argument("--summary-json", default=None, metavar="FILE",
                     help="also write the end-of-run summary as JSON")

    count = parser.add_argument_group("tracking and counting (docs/analytics.md)")
    count.add_argument("--track", action="store_true",
                       help="track objects (ByteTrack-style, per class): a stable track_id per detection in the "
                            "JSON lines, ID and trail on the overlay")
    count.add_argument("--line", action="append", default=[], metavar="X1,Y1,X2,Y2[,NAME]",
                       help="count tracks crossing this line, per direction and class (in = to the right-hand "
                            "side walking from point 1 to point 2); pixels or fractions 0-1 of the frame; repeatable; "
                            "N:X1,... counts on source N only (default: every source)")
    count.add_argument("--zone", action="append", default=[], metavar="X1,Y1,X2,Y2,X3,Y3,...[,NAME]",
                       help="report occupancy and dwell time per track inside this polygon (3+ points, pixels or "
                            "fractions); repeatable; N:X1,... for source N only (default: every source)")


def _names(text: str) -> List[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more label names, comma-separated")
    return names


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


def output_uris(args) -> List[tuple]:
    """(uri, kind, flag) for every output: --output URIs, plus the --json / --serve aliases."""
    outputs = [(uri, sink_kind(uri), "--output") for uri in args.output]
    if args.json:
        outputs.append((args.json, "jsonl", "--json"))
    if args.serve:
        outputs.append((f"http://{args.serve}", "mjpeg", "--serve"))
    return outputs


def run(args, search_dirs: Optional[Sequence[str]] = None) -> int:
    """Run a stream from parsed arguments; user mistakes raise EdgeEdetError.  FFmpeg's and OpenCV's
    own log lines are hidden (EDGE_EDET_NATIVE_LOG=1 shows them): our one sentence says what failed."""
    with native_stderr_quiet():
        return _run(args, search_dirs)


def _run(args, search_dirs: Optional[Sequence[str]] = None) -> int:
    from ..contract.source_uri import parse_source
    from ..runtime.outputs import place_outputs
    from ..runtime.sinks import MjpegSink, VideoFileSink, WindowSink, display_available, open_sink

    model_path = args.model or find_default_model(search_dirs or [os.getcwd()])
    uris = list(args.source or [args.default_source])
    outputs = place_outputs(output_uris(args), len(uris))  # (uri, kind, flag, source or None: every source)
    # 1. outputs, before anything heavy: a typo in a path must not cost a model load, and no output
    #    may replace an input or another output of this run
    inputs = [("--engine", model_path)] + [("--source", uri) for uri in uris]
    files = [(flag, uri) for uri, kind, flag, _ in outputs if kind in ("video", "jsonl")]
    for uri, kind, flag, _ in outputs:
        if kind in ("video", "jsonl"):  # only JSON lines may be `-` or a FIFO (a stream)
            check_output_file(uri, flag, inputs=inputs, stream_ok=kind == "jsonl")
    if args.summary_json:
        check_output_file(args.summary_json, "--summary-json", inputs=inputs)
    check_distinct_outputs(files + [("--summary-json", args.summary_json)])
    if sum(1 for _, uri in files if uri == STREAM) > 1:
        raise EdgeEdetError("only one output can go to standard output ('-')")
    to_stdout = any(uri == STREAM for _, uri in files)
    from ..runtime.analytics.options import parse_options

    names = [parse_source(uri).shown for uri in uris]
    # text mistakes before the model loads
    shapes = parse_options(args.track, args.line, args.zone, sources=len(uris), log=_log)
    analytics = None
    shared: List = []  # outputs every source writes to
    own: List[List] = [[] for _ in uris]  # each source's own outputs
    opened: List = []
    sources: List = []
    detector = None
    title = f"edge-edet: {os.path.basename(model_path)}"

    def keep(sink, index):
        opened.append(sink)
        (shared if index is None else own[index]).append(sink)

    try:
        for uri, kind, flag, index in outputs:
            if kind != "jsonl":  # JSON lines open last: nothing to discard before the model loads
                keep(open_sink(uri, kind, title=title, sources=names, inputs=inputs), index)
        # 2. the model (once), then the sources
        from ..runtime.detector import Detector

        options = backend_options(args)
        if args.cuda_graph:
            options["cuda_graph"] = True
        detector = Detector.from_file(model_path, providers=args.providers, backend=args.backend, **options)
        from ..runtime.detection_filter import make_filter

        detector.filter = make_filter(detector.info, args.threshold, args.classes, warn=warn)
        if detector.info.weights_warning():
            warn(detector.info.weights_warning())
        from ..runtime.sources import open_source

        # BGRx: a GStreamer source skips its CPU BGRx -> BGR conversion; the letterbox reads BGRx and
        # the pipeline converts only the frames it renders
        for uri in uris:
            source = open_source(uri, drop=args.drop, loop=args.loop, reconnect=args.reconnect,
                                 max_frames=args.max_frames, decode=args.decode, pixel_format="BGRx")
            sources.append(source)
            where = f"{source.spec.shown}: " if len(uris) > 1 else ""
            if source.decode.note:
                _log(where + source.decode.note)
            if args.verbose:
                _log(f"{where}decode: {source.decode.describe()}")
        if shapes is not None:  # shapes against each frame, before the stream
            analytics = [_analytics_for(specs, source, k, len(sources)) for k, (specs, source) in
                         enumerate(zip(shapes, sources))]
        for uri, kind, flag, index in outputs:
            if kind == "jsonl":
                keep(open_sink(uri, kind, flag=flag), index)
        for index, sinks in [(None, shared)] + list(enumerate(own)):
            for sink in sinks:
                if isinstance(sink, VideoFileSink):  # a shared video: one source (place_outputs)
                    sink.fps = sources[index or 0].fps or 30.0
        if not args.headless and not any(isinstance(s, WindowSink) for s in opened):
            if display_available():
                keep(WindowSink(title, sources=names), None)
            else:
                _log("no display found, running headless" +
                     ("" if outputs else " (add --output out.mp4, dets.jsonl or http://127.0.0.1:8080 to see results)"))
    except BaseException:
        for sink in opened:
            getattr(sink, "discard", sink.close)()
        for source in sources:
            source.close()
        if detector is not None:
            detector.close()
        raise

    from ..runtime.pipeline import Pipeline
    from ..runtime.stats import format_summary

    pipeline = Pipeline(detector, sources, shared, overlay=args.overlay, analytics=analytics, source_sinks=own,
                        log=_log)
    where = "".join(f", preview at {s.url}" for s in opened if isinstance(s, MjpegSink))
    kept = f", classes {', '.join(args.classes)}" if args.classes else ""
    _log(f"running {detector.info.model} ({os.path.basename(model_path)}, {detector.backend.label()}) on "
         f"{_describe_sources(pipeline)}{where}; "
         f"showing scores >= {detector.filter.threshold:g}{kept}; Ctrl-C stops")
    try:
        with _StopOnSignals(pipeline):
            summary = pipeline.run()
    finally:
        detector.close()
    if summary["frames"] == 0 and not pipeline.stop_reason:
        raise EdgeEdetError(_no_frames(pipeline.lanes))
    summary["peak_rss_mb"] = peak_rss_mb()
    report = sys.stderr if to_stdout else sys.stdout  # standard output carries the JSON lines then
    print(format_summary(summary), file=report)
    print(f"peak RSS {summary['peak_rss_mb']} MiB", file=report)
    for lane in pipeline.lanes:
        if lane.frames == 0 and len(pipeline.lanes) > 1 and not pipeline.stop_reason:
            warn(_no_frames([lane]))
    if summary.get("ended"):
        _log(summary["ended"])
    if args.summary_json:
        write_json_atomic(os.path.abspath(args.summary_json), summary)
    lost = any(lane.ended_reason for lane in pipeline.lanes) and not pipeline.stop_reason
    return EXIT_SOURCE_LOST if lost else 0


def _analytics_for(specs, source, index: int, count: int):
    """Tracking and the shapes of one source; with several sources a mistake names the source."""
    from ..runtime.analytics.options import for_source

    try:
        return for_source(specs, source, log=_log)
    except EdgeEdetError as exc:
        if count == 1:
            raise
        raise EdgeEdetError(f"source {index} ({source.spec.shown}): {exc}") from None


def _mode(source) -> str:
    return "every frame" if source.drop is False else "latest frame"


def _describe_sources(pipeline) -> str:
    """'clip.mp4 (every frame)', or the numbered sources and how they share the model."""
    lanes = pipeline.lanes
    if len(lanes) == 1:
        return f"{lanes[0].name} ({_mode(lanes[0].source)})"
    listed = ", ".join(f"{lane.index}: {lane.name} ({_mode(lane.source)})" for lane in lanes)
    capacity = pipeline.batch_capacity
    if capacity == 1:
        how = ("one frame per inference, the sources in turn (the model's batch is 1; export with "
               f"--dynamic-batch {len(lanes)} to batch them)")
    else:
        how = f"batches of up to {capacity} frames"
    return f"{len(lanes)} sources ({listed}), {how}"


def _no_frames(lanes) -> str:
    parts = []
    for lane in lanes:
        reason = f": {lane.ended_reason}" if lane.ended_reason else ""
        parts.append(f"source {lane.name} gave no frames{reason}")
    return "; ".join(parts)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a model on a camera, stream, video or image folder",
                                   description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


DESCRIPTION = ("Run a deploy model on one or more live or recorded sources: capture, pre-processing, inference, "
               "post-processing and rendering overlap on threads, and several sources share the one model in "
               "batches; prints frames, dropped frames, end-to-end and engine-only FPS and per-stage p50/p99 "
               "(and each source's frames and FPS) at the end.")


def main(argv=None, prog=None, search_dirs: Optional[Sequence[str]] = None) -> int:
    """The same arguments and code as `edge-edet run`; demo/webcam.py adds its own folder to the model search."""
    from . import command_parser

    parser = command_parser(__import__(__name__, fromlist=["register"]), prog)
    args = parser.parse_args(argv)
    return guarded(lambda: run(args, search_dirs=search_dirs), parser.prog)
