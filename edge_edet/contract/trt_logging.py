"""A TensorRT logger that keeps what TensorRT said, so a failure can be explained in one sentence.

TensorRT reports why a parse, build or deserialisation failed only through its logger (the call
itself returns False or None).  This logger prints warnings and errors (everything with
--verbose) and keeps the error lines for the caller to classify.
"""
from __future__ import annotations

import sys


def make_logger(trt, verbose: bool = False, stream=None):
    """An ILogger subclass instance with `.errors` (list of str) and `.messages` (all kept lines)."""
    out = stream or sys.stderr
    severity = trt.ILogger.Severity
    error_level = int(severity.ERROR)
    print_level = int(severity.VERBOSE if verbose else severity.WARNING)

    class CapturingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []
            self.messages = []

        def log(self, level, msg):
            level = int(level)
            if level <= error_level:
                self.errors.append(str(msg))
            if level <= int(severity.INFO):
                self.messages.append(str(msg))
            if level <= print_level:
                print(f"[TensorRT] {msg}", file=out, flush=True)

    return CapturingLogger()
