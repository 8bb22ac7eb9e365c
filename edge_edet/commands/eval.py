"""`edge-edet eval`: COCO AP of a deploy ONNX or engine on a COCO-format image folder."""
from __future__ import annotations


from ..contract.cli import (add_backend_arguments, add_providers_argument, backend_options, counted, positive_int,
                             thread_count)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="COCO AP of an exported model on a COCO-format dataset",
        description="Run a deploy ONNX (OpenVINO or ONNX Runtime: --backend) or TensorRT engine over the images "
                    "of a COCO json "
                    "and report AP, AP50, AP75 and AP small/medium/large (pycocotools). The model's labels "
                    "are matched to the dataset's categories by name, so 90-id and 80-class label lists both "
                    "work. An ONNX graph's score floor is lowered to 0.001 for the run (the official "
                    "evaluation's), so a graph exported for display scores faithfully; an engine keeps its own "
                    "(export with --score-threshold 0.001 before building one to evaluate).")
    parser.add_argument("--model", required=True, help="deploy .onnx or TensorRT engine made by edge-edet")
    parser.add_argument("--images", required=True, help="folder holding the json's file_name entries")
    parser.add_argument("--annotations", required=True, help="COCO instances json (images, annotations, categories)")
    parser.add_argument("--max-images", type=positive_int, default=None, help="evaluate only the first N images")
    parser.add_argument("--output", default=None, help="write the JSON report here")
    parser.add_argument("--keep-score-threshold", action="store_true",
                        help="score an ONNX graph with the score floor it was exported with (default: lowered to "
                             "0.001, as AP needs the low-score boxes)")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="ONNX Runtime / OpenVINO CPU threads, at most one per core")
    add_backend_arguments(parser)
    add_providers_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..eval.coco import load_coco
    from ..contract.fileio import write_json_atomic
    from ..eval.runner import OFFICIAL_SCORE_THRESHOLD, evaluate_detector, format_metrics
    from ..runtime import Detector

    if args.output:  # before the run: a bad --output must not lose an hour of evaluation
        from ..contract.fileio import check_output_file

        check_output_file(args.output, "--output", inputs=[("--annotations", args.annotations),
                                                           ("--model", args.model)])
    coco = load_coco(args.annotations)  # a malformed file fails before a model loads
    options = backend_options(args)
    if not args.keep_score_threshold:
        options["score_floor"] = OFFICIAL_SCORE_THRESHOLD
    detector = Detector.from_file(args.model, providers=args.providers, backend=args.backend, **options)
    try:
        report = evaluate_detector(detector, coco, args.images, max_images=args.max_images,
                                   progress=not args.no_progress)
    finally:
        detector.close()
    report.update({"model": args.model, "annotations": args.annotations, "images_dir": args.images})
    images = report["images"]
    print(f"{args.model}: {counted(images['evaluated'], 'image')}, "
          f"{counted(report['categories']['evaluated'], 'category', 'categories')}, "
          f"{counted(report['detections'], 'detection')}, {report['images_per_second']} images/s, "
          f"{report['backend']['label']}")
    print(format_metrics(report["metrics"]))
    if args.output:
        write_json_atomic(args.output, report)
        print(f"report written to {args.output}")
    return 1 if images["skipped"] else 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
