"""Make PyTriton 0.7.0's proxy model return real outputs under numpy 2.

PyTriton runs, inside Triton's Python back-end stub, a proxy `model.py` that turns our outputs into
`pb_utils.Tensor(name, ndarray)`.  The stub bundled with nvidia-pytriton 0.7.0 reads numpy 1's
array-descriptor layout; under numpy 2 it reads an item size of 0 and every output reaches the
client empty (`cannot reshape array of size 0`), and every input arrives as its first byte
repeated (strides of 0), with no error anywhere.  PyTriton pins numpy<2
for this reason, which this project cannot take (the OpenCV 5 wheels it installs need numpy 2).

The fix: inputs and outputs go through DLPack (`numpy.from_dlpack`, `pb_utils.Tensor.from_dlpack`),
which does not read the descriptor.  The proxy file is patched in the copy PyTriton sends to the server, never on disk;
a PyTriton whose proxy differs is refused with a sentence, not silently mis-served.
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..contract.errors import EdgeEdetError

PROXY_FILE = "model.py"
REPLACEMENTS = (("pb_utils.Tensor(name, value)", "_edge_edet_tensor(pb_utils, name, value)"),  # outputs
                ("input_tensor.as_numpy()", "_edge_edet_array(input_tensor)"))  # inputs
HELPER = '''

_EDGE_EDET_USED_CAPSULE = b"used_dltensor"


def _edge_edet_tensor(pb_utils, name, value):
    """Added by edge_edet.serve.pytriton_compat: an output tensor through DLPack (numpy 2 safe)."""
    import ctypes

    import numpy

    value = numpy.ascontiguousarray(value)
    capsule = value.__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    # the stub marks the capsule used under a name numpy does not know; give it numpy's, so
    # numpy's capsule destructor leaves the (now stub-owned) tensor alone without a traceback
    set_name = ctypes.pythonapi.PyCapsule_SetName
    set_name.argtypes = [ctypes.py_object, ctypes.c_char_p]
    set_name(capsule, _EDGE_EDET_USED_CAPSULE)
    return tensor


def _edge_edet_array(tensor):
    """Added by edge_edet.serve.pytriton_compat: an input tensor as numpy through DLPack."""
    import numpy

    return numpy.from_dlpack(tensor)
'''


def needed() -> bool:
    return int(np.__version__.split(".")[0]) >= 2


def patch_proxy_source(text: str) -> str:
    for original, replacement in REPLACEMENTS:
        if text.count(original) != 1:
            raise EdgeEdetError("this nvidia-pytriton's proxy model differs from the one edge_edet knows (0.7.0) and "
                                "cannot be served under numpy 2; install nvidia-pytriton==0.7.0 --no-deps")
        text = text.replace(original, replacement)
    return text + HELPER


def patch_model(model) -> None:
    """Patch the proxy files a bound (not yet loaded) PyTriton model sends to the server."""
    if not needed():
        return
    original = model.get_proxy_model_files

    def proxy_files():
        files = original()
        key = f"file:{model.model_version}/{PROXY_FILE}"
        if key not in files:
            raise EdgeEdetError("this nvidia-pytriton sends no proxy model.py; install nvidia-pytriton==0.7.0 --no-deps")
        files[key] = patch_proxy_source(files[key].decode("utf-8")).encode("utf-8")
        return files

    model.get_proxy_model_files = proxy_files


@contextlib.contextmanager
def server_in_own_process_group():
    """Start tritonserver (PyTriton launches it with `sh`) in a process group of its own.

    Otherwise a signal to the whole group (Ctrl-C in a terminal, `timeout`, systemd's stop) reaches
    Triton and its Python back-end stub directly, as well as us: the stub dies mid-way, its
    resource tracker reports "leaked shared_memory objects", and Triton prints "Signal (2) received"
    once per signal.  In its own group only we get the signal, and PyTriton's stop() shuts the
    server down in order (Triton still dies with us: PyTriton sets PR_SET_PDEATHSIG)."""
    try:
        import sh
    except ImportError:  # PyTriton without sh fails on its own, with its own message
        yield
        return
    defaults = getattr(getattr(sh, "Command", None), "_call_args", None)
    if not isinstance(defaults, dict) or "new_group" not in defaults:
        yield  # an sh without the option: the server shares our group, as before
        return
    before = defaults["new_group"]
    defaults["new_group"] = True
    try:
        yield
    finally:
        defaults["new_group"] = before
