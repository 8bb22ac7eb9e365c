"""Never a half-written output file, never an input overwritten: one implementation for every command.

Outputs are written to a hidden temporary file beside the target (its name carries our process id)
and renamed over the target only when complete, so an existing file is replaced by a complete new
one or left as it was.  Output paths are checked before any work: the folder must be writable, the
path must not be a folder, a device, an input of the same run or another output of the same run.
Partials left by a process that died (kill -9, power loss) are removed the next time an output is
checked in that folder.  Standard library only (runtime, engine builder, export and training share it).
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from typing import Iterable, Optional, Sequence, Tuple

from .errors import EdgeEdetError

STREAM = "-"  # standard output, for outputs that may be streams (JSON lines)
_PARTIAL = re.compile(r"^\.(?:.+\.(\d+)\.partial(?:\.[^.]*)?|edge_edet-(\d+)-.*\.tmp)$")


def describe_os_error(exc: BaseException) -> str:
    """'No space left on device' rather than '[Errno 28] ...: path'."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def same_file(a: str, b: str) -> bool:
    """True when two paths name the same file (through links and relative paths too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _left_by_dead_processes(folder: str, pattern) -> list:
    """Names in `folder` that match `pattern` (its first non-empty group: the writer's pid) and whose
    writing process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    dead = []
    for name in names:
        match = pattern.match(name)
        if match and not _process_alive(int(next(g for g in match.groups() if g))):
            dead.append(name)
    return dead


def remove_stale_partials(folder: str) -> list:
    """Remove our hidden temporary files in `folder` whose writing process is gone; returns their names."""
    removed = []
    for name in _left_by_dead_processes(folder, _PARTIAL):
        try:
            os.remove(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def partial_name(full: str) -> str:
    """Hidden temporary file beside the target, keeping the extension (OpenCV picks the container by it)."""
    folder, name = os.path.split(full)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{os.getpid()}.partial{ext}")


def is_stream_target(path: str) -> bool:
    """`-` (standard output) or an existing FIFO: written line by line, never replaced."""
    if path == STREAM:
        return True
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def check_output_file(path: str, what: str = "output", inputs: Sequence[Tuple[str, str]] = (),
                      stream_ok: bool = False) -> str:
    """Absolute path of a file we may create; one clear sentence if it cannot or must not be written.

    `inputs` are (flag, path) pairs of the same run that the output must not replace.  `stream_ok`
    lets `-` and a FIFO through as streams (JSON lines).  Symbolic links are followed: the file they
    point to is written and the link stays.  Writability is tested with a probe file rather than
    trusting permission bits (root ignores them)."""
    if not path:
        raise EdgeEdetError(f"{what} needs a file name")
    if stream_ok and is_stream_target(path):
        return path
    if path == STREAM:
        raise EdgeEdetError(f"{what} cannot be '-' (standard output); give a file name")
    full = os.path.realpath(os.path.abspath(os.path.expanduser(path)))
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        raise EdgeEdetError(f"{what} {path} is a folder; give a file name")
    if os.path.exists(full):
        mode = os.stat(full).st_mode
        if stat.S_ISFIFO(mode):
            raise EdgeEdetError(f"{what} {path} is a FIFO; give a regular file name")
        if not stat.S_ISREG(mode):
            raise EdgeEdetError(f"{what} {path} is a device or special file, not a regular file; give a file name")
    for flag, source in inputs:
        if source and os.path.exists(source) and same_file(source, full):
            raise EdgeEdetError(f"{what} {path} is the input given as {flag}; writing it would destroy "
                                f"the input, so give another file name")
    if not os.path.isdir(folder):
        raise EdgeEdetError(f"{what} {path}: folder {folder} does not exist")
    try:
        handle, probe = tempfile.mkstemp(prefix=f".edge_edet-{os.getpid()}-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise EdgeEdetError(f"{what} {path}: cannot write in {folder}, the folder is not writable "
                            f"({describe_os_error(exc)})") from None
    os.close(handle)
    os.remove(probe)
    remove_stale_partials(folder)
    return full


def check_distinct_outputs(outputs: Iterable[Tuple[str, Optional[str]]]) -> None:
    """(flag, path) pairs of one run: refuse two that name the same file (one would clobber the other)."""
    seen = []
    for flag, path in outputs:
        if not path or path == STREAM:
            continue
        for other_flag, other in seen:
            if same_file(path, other):
                raise EdgeEdetError(f"{flag} {path} and {other_flag} {other} are the same file; "
                                    f"give each output its own name")
        seen.append((flag, path))


@contextlib.contextmanager
def atomic_output(path: str):
    """Yields a temporary path in the target's folder; on success it replaces `path`, on any
    failure (a full disk included: one sentence naming the file) it is removed and `path` is
    left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] + ".tmp"
    try:
        handle, tmp = tempfile.mkstemp(prefix=f".edge_edet-{os.getpid()}-", suffix=suffix, dir=folder)
    except OSError as exc:
        raise EdgeEdetError(f"cannot write {path}: {describe_os_error(exc)}") from None
    os.close(handle)
    try:
        try:
            yield tmp
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
            os.replace(tmp, path)
        except OSError as exc:
            kept = " (the existing file was left as it was)" if os.path.exists(path) else ""
            raise EdgeEdetError(f"writing {path} failed: {describe_os_error(exc)}; "
                                f"nothing was written{kept}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path: str, text: str) -> str:
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    return path


def write_json_atomic(path: str, data) -> str:
    """JSON (indented, keys sorted, final newline) written atomically."""
    import json

    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_bytes_atomic(path: str, data) -> str:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(memoryview(data))
    return path


_WORK_FOLDER = re.compile(r"^edge_edet_[a-z]+_(\d+)_")


def remove_stale_work_folders(parent: Optional[str] = None) -> list:
    """Remove `edge_edet_<kind>_<pid>_*` folders in the temp directory whose process is gone."""
    import shutil

    parent = parent or tempfile.gettempdir()
    removed = []
    for name in _left_by_dead_processes(parent, _WORK_FOLDER):
        path = os.path.join(parent, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


@contextlib.contextmanager
def work_folder(kind: str):
    """A temporary folder `edge_edet_<kind>_<pid>_*` (calibration, quantisation scratch), removed on
    exit, SIGTERM included (contract.cli.guarded turns it into an exception); folders that a killed
    process (kill -9) left behind are removed first."""
    remove_stale_work_folders()
    with tempfile.TemporaryDirectory(prefix=f"edge_edet_{kind}_{os.getpid()}_") as tmp:
        yield tmp
