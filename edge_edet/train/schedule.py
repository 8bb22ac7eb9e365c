"""Learning rate: linear warm-up over the first steps, then cosine decay to a small floor.

Progress through the cosine is the larger of the step fraction and, when the run has a wall-clock
budget, the time fraction, so a run on a busy machine still anneals fully before its deadline.
"""
from __future__ import annotations

import math


def lr_factor(step: int, warmup_steps: int, progress: float, warmup_factor: float = 0.1,
              floor: float = 0.01) -> float:
    """Multiplier of the base learning rate at `step` (0-based) and `progress` in [0, 1]."""
    ramp = 1.0
    if warmup_steps > 0 and step < warmup_steps:
        ramp = warmup_factor + (1.0 - warmup_factor) * step / warmup_steps
    progress = min(1.0, max(0.0, progress))
    return ramp * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
