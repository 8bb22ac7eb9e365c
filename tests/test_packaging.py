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
