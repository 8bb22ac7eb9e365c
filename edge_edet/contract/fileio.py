"""Never a half-written output file: write a temporary file beside the target, then rename.

Standard library only, so the runtime, the engine builder and the export/training code share it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

from .errors import EdgeEdetError


def check_output_file(path: str, what: str = "output") -> str:
    """Absolute path of a file we may create; one clear sentence if its folder is missing or cannot
    be written.  Creates a probe file rather than trusting permission bits (root ignores them)."""
    if not path:
        raise EdgeEdetError(f"{what} needs a file name")
    full = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        raise EdgeEdetError(f"{what} {path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise EdgeEdetError(f"{what} {path}: folder {folder} does not exist")
    try:
        handle, probe = tempfile.mkstemp(prefix=".edge_edet-probe-", dir=folder)
    except OSError as exc:
        raise EdgeEdetError(f"{what} {path}: cannot write in {folder}, the folder is not writable "
                            f"({exc.strerror or exc})") from None
    os.close(handle)
    os.remove(probe)
    return full


@contextlib.contextmanager
def atomic_output(path: str):
    """Yields a temporary path in the target's folder; on success it replaces `path`, on any
    failure it is removed and `path` is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] + ".tmp"
    handle, tmp = tempfile.mkstemp(prefix=".edge_edet-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
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
