"""Run checkpoints: `last.pth` (everything --resume needs) and `best.pth`, written atomically.

Both hold `state_dict_ema` (the weights to evaluate and ship) and `model` (the raw weights), so
`create_model(..., checkpoint='runs/x/best.pth')` loads the EMA weights directly.
"""
from __future__ import annotations

import os

import torch

from ..contract.errors import EdgeEdetError
from ..contract.fileio import atomic_output


def save_atomic(obj, path: str) -> None:
    """torch.save to a temp file in the same folder, then os.replace: never a half-written file."""
    with atomic_output(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (full disk) as a RuntimeError:
            # 'file write failed', 'unexpected pos N vs M' (file-size limit), always from inline_container
            if not any(marker in str(exc).lower() for marker in ("write", "unexpected pos", "inline_container")):
                raise
            raise OSError("the file could not be written completely (a full disk or a file-size limit)") from None


def load_run_checkpoint(path: str) -> dict:
    if not os.path.isfile(path):
        raise EdgeEdetError(f"there is nothing to resume: {path} does not exist "
                            "(start the run without --resume)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise EdgeEdetError(f"cannot resume: {path} is not a readable training checkpoint") from None


def export_half_state(checkpoint_path: str, out_path: str) -> int:
    """The EMA weights of a run checkpoint as a plain fp16 state dict (the bundled-weights format).
    Returns the file size in bytes."""
    state = load_run_checkpoint(checkpoint_path)["state_dict_ema"]
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_atomic(half, out_path)
    return os.path.getsize(out_path)
