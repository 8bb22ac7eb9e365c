"""Never a half-written output file, never an input overwritten: one implementation for every command.

Outputs are written to a hidden temporary file beside the target (its name carries our process id)
and renamed over the target only when complete, so an existing file is replaced by a complete new
one or left as it was; a rename refused at the end is one sentence and the partial goes.  Output
paths are checked before any work: the folder must be writable, the path must not be a network
address, a folder, a device, an input of the same run, another output of the same run, nor a file
the final rename could not replace (immutable, another user's in a sticky folder).  Partials and
staging folders left by a process that died (kill -9, power loss) are removed the next time an
output is checked in that folder, or first written there by a process.  Standard library only (runtime, engine builder, export and training share it).
"""
from __future__ import annotations

import contextlib
import errno
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
    """Remove our hidden temporary files and staging folders in `folder` whose writing process is gone
    (kill -9, power loss); returns their names."""
    import shutil

    removed = []
    for name in _left_by_dead_processes(folder, _PARTIAL):
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(name)
        except OSError:
            pass
    return removed


def _has_cap_fowner() -> bool:
    """Whether this process may replace other users' files in a sticky folder (root with CAP_FOWNER)."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 3))  # CAP_FOWNER is capability 3
    except (OSError, ValueError, IndexError):
        pass
    return True


def _why_not_replaceable(full: str, folder: str) -> Optional[str]:
    """Why renaming a finished file over the existing `full` would be refused, or None.  Rename needs
    the folder's permission, not the file's: what stops it is an immutable or append-only file, or
    another user's file in a sticky folder such as /tmp."""
    try:
        fd = os.open(full, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NONBLOCK", 0))
    except PermissionError as exc:
        if exc.errno == errno.EPERM:  # immutable (chattr +i): even root cannot write or replace it
            return "it is marked immutable (chattr +i)"
    except OSError:
        pass
    else:
        os.close(fd)
    if not hasattr(os, "geteuid"):
        return None
    try:
        file_stat, folder_stat = os.stat(full), os.stat(folder)
    except OSError:
        return None
    euid = os.geteuid()
    if (folder_stat.st_mode & stat.S_ISVTX and file_stat.st_uid != euid and folder_stat.st_uid != euid
            and not _has_cap_fowner()):
        return f"it belongs to another user in the sticky folder {folder}, where only its owner may replace it"
    return None


def replace_finished(tmp: str, path: str, what: str) -> None:
    """Rename a finished temporary file over `path`; if the rename is refused (permissions, an
    immutable target, a full disk) the temporary file is removed and one sentence says so."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.remove(tmp)
        except OSError:
            pass
        kept = f"{path} was left as it was" if os.path.exists(path) else f"{path} was not written"
        raise EdgeEdetError(f"{what} {path}: the finished file could not be put in place "
                            f"({describe_os_error(exc)}); the partial file was removed and {kept}") from None


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


def _check_stdout_open(what: str) -> None:
    """`-` needs a standard output to write to (`>&-` closes it: Python then has sys.stdout None)."""
    import io
    import sys

    try:
        os.fstat(sys.stdout.fileno())
        return
    except io.UnsupportedOperation:
        return  # an in-process text stream (a test's capture): written as text
    except (AttributeError, ValueError, OSError):
        raise EdgeEdetError(f"{what} -: standard output is closed, so the lines have nowhere to go; "
                            f"give a file name or keep standard output open") from None


def check_output_file(path: str, what: str = "output", inputs: Sequence[Tuple[str, str]] = (),
                      stream_ok: bool = False, extensions: Sequence[str] = ()) -> str:
    """Absolute path of a file we may create; one clear sentence if it cannot or must not be written.

    `inputs` are (flag, path) pairs of the same run that the output must not replace.  `stream_ok`
    lets `-` and a FIFO through as streams (JSON lines).  Symbolic links are followed: the file they
    point to is written and the link stays.  Writability is tested with a probe file rather than
    trusting permission bits (root ignores them).  `extensions`: the endings the file must have (the
    next stage picks its reader by the extension, so a model saved as e.txt would be refused later)."""
    if not path:
        raise EdgeEdetError(f"{what} needs a file name")
    url = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", path)
    if url:
        raise EdgeEdetError(f"{what} {path} is a network address ({url.group(1)}://), not a local file; give a "
                            f"file path (and copy the file on afterwards)")
    if extensions and path != STREAM and os.path.splitext(path)[1].lower() not in extensions:
        stem = os.path.splitext(os.path.basename(path))[0] or "model"
        raise EdgeEdetError(f"{what} {path}: the file name must end in {' or '.join(extensions)} (later commands "
                            f"tell the model's kind by it), e.g. {stem}{extensions[0]}")
    if stream_ok and is_stream_target(path):
        if path == STREAM:
            _check_stdout_open(what)
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
        refused = _why_not_replaceable(full, folder)
        if refused:
            raise EdgeEdetError(f"{what} {path} cannot be replaced: {refused}; give another file name")
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


_SWEPT_BY_WRITERS = set()  # folders an atomic writer of this process has swept already


def _sweep_once(folder: str) -> None:
    """remove_stale_partials at this process's first atomic write into `folder`: what a killed writer
    left there is gone before our first file lands, and a folder written once per frame (`run --output
    DIR/`) is not listed again for every frame (a listing that grows with the folder)."""
    if folder not in _SWEPT_BY_WRITERS:
        remove_stale_partials(folder)
        _SWEPT_BY_WRITERS.add(folder)


@contextlib.contextmanager
def atomic_output(path: str):
    """Yields a temporary path in the target's folder; on success it replaces `path`, on any
    failure (a full disk included: one sentence naming the file) it is removed and `path` is
    left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] + ".tmp"
    _sweep_once(folder)  # what a killed writer (kill -9) left beside this output
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


_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO)  # a disk that takes no more
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
    process (kill -9) left behind are removed first.  A scratch write the disk refuses (full, a
    file-size limit) is one sentence."""
    remove_stale_work_folders()
    try:
        with tempfile.TemporaryDirectory(prefix=f"edge_edet_{kind}_{os.getpid()}_") as tmp:
            yield tmp
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        raise EdgeEdetError(f"scratch files in {tempfile.gettempdir()} could not be written "
                            f"({describe_os_error(exc)}); nothing was written and the scratch folder was removed "
                            f"(free space there, or point TMPDIR at a roomier disk)") from None
