"""`edge-edet` console command: one sub-command per module in edge_edet.commands.

Each command module defines `register(subparsers)` and does its heavy imports inside its run
function, so `edge-edet --help` and the runtime commands never import torch.  User mistakes
(EdgeEdetError) become one sentence on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import EdgeEdetError

COMMANDS = ("info", "export", "convert", "calibrate", "build", "run", "eval", "bench", "train", "doctor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-edet", description="EfficientDet from PyTorch to the edge.")
    parser.add_argument("--version", action="version", version=f"edge-edet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"edge_edet.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edge_edet.commands.{name}":
                continue  # command not written yet
            raise
        module.register(sub)
    return parser


def fail(message: str, code: int = 2) -> int:
    print(f"edge-edet: error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except EdgeEdetError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("edge-edet: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
