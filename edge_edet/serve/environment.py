"""The server process's surroundings: free ports, and the Python library the Triton stub links.

PyTriton's Triton Python back-end stub is built against `libpython3.X.so` and takes the first
one the dynamic linker finds.  When that is the system's (say 3.11.2) while this interpreter is
another build (say pyenv's 3.11.7), every model fails to load with `'_thread.RLock' object has
no attribute '_recursion_count'`.  Putting this interpreter's own library folder first in the
server's LD_LIBRARY_PATH makes the stub run the same Python as we do.
"""
from __future__ import annotations

import errno
import os
import socket
import sysconfig
from typing import Dict, Iterable, Tuple

from ..contract.errors import EdgeEdetError


def python_library_dir() -> str:
    """Folder holding this interpreter's libpython (empty when Python was built without one)."""
    folder = sysconfig.get_config_var("LIBDIR") or ""
    library = sysconfig.get_config_var("LDLIBRARY") or ""
    if folder and library and os.path.exists(os.path.join(folder, library)):
        return folder
    return ""


def use_own_libpython(environ: Dict[str, str] = os.environ) -> str:
    """Put this interpreter's library folder first in LD_LIBRARY_PATH (child processes inherit it)."""
    folder = python_library_dir()
    if folder:
        parts = [p for p in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p and p != folder]
        environ["LD_LIBRARY_PATH"] = os.pathsep.join([folder] + parts)
    return environ.get("LD_LIBRARY_PATH", "")


def check_ports_free(host: str, ports: Iterable[Tuple[str, int]]) -> None:
    """One sentence for the first port that is taken, before the server starts and fails obscurely."""
    seen = {}
    for what, port in ports:
        if port in seen:
            raise EdgeEdetError(f"{what} and {seen[port]} are both {port}; give each its own port")
        seen[port] = what
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise EdgeEdetError(f"{what} {port} on {host} is already in use; stop what holds it "
                                        f"or pick another port") from None
                raise EdgeEdetError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
