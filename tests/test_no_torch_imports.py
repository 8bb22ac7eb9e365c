"""The runtime, the demo and build_engines never import torch (DESIGN.md: Jetsons run without it).

Each check runs in a fresh interpreter with an import hook that refuses torch and records every
attempt, so an import hidden behind try/except is caught as well as a plain one.
"""
import glob
import json
import os
import subprocess
import sys

from conftest import REPO

CHECK = r"""
import importlib, importlib.util, json, os, pkgutil, sys
attempts = []
class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            attempts.append(name)
            raise ImportError("torch is refused in this check")
sys.meta_path.insert(0, RefuseTorch())
import edge_edet.contract, edge_edet.runtime
modules = ["edge_edet.runtime", "edge_edet.contract"]
for package in (edge_edet.runtime, edge_edet.contract):
    modules += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
modules.append("edge_edet.commands.run")
failed = {}
for name in modules:
    try:
        importlib.import_module(name)
    except ImportError as exc:  # e.g. tensorrt absent here is fine; torch is not
        if "torch" in str(exc):
            failed[name] = str(exc)
for path in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location("script_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # not __main__: the script body's main() does not run
    except ImportError as exc:
        if "torch" in str(exc):
            failed[path] = str(exc)
print(json.dumps({"modules": modules, "attempts": attempts, "failed": failed,
                  "loaded": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))}))
"""


def test_runtime_demo_and_build_engines_never_import_torch():
    scripts = sorted(glob.glob(os.path.join(REPO, "demo", "*.py")) + glob.glob(os.path.join(REPO, "build_engines", "*.py")))
    assert os.path.join(REPO, "demo", "webcam.py") in scripts
    result = subprocess.run([sys.executable, "-c", CHECK, json.dumps(scripts)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for expected in ("edge_edet.runtime.sources", "edge_edet.runtime.pipeline", "edge_edet.contract.frames",
                     "edge_edet.runtime.mjpeg", "edge_edet.runtime.backends.onnxruntime_backend"):
        assert expected in report["modules"]
    assert report["attempts"] == [], f"torch import attempted: {report['failed']}"
    assert report["failed"] == {} and report["loaded"] == []
