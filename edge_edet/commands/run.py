"""`edge-edet run`: the streaming runtime (same arguments and code as demo/webcam.py)."""
from __future__ import annotations


def register(subparsers) -> None:
    from ..runtime.run_app import DESCRIPTION, add_arguments  # argparse + stdlib only: keeps --help light

    parser = subparsers.add_parser("run", help="run a model on a camera, stream, video or image folder",
                                   description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import os

    from ..runtime.run_app import run as run_stream

    return run_stream(args, search_dirs=[os.getcwd()])
