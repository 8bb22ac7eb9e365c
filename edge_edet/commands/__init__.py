"""CLI sub-commands, one module each.  Every module has `register(subparsers)` (its arguments, for
`edge-edet`) and `main(argv=None, prog=None)` (the same command on its own, for the thin scripts
in demo/, build_engines/ and calibration/).  Both end in contract.cli.guarded: one sentence, exit 2.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ..contract.cli import guarded


def command_parser(module, prog: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser `module.register` builds, as a stand-alone parser named `prog`."""
    holder = argparse.ArgumentParser(add_help=False)
    subparsers = holder.add_subparsers()
    module.register(subparsers)
    (name, parser), = subparsers.choices.items()
    parser.prog = prog or f"edge-edet {name}"
    return parser


def command_main(module, argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    parser = command_parser(module, prog)
    args = parser.parse_args(argv)
    return guarded(lambda: args.func(args), parser.prog)
