"""Exponential moving average of the weights (the official recipe evaluates and ships the EMA).

The decay ramps up as min(decay, (1 + step) / (10 + step)) so early averages are not dominated by
the random initial head.  Float tensors (BatchNorm statistics too) are averaged, counters copied.
"""
from __future__ import annotations

import copy

import torch


class ModelEma:
    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        source = model.state_dict()
        for key, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(source[key].detach(), alpha=1 - decay)
            else:
                value.copy_(source[key])

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "decay": self.decay, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.decay = state["decay"]
        self.updates = state["updates"]
