"""What every entry point shares: argparse value types, the --providers parser, warnings, and the
one error handler (a user mistake is one sentence on stderr and exit code 2, never a traceback).

`edge-edet`, demo/webcam.py, build_engines/build_engine.py, calibration/calibrate.py and the
benchmark's child process all end in `guarded(...)`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import signal
import sys
import threading
from typing import Callable, List, Optional

from .errors import EdgeEdetError
from .names import AUTO_BACKEND, ONNX_BACKENDS, OPENVINO_DEVICES, OPENVINO_EXECUTION_MODES

EXIT_USAGE = 2  # user mistake (argparse uses 2 as well)
OPENCV_HINT = ("OpenCV is not installed: on a Jetson use JetPack's `sudo apt install python3-opencv` (it has "
               "GStreamer for CSI cameras); elsewhere `pip install opencv-python-headless`")
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM killed


class Terminated(BaseException):
    """SIGTERM as an exception, so `finally` blocks (temporary files and folders) run before exit."""


def _whole_number(text: str, minimum: int, wording: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {wording}, got {value}")
    return value


def int_in_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from `low` to `high`."""
    def parse(text: str) -> int:
        value = _whole_number(text, low, f"{low} to {high}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}, got {value}")
        return value

    return parse


def positive_int(text: str) -> int:
    return _whole_number(text, 1, "at least 1")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, "0 or more")


def _cpu_bounded(text: str, minimum: int, wording: str) -> int:
    from .machine import usable_cpus

    value = _whole_number(text, minimum, wording)
    cpus = usable_cpus()
    if value > cpus:
        raise argparse.ArgumentTypeError(f"{value} is more than the {cpus} CPU core{'s' if cpus != 1 else ''} "
                                         f"this process may use; give {minimum} to {cpus}")
    return value


def thread_count(text: str) -> int:
    """CPU threads: 1 up to the cores this process may use (more only oversubscribes, and a typo such as
    100000 would start that many threads before anything else happened)."""
    return _cpu_bounded(text, 1, "at least 1")


def worker_count(text: str) -> int:
    """Helper processes (data loading): 0 (in-process) up to the cores this process may use."""
    return _cpu_bounded(text, 0, "0 or more")


def finite_number(text: str, minimum: Optional[float] = None, wording: str = "") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or (minimum is not None and value <= minimum):
        raise argparse.ArgumentTypeError(f"must be {wording or 'a finite number'}, got {text}")
    return value


def positive_number(text: str) -> float:
    """A finite number above 0 (durations, budgets)."""
    return finite_number(text, 0.0, "a finite number above 0")


def probability(text: str) -> float:
    """A finite number in [0, 1] (thresholds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def counted(count: int, noun: str, plural: Optional[str] = None) -> str:
    """'1 class', '3 classes': a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else (plural or noun + ('es' if noun.endswith('s') else 's'))}"


def parse_providers(text: Optional[str]) -> Optional[List[str]]:
    """'cuda,cpu' -> ['cuda', 'cpu']; None or empty -> None (the back-end's own choice)."""
    if not text:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    return names or None


def add_providers_argument(parser) -> None:
    parser.add_argument("--providers", default=None, type=parse_providers,
                        help="ONNX Runtime execution providers, comma-separated, in order: cpu, cuda, tensorrt "
                             "(default: CUDA when onnxruntime-gpu has it, else CPU)")


def _backend_name(text: str) -> str:
    name = text.strip().lower()
    if name != AUTO_BACKEND and name not in ONNX_BACKENDS:
        raise argparse.ArgumentTypeError(f"'{text}' is not a back-end; choose "
                                         f"{', '.join((AUTO_BACKEND,) + ONNX_BACKENDS)}")
    return name


