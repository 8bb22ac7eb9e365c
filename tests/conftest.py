"""Shared test helpers: the ../shared data and fixtures, read in place (never copied)."""
import importlib
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("EDGE_EDET_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
DATA = os.path.join(SHARED, "data")
FIXTURES = os.path.join(SHARED, "fixtures")


IN_CI = os.environ.get("CI") == "true"


def require_module(module: str, reason: str):
    """The module, or a skip with `reason` where it is missing; under CI=true, where .ci/run installs every
    package the suite can use, a missing one fails the test instead of letting it pass on a skip."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"{module} is missing under CI=true ({reason}): {exc}")
        pytest.skip(reason, allow_module_level=True)  # also from a test module's top level


def shared_path(*parts: str) -> str:
    """Path under ../shared; skips the test (with the reason) when it is absent."""
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        pytest.skip(f"shared data {path} is absent (tests read ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared():
    return shared_path


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~10 s on a 2-core CPU (fast subset: -m 'not slow')")


@pytest.fixture(scope="session")
def deploy_lite0(tmp_path_factory):
    """One real deploy graph for the whole suite: lite0 at 256, the 90 COCO labels, random weights
    (seeded), score threshold 0.001 so boxes come out.  Exported once per test session."""
    import torch

    import edge_edet
    from edge_edet.export import export_onnx

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("deploy") / "lite0.onnx")
    model = edge_edet.create_model("lite0", input_size=256)
    export_onnx(model, path, score_threshold=0.001, weights="random",
                log=lambda *a: None)
    return path


@pytest.fixture(scope="session")
def person_batch4_onnx(tmp_path_factory):
    """The bundled person detector (real weights), exported with a dynamic batch of 1..4: what
    one source runs at batch 1 and several sources batch (~15 s to export on the 2-core machine)."""
    import subprocess
    import sys

    path = str(tmp_path_factory.mktemp("person") / "person.onnx")
    subprocess.run([sys.executable, "-m", "edge_edet", "export", "--model", "lite0", "--weights", "person",
                    "--dynamic-batch", "4", "--output", path], check=True, cwd=REPO, capture_output=True)
    return path


def dying_mjpeg_camera(frames: int):
    """A loopback MJPEG 'camera' that streams until a client has received `frames` frames (however long the
    model took to load), then disappears.  Returns (its stream URL, an Event set once it is gone)."""
    import threading
    import time

    import numpy as np

    from edge_edet.runtime.mjpeg import MjpegServer

    server = MjpegServer("127.0.0.1", 0)
    gone = threading.Event()

    def camera():
        value, deadline = 0, time.time() + 120
        while server.frames_sent < frames and time.time() < deadline:
            server.publish(np.full((90, 120, 3), value % 250, np.uint8))
            value += 1
            time.sleep(0.02)
        server.close()
        gone.set()

    threading.Thread(target=camera, daemon=True).start()
    return server.url + "stream.mjpg", gone
