"""`edge-edet bench`: latency and throughput of an exported model, optionally against PyTorch eager, or
through several back-ends side by side (`--backend onnxruntime,openvino`)."""
from __future__ import annotations

import json
import os

from ..contract.cli import (add_backend_arguments, add_providers_argument, backend_options, non_negative_int,
                             positive_int, thread_count)

ROUNDS = 10  # several back-ends: each round times every one of them in turn


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="latency and throughput of an exported model (optionally vs PyTorch eager)",
        description="Time the model alone (median, p90, p99 latency and throughput) through its back-end "
                    "(OpenVINO or ONNX Runtime for .onnx, TensorRT for engines) and record the machine; "
                    "--backend onnxruntime,openvino times each listed back-end in alternating rounds and ends "
                    "with one JSON line {\"backends\": {NAME: {\"median_ms\": ..., \"p90_ms\": ...}}}. --compare-eager "
                    "also times the whole deploy path (host letterbox + graph with its NMS) against the PyTorch "
                    "model in eager mode with the reference post-processing, interleaved on the same frames, "
                    "with the peak memory of each side.")
    parser.add_argument("--model", required=True, help="deploy .onnx or TensorRT engine made by edge-edet")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="batch size (default: the model's own batch)")
    parser.add_argument("--iterations", type=positive_int, default=100, help="timed iterations (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="CPU threads, at most one per core, for ONNX Runtime / OpenVINO (and for torch with "
                             "--compare-eager; default there: torch's own count, given to both sides); a warning when "
                             "the machine is too busy for them")
    add_backend_arguments(parser, several=True)
    add_providers_argument(parser)
    parser.add_argument("--images", default=None,
                        help="folder of images to feed (default: synthetic 640x480 frames)")
    parser.add_argument("--compare-eager", action="store_true",
                        help="also time the PyTorch eager model + reference post-processing (imports torch)")
    parser.add_argument("--eager-weights", default=None,
                        help="weights for the eager model (default: the ONNX metadata's source; 'random' allowed)")
    parser.add_argument("--no-memory", action="store_true",
                        help="with --compare-eager, skip the per-side peak-memory runs")
    parser.add_argument("--source", default=None,
                        help="also run a video file or stream end to end through the streaming pipeline")
    parser.add_argument("--max-frames", type=positive_int, default=None, help="with --source, stop after N frames")
    parser.add_argument("--output", default=None, help="write the JSON report here")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..bench.latency import bench_backends, load_frames, synthetic_frames
    from ..contract.machine import describe_machine, peak_rss_mb
    from ..bench.stats import format_stats
    from ..contract.errors import EdgeEdetError
    from ..contract.fileio import write_json_atomic
    from ..runtime import Detector
    from ..runtime.backends import OPENVINO_OPTIONS

    # every input and output checked before the model loads: a typo must not cost a whole benchmark
    if args.output:
        from ..contract.fileio import check_output_file

        check_output_file(args.output, "--output", inputs=[("--model", args.model), ("--images", args.images),
                                                           ("--source", args.source)])
    if args.source:
        from ..contract.source_uri import parse_source

        parse_source(args.source)
    if args.images and not os.path.isdir(args.images):
        raise EdgeEdetError(f"images folder {args.images} does not exist" if not os.path.exists(args.images)
                            else f"--images {args.images} is a file; give a folder of images")
    if args.compare_eager and len(args.backend) > 1:
        raise EdgeEdetError("--compare-eager times one back-end against PyTorch; give one --backend")
    from ..bench.threads import bench_threads, oversubscription_warning
    from ..contract.cli import warn

    args.threads, chosen = bench_threads(args.threads, args.compare_eager)
    detectors = {}
    try:
        for name in args.backend:
            options = backend_options(args)
            if name == "onnxruntime" and len(args.backend) > 1:  # --device / --execution-mode: OpenVINO's turn only
                options = {key: value for key, value in options.items() if key not in OPENVINO_OPTIONS}
            detector = Detector.from_file(args.model, providers=args.providers if name != "openvino" else None,
                                          backend=name, **options)
            if detector.backend.name in detectors:
                detector.close()
                raise EdgeEdetError(f"--backend {','.join(args.backend)} runs {detector.backend.name} twice "
                                    f"(auto picked it); list each back-end once")
            detectors[detector.backend.name] = detector
        busy = None
        if args.threads:
            print(f"threads: {args.threads} ({chosen})")
            busy = oversubscription_warning(args.threads)
            if busy:
                warn(busy)
        first = next(iter(detectors.values()))
        batch = args.batch or first.backend.max_batch
        from ..contract.machine import INFERENCE_BYTES_PER_PIXEL, check_count_fits_memory

        height, width = first.input_size
        check_count_fits_memory("--batch", batch, height * width * INFERENCE_BYTES_PER_PIXEL,
                                f"{height}x{width} images inferred at once")
        count = max(batch, 8)
        frames = load_frames(args.images, count) if args.images else synthetic_frames(count)
        results = bench_backends(detectors, frames, batch, args.iterations, args.warmup, rounds=ROUNDS)
        report = {"model": args.model, "model_info": first.info.summary(), "machine": describe_machine(),
                  "batch": batch, "iterations": args.iterations, "warmup": args.warmup, "threads": args.threads,
                  "threads_chosen_by": chosen, "oversubscribed": busy,
                  "inputs": f"images from {args.images}" if args.images else "synthetic 640x480 frames",
                  "backends": {name: dict(backend=detector.backend.describe(), **results[name])
                               for name, detector in detectors.items()}}
        report.update(next(iter(report["backends"].values())))  # the first back-end's, where one-back-end readers look
        names = ", ".join(report["backends"])
        print(f"{args.model} ({first.info.model} {width}x{height}, {names}), batch {batch}, {args.iterations} "
              f"iterations" + (f" each, in {ROUNDS} alternating rounds" if len(detectors) > 1 else ""))
        for name, entry in report["backends"].items():
            title = "model alone" if len(detectors) == 1 else name
            print(format_stats(title, entry["latency"]) + f"   {entry['backend']['label']}")
            if "gpu_latency" in entry:
                print(format_stats("GPU compute", entry["gpu_latency"]))
        if len(detectors) > 1:
            _print_ratios(report["backends"])
        if args.compare_eager:
            report["compare_eager"] = _compare_eager(args, first, frames, batch)
        if args.source:
            for name, detector in detectors.items():
                report["backends"][name]["source"] = _bench_source(detector, args.source, args.max_frames)
            report["source"] = next(iter(report["backends"].values()))["source"]
        report["peak_rss_mb"] = peak_rss_mb()
    except MemoryError:
        raise EdgeEdetError("ran out of memory; try a smaller --batch") from None
    finally:
        for detector in detectors.values():
            detector.close()
    if args.output:
        write_json_atomic(args.output, report)
        print(f"report written to {args.output}")
    print(json.dumps({"backends": {name: _headline(entry) for name, entry in report["backends"].items()}}))
    return 0


def _headline(entry: dict) -> dict:
    """One back-end's figures for the last line: latency percentiles, throughput, streaming FPS if run."""
    latency = entry["latency"]
    line = {key: latency[key] for key in ("median_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_ips")}
    line["label"] = entry["backend"]["label"]
    source = entry.get("source")
    if source:
        line.update({"stream_fps": source.get("end_to_end_fps"), "stream_engine_fps": source.get("engine_fps"),
                     "stream_vs_engine": source.get("end_to_end_vs_engine")})
    return line


def _print_ratios(backends: dict) -> None:
    """How much faster than the first listed back-end each other one is, by median latency."""
    names = list(backends)
    base = backends[names[0]]["latency"]["median_ms"]
    for name in names[1:]:
        median = backends[name]["latency"]["median_ms"]
        print(f"{name} vs {names[0]} (median): {base / median:.2f}x" if median else f"{name}: no timing")


def _compare_eager(args, detector, frames, batch) -> dict:
    from ..bench.eager import RANDOM, EagerDetector, compare_eager, eager_checkpoint
    from ..bench.memory import measure_peak_memory
    from ..bench.stats import format_stats

    checkpoint, same = eager_checkpoint(detector.info, args.eager_weights)
    if not same:
        print("note: the eager model's weights differ from the ONNX's, so only the timings compare")
    eager = EagerDetector(detector.info, checkpoint, args.threads)
    result = compare_eager(detector, eager, frames, batch, args.iterations, args.warmup)
    result.update({"eager_weights": checkpoint or RANDOM, "same_weights": same})
    print(format_stats("deployed end to end", result["deployed"]))
    print(format_stats("PyTorch eager + ref", result["eager"]))
    print(f"speed-up (median): {result['speedup_median']:.2f}x")
    if not args.no_memory:
        memory = {side: measure_peak_memory(side, args.model, args.images, len(frames), min(args.iterations, 20),
                                            batch, args.threads, checkpoint or RANDOM, detector.backend.name)
                  for side in ("deployed", "eager")}
        result["peak_memory"] = memory
        print(f"peak memory: deployed {memory['deployed']['peak_rss_mb']:.0f} MiB, "
              f"eager {memory['eager']['peak_rss_mb']:.0f} MiB (whole process, each side alone)")
    return result


def _bench_source(detector, source: str, max_frames=None) -> dict:
    """End to end through the streaming pipeline (capture, letterbox, engine, post, overlay)."""
    from ..runtime.pipeline import benchmark_source
    from ..runtime.stats import format_summary

    summary = benchmark_source(detector, source, max_frames=max_frames)
    print(f"end to end through the streaming pipeline ({source}, {detector.backend.name}):")
    print(format_summary(summary))
    return summary


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
