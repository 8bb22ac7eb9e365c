"""The Jetson install never pulls a pip OpenCV: it would shadow JetPack's GStreamer-enabled OpenCV."""
import os
import subprocess
import sys

from conftest import REPO

READ_REQUIREMENTS = r"""
import json, sys, setuptools
captured = {}
setuptools.setup = lambda **kw: captured.update(kw)
sys.argv = ["setup.py"]
exec(open("setup.py").read())
print(json.dumps({"base": captured["install_requires"], "extras": captured["extras_require"]}))
"""


def _requirements():
    import json

    done = subprocess.run([sys.executable, "-c", READ_REQUIREMENTS], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_jetson_install_pulls_no_pip_opencv():
    req = _requirements()
    board = req["base"] + req["extras"]["trt"] + req["extras"]["cuda-graph"]
    assert not [r for r in board if r.lower().startswith(("opencv", "torch"))], board
    # the workstation installs still get one (the README's commands use these extras)
    for extra in ("export", "runtime", "test"):
        assert any(r.startswith("opencv-python-headless") for r in req["extras"][extra]), extra
    assert os.path.isfile(os.path.join(REPO, "setup.py"))


# -- the Jetson installs: one extra per JetPack, facts from contract/jetpack.py ------------------------
def _name(requirement):
    import re

    return re.split(r"[<>=!~;\[ ]", requirement, 1)[0].lower()


def test_each_jetpack_extra_keeps_jetpacks_own_packages():
    from edge_edet.contract.jetpack import JETPACKS, NOT_ON_A_JETSON

    extras = _requirements()["extras"]
    assert [row.extra for row in JETPACKS] == ["jetpack5", "jetpack6", "jetpack7"]
    for row in JETPACKS:
        pulled = extras[row.extra]
        assert not [r for r in pulled if _name(r) in NOT_ON_A_JETSON or _name(r).startswith("opencv")], pulled
        assert row.numpy in pulled and "numpy<2" == row.numpy  # the apt OpenCV is built against NumPy 1
        assert [r for r in pulled if _name(r) == "cuda-python"] == [row.cuda_python]
        assert any(_name(r) == "pycuda" for r in pulled)
    pins = {row.major: row.cuda_python for row in JETPACKS}
    assert pins == {5: "cuda-python>=11.8,<11.9", 6: "cuda-python>=12.6,<12.7", 7: "cuda-python>=13,<14"}
    assert {row.major: row.python for row in JETPACKS} == {5: "3.8", 6: "3.10", 7: "3.12"}
    assert any(_name(r) == "tensorrt" for r in extras["trt"])  # the desktop extra keeps pip's TensorRT


def test_cuda_python_pins_admit_the_versions_each_jetpack_needs():
    """11.8.x on JetPack 5 (CUDA 11.4, Python 3.8), 12.6.x on 6, 13.x on 7; nothing of the next major."""
    from packaging.requirements import Requirement

    from edge_edet.contract.jetpack import JETPACKS

    admitted = {5: ("11.8.2", "11.8.7"), 6: ("12.6.0", "12.6.2.post1"), 7: ("13.0.0", "13.4.4")}
    refused = {5: ("12.6.0", "11.7.1"), 6: ("12.9.0", "13.0.0", "12.2.1"), 7: ("12.9.10", "14.0.0")}
    for row in JETPACKS:
        spec = Requirement(row.cuda_python).specifier
        assert all(spec.contains(v) for v in admitted[row.major]), row
        assert not any(spec.contains(v) for v in refused[row.major]), row


def test_docs_give_one_install_command_per_jetpack():
    from edge_edet.contract.jetpack import JETPACKS, install_command

    for page in ("docs/jetson.md", "README.md"):
        text = open(os.path.join(REPO, page), encoding="utf-8").read()
        for row in JETPACKS:
            assert install_command(row) in text, (page, row.extra)
            assert row.cuda_python in text, (page, row.cuda_python)


# -- Python 3.8 (JetPack 5): the package parses and uses nothing newer ------------------------------------
JETSON_SIDE = ("edge_edet", "build_engines", "demo", "calibration")


def _python_files():
    for top in JETSON_SIDE:
        for folder, _, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def test_package_parses_as_python_38():
    import ast

    failures = []
    for path in _python_files():
        try:
            ast.parse(open(path, encoding="utf-8").read(), path, feature_version=(3, 8))
        except SyntaxError as exc:
            failures.append(f"{os.path.relpath(path, REPO)}:{exc.lineno}: {exc.msg}")
    assert not failures, failures


def test_vermin_finds_nothing_newer_than_python_38():
    """vermin (from [test]) reads every module for syntax, stdlib modules, functions and arguments by version."""
    import importlib.util

    if importlib.util.find_spec("vermin") is None and os.environ.get("CI") != "true":
        import pytest

        pytest.skip("vermin is not installed (pip install vermin; it is in the [test] extra)")
    done = subprocess.run([sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())", "--target=3.8-", "--violations", "--no-tips",
                           "--backport", "dataclasses", "--backport", "typing", *JETSON_SIDE],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_compileall_under_a_real_python_38_when_there_is_one():
    """Where a Python 3.8 interpreter exists (pyenv here), byte-compile everything with it."""
    import glob
    import shutil

    import pytest

    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8"))) + [shutil.which("python3.8")]

    def works(python):  # a pyenv shim without 3.8 selected exits 127
        return bool(python) and subprocess.run([python, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                                               capture_output=True, timeout=60).returncode == 0

    python38 = next((c for c in candidates if works(c)), None)
    if python38 is None:
        pytest.skip("no Python 3.8 interpreter here; the ast and vermin checks above still ran")
    done = subprocess.run([python38, "-m", "compileall", "-q", "-d", "x", *JETSON_SIDE], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX="/tmp/edge_edet_py38"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