def backend_list(text: str) -> List[str]:
    """'onnxruntime,openvino' -> ['onnxruntime', 'openvino'] (bench times each); no name twice."""
    names = [_backend_name(part) for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more back-ends, comma-separated")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"'{text}' names a back-end twice")
    return names


def openvino_device(text: str) -> str:
    name = text.strip().upper()
    if name.split(".")[0] not in OPENVINO_DEVICES:
        raise argparse.ArgumentTypeError(f"'{text}' is not an OpenVINO device; choose {', '.join(OPENVINO_DEVICES)} "
                                         f"(GPU.1 names a second GPU)")
    return name


def add_backend_arguments(parser, several: bool = False) -> None:
    """--backend (which runtime runs a .onnx), --device and --execution-mode (OpenVINO's); engines and
    triton:// models run as they are.  `several`: bench's comma-separated list, timed side by side."""
    choices = "onnxruntime, openvino or auto"
    parser.add_argument(
        "--backend", default=[AUTO_BACKEND] if several else AUTO_BACKEND,
        type=backend_list if several else _backend_name, metavar="NAME[,NAME]" if several else "NAME",
        help=(f"what runs a .onnx model: {choices}" + (", or several comma-separated, timed in alternating rounds"
                                                        if several else "") +
              " (default auto: OpenVINO on a CPU where it is installed and faster for the graph's precision, "
              "measured for FP16 and INT8; else ONNX Runtime; the run says which ran).  TensorRT engines and triton:// models run as they are"))
    parser.add_argument("--device", type=openvino_device, default=None,
                        help="OpenVINO device: CPU (default), GPU (Intel integrated or discrete), NPU or AUTO; "
                             "only CPU is tested in this project's CI")
    parser.add_argument("--execution-mode", choices=OPENVINO_EXECUTION_MODES, default=None,
                        help="OpenVINO: accuracy (default: the graph's own precision, ONNX Runtime's boxes) or "
                             "performance (bf16 on CPUs that have it, f16 on GPUs: faster, boxes move slightly)")


def backend_options(args) -> dict:
    """The back-end options the command line gave (threads, device, execution mode), for open_backend."""
    options = {}
    for key in ("threads", "device", "execution_mode"):
        value = getattr(args, key, None)
        if value:
            options[key] = value
    return options


NATIVE_LOG_ENV = "EDGE_EDET_NATIVE_LOG"  # set to 1 to see FFmpeg / OpenCV / ONNX Runtime log lines again


@contextlib.contextmanager
def native_stderr_quiet():
    """Hide what native libraries (FFmpeg, OpenCV, ONNX Runtime) print on file descriptor 2, so their
    log lines neither bury nor precede our one-sentence refusals; Python's own stderr (our warnings,
    errors and summary) keeps going to the terminal through a copy of the descriptor.  A no-op when
    stderr is not descriptor 2 (captured) or NATIVE_LOG_ENV is set."""
    try:
        real = sys.stderr.fileno() == 2 and not os.environ.get(NATIVE_LOG_ENV)
    except (AttributeError, ValueError, io.UnsupportedOperation):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(2)
    previous = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved_fd), "wb", buffering=0), encoding=previous.encoding,
                                  errors="backslashreplace", line_buffering=True, write_through=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        sys.stderr.close()
        sys.stderr = previous


def warn(message: str) -> None:
    """One warning line on stderr, without breaking a running tqdm bar."""
    try:
        from tqdm import tqdm

        tqdm.write(f"edge-edet: warning: {message}", file=sys.stderr)
    except ImportError:
        print(f"edge-edet: warning: {message}", file=sys.stderr, flush=True)


def one_sentence(message: str) -> str:
    """An error raised in a worker process (a DataLoader's) arrives with the worker's traceback in its
    text; keep only the final `Type: message` line's message."""
    if "Original Traceback" not in message:
        return message
    last = [line for line in message.strip().splitlines() if line.strip()][-1].strip()
    head, sep, tail = last.partition(": ")
    return tail if sep and "." in head and " " not in head else last


def fail(message: str, prog: str = "edge-edet", code: int = EXIT_USAGE) -> int:
    print(f"{prog}: error: {one_sentence(message)}", file=sys.stderr, flush=True)
    return code


def _raise_terminated(signum, _frame):
    raise Terminated()


def guarded(function: Callable[[], Optional[int]], prog: str = "edge-edet") -> int:
    """Run `function`; EdgeEdetError -> one sentence and exit 2, Ctrl-C -> exit 130, SIGTERM -> its
    temporary files removed (the exception unwinds every `finally`) and exit 143."""
    previous = None
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(function() or 0)
    except EdgeEdetError as exc:
        return fail(str(exc), prog)
    except ModuleNotFoundError as exc:
        if exc.name != "cv2":
            raise
        return fail(OPENCV_HINT, prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"{prog}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
