"""Never a half-written output file: write a temporary file beside the target, then rename.

Standard library only, so the runtime, the engine builder and the export/training code share it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

from .errors import EdgeEdetError


def check_output_folder(path: str) -> str:
    """Fail before any work when `path` cannot be written; returns its absolute path."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise EdgeEdetError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise EdgeEdetError(f"output folder {folder} is not writable")
    if os.path.isdir(path):
        raise EdgeEdetError(f"output path {path} is a folder")
    return path


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


def write_bytes_atomic(path: str, data) -> str:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(memoryview(data))
    return path
