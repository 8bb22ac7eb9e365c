"""`edge-edet bench`: latency and throughput of an exported model, optionally against PyTorch eager."""
from __future__ import annotations

import os

from ..contract.cli import add_providers_argument, non_negative_int, positive_int, thread_count


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="latency and throughput of an exported model (optionally vs PyTorch eager)",
        description="Time the model alone (median, p90, p99 latency and throughput) through its back-end "
                    "(ONNX Runtime for .onnx, TensorRT for engines) and record the machine. --compare-eager "
                    "also times the whole deploy path (host letterbox + graph with its NMS) against the PyTorch "
                    "model in eager mode with the reference post-processing, interleaved on the same frames, "
                    "with the peak memory of each side.")
    parser.add_argument("--model", required=True, help="deploy .onnx or TensorRT engine made by edge-edet")
    parser.add_argument("--batch", type=positive_int, default=None,
                        help="batch size (default: the model's own batch)")
    parser.add_argument("--iterations", type=positive_int, default=100, help="timed iterations (default 100)")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="CPU threads, at most one per core, for ONNX Runtime (and for torch with --compare-eager; "
                             "default there: torch's own count, given to both sides); a warning when the machine is "
                             "too busy for them")
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
    from ..bench.latency import bench_model, load_frames, synthetic_frames
    from ..contract.machine import describe_machine, peak_rss_mb
    from ..bench.stats import format_stats
    from ..contract.errors import EdgeEdetError
    from ..contract.fileio import write_json_atomic
    from ..runtime import Detector

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
    from ..bench.threads import bench_threads, oversubscription_warning
    from ..contract.cli import warn

    providers = args.providers
    args.threads, chosen = bench_threads(args.threads, args.compare_eager)
    options = {"threads": args.threads} if args.threads else {}
    detector = Detector.from_file(args.model, providers=providers, **options)
    busy = None
    if args.threads:
        print(f"threads: {args.threads} ({chosen})")
        busy = oversubscription_warning(args.threads)
        if busy:
            warn(busy)
    try:
        batch = args.batch or detector.backend.max_batch
        from ..contract.machine import INFERENCE_BYTES_PER_PIXEL, check_count_fits_memory

        height, width = detector.input_size
        check_count_fits_memory("--batch", batch, height * width * INFERENCE_BYTES_PER_PIXEL,
                                f"{height}x{width} images inferred at once")
        count = max(batch, 8)
        frames = load_frames(args.images, count) if args.images else synthetic_frames(count)
        report = {"model": args.model, "model_info": detector.info.summary(),
                  "backend": detector.backend.describe(), "machine": describe_machine(),
                  "batch": batch, "iterations": args.iterations, "warmup": args.warmup, "threads": args.threads,
                  "threads_chosen_by": chosen, "oversubscribed": busy,
                  "inputs": f"images from {args.images}" if args.images else "synthetic 640x480 frames"}
        report.update(bench_model(detector, frames, batch, args.iterations, args.warmup))
        print(f"{args.model} ({detector.info.model} {detector.input_size[1]}x{detector.input_size[0]}, "
              f"{report['backend']['backend']}), batch {batch}, {args.iterations} iterations")
        print(format_stats("model alone", report["latency"]))
        if "gpu_latency" in report:
            print(format_stats("GPU compute", report["gpu_latency"]))
        if args.compare_eager:
            report["compare_eager"] = _compare_eager(args, detector, frames, batch)
        if args.source:
            report["source"] = _bench_source(detector, args.source, args.max_frames)
        report["peak_rss_mb"] = peak_rss_mb()
    except MemoryError:
        raise EdgeEdetError("ran out of memory; try a smaller --batch") from None
    finally:
        detector.close()
    if args.output:
        write_json_atomic(args.output, report)
        print(f"report written to {args.output}")
    return 0


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
                                            batch, args.threads, checkpoint or RANDOM)
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
    print(f"end to end through the streaming pipeline ({source}):")
    print(format_summary(summary))
    return summary


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
