"""The floors of docs/architecture.md hold: import-linter's contracts (setup.cfg) are all kept."""
import os
import shutil
import subprocess

from conftest import REPO


def test_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra: pip install -e '.[test]'"
    result = subprocess.run([lint, "--config", os.path.join(REPO, "setup.cfg")], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
    for name in ("Floors", "never import torch", "imports the commands", "No import circles"):
        assert name in result.stdout


def test_every_command_has_a_standalone_main():
    import importlib
    import inspect

    from edge_edet.cli import COMMANDS

    for name in COMMANDS:
        module = importlib.import_module(f"edge_edet.commands.{name.replace('-', '_')}")  # triton-repo
        params = list(inspect.signature(module.main).parameters)
        assert params[:2] == ["argv", "prog"], name
