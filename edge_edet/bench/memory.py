"""Peak memory of one side, measured in a fresh child process so the other side's allocations
(and torch's, for the deployed side) do not count.

    python -m edge_edet.bench.memory deployed MODEL.onnx [--images DIR] [--iterations N] [--threads N]
    python -m edge_edet.bench.memory eager MODEL.onnx --checkpoint PATH|random ...

prints one JSON line: peak resident memory of the whole process, and after imports only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Optional

from ..contract.cli import guarded
from ..contract.errors import EdgeEdetError

SIDES = ("deployed", "eager")


def measure_peak_memory(side: str, model: str, images_dir: Optional[str], count: int, iterations: int,
                        batch: int = 1, threads: Optional[int] = None, checkpoint: Optional[str] = None,
                        backend: str = "auto") -> dict:
    """Run `side` in a child process; {'peak_rss_mb', 'after_imports_rss_mb', 'model_rss_mb'}.  `backend`:
    what runs the deployed side's .onnx (the parent's own choice, so both measure the same thing)."""
    command = [sys.executable, "-m", "edge_edet.bench.memory", side, model, "--count", str(count),
               "--iterations", str(iterations), "--batch", str(batch)]
    if images_dir:
        command += ["--images", images_dir]
    if threads:
        command += ["--threads", str(threads)]
    if checkpoint:
        command += ["--checkpoint", checkpoint]
    command += ["--backend", backend]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise EdgeEdetError(f"measuring the {side} side's memory failed: {lines[-1] if lines else done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_edet.bench.memory")
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("model")
    parser.add_argument("--images", default=None)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)

    from ..runtime import Detector
    from .latency import batches, load_frames, synthetic_frames
    from ..contract.machine import peak_rss_mb

    frames = load_frames(args.images, args.count) if args.images else synthetic_frames(args.count)
    options = {"threads": args.threads} if args.threads else {}
    if args.side == "eager":
        import torch  # noqa: F401  (counted in the baseline: a PyTorch deployment pays for it)

        from ..contract.metadata import read_onnx_metadata
        from .eager import EagerDetector

        info = read_onnx_metadata(args.model)
        baseline = peak_rss_mb()
        detector = EagerDetector(info, None if args.checkpoint == "random" else args.checkpoint, args.threads)
    else:
        import importlib

        from ..contract.names import AUTO_BACKEND, ONNX_BACKENDS

        backend = args.backend if args.backend in ONNX_BACKENDS else AUTO_BACKEND  # an engine: TensorRT's own
        importlib.import_module("openvino" if backend == "openvino" else "onnxruntime")  # part of the baseline
        baseline = peak_rss_mb()
        detector = Detector.from_file(args.model, backend=backend, **options)
    source = batches(frames, args.batch)
    for _ in range(args.iterations):
        detector.detect(next(source))
    peak = peak_rss_mb()
    print(json.dumps({"peak_rss_mb": peak, "after_imports_rss_mb": baseline,
                      "model_rss_mb": round(peak - baseline, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
