"""`edge-edet` console command: one sub-command per module in edge_edet.commands.

Each command module defines `register(subparsers)` and does its heavy imports inside its run
function, so `edge-edet --help` and the runtime commands never import torch.  User mistakes
(EdgeEdetError) become one sentence on stderr and exit code 2 (contract.cli.guarded).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .contract.cli import guarded

COMMANDS = ("info", "export", "convert", "calibrate", "build", "run", "eval", "bench", "train", "doctor", "serve",
            "triton-repo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-edet", description="EfficientDet from PyTorch to the edge.")
    parser.add_argument("--version", action="version", version=f"edge-edet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"edge_edet.commands.{name.replace('-', '_')}")  # triton-repo: triton_repo
        module.register(sub)  # a broken command is an error, not a gap
    return parser


def main(argv=None) -> int:
    parsed = {}

    def parse():
        parser = build_parser()
        parsed["args"] = parser.parse_args(argv)
        if not getattr(parsed["args"], "func", None):
            parser.print_help()
            return 2
        return 0

    code = guarded(parse)  # building the parser imports the runtime (OpenCV): a missing cv2 is one sentence
    if code or "args" not in parsed:
        return code
    args = parsed["args"]
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
