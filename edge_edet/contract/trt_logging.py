"""The process's one TensorRT logger, which keeps what TensorRT said so a failure is explained.

TensorRT reports why a parse, build or deserialisation failed only through its logger (the call
itself returns False or None).  TensorRT also keeps the first logger it is given for the whole
process (builders, runtimes and the plugin library log to it), so a second logger object would
not receive its own errors, and a temporary one handed to `init_libnvinfer_plugins` would leave
TensorRT holding a dead object.  Hence one module-level logger per imported `tensorrt`; callers
take a `mark()` and read `since(mark)` for the errors of their own call.
"""
from __future__ import annotations

import sys
import threading

_lock = threading.Lock()
_loggers = {}  # id(tensorrt module) -> (module, logger)
KEEP = 500  # lines kept: enough to explain a failure, bounded for a long-running stream


def get_logger(trt, verbose: bool = False, stream=None):
    """The one ILogger for `trt`; prints warnings and errors (everything with `verbose`)."""
    with _lock:
        entry = _loggers.get(id(trt))
        if entry is None or entry[0] is not trt:
            entry = (trt, _make_logger(trt))
            _loggers[id(trt)] = entry
        logger = entry[1]
        logger.verbose = bool(verbose)
        if stream is not None:
            logger.stream = stream
        return logger


def _make_logger(trt):
    severity = trt.ILogger.Severity
    error_level = int(severity.ERROR)
    info_level = int(severity.INFO)
    warning_level = int(severity.WARNING)

    class CapturingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []
            self.messages = []
            self.verbose = False
            self.stream = None
            self.lines_lock = threading.Lock()
            self.dropped = 0

        def log(self, level, msg):
            level = int(level)
            with self.lines_lock:
                if level <= error_level:
                    self.errors.append(str(msg))
                if level <= info_level:
                    self.messages.append(str(msg))
                for kept in (self.errors, self.messages):
                    if len(kept) > KEEP:
                        self.dropped += len(kept) - KEEP
                        del kept[:len(kept) - KEEP]
            if self.verbose or level <= warning_level:
                print(f"[TensorRT] {msg}", file=self.stream or sys.stderr, flush=True)

        def mark(self) -> int:
            """A position in the error list; since(mark) is what was logged after it."""
            return self.dropped + len(self.errors)

        def since(self, mark: int):
            return self.errors[max(0, mark - self.dropped):]

    return CapturingLogger()
