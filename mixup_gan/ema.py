"""An exponential moving average (EMA) of a network's weights: after each step,
`average = decay * average + (1 - decay) * live`, from generator step `start` on (until then
the average is the live weights themselves). Buffers (BatchNorm statistics) follow the live
network. Stacked population nets average each member on its own (it is elementwise)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .runtime import unwrapped


class EMA:
    """`module` holds the averaged weights (eval mode, no gradients); they average from
    generator step `start` on (0: from the start)."""

    def __init__(self, net: nn.Module, decay: float, start: int = 0) -> None:
        self.decay, self.start = decay, start
        self.module = copy.deepcopy(unwrapped(net)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int | Tensor = 0) -> None:
        """Fold in the live weights after generator step `step + 1` (`step`: the steps done
        before it; a device tensor in a captured step). Until step `start` the average is
        copied from them: a lerp with weight 1 returns its end exactly."""
        live = unwrapped(net)
        averages, values = list(self.module.parameters()), list(live.parameters())
        if not self.start:
            torch._foreach_lerp_(averages, values, 1.0 - self.decay)
        elif isinstance(step, Tensor):  # a device weight (a foreach lerp would read it back)
            weight = torch.where(step < self.start, 1.0, 1.0 - self.decay).to(averages[0].dtype)
            for average, value in zip(averages, values, strict=True):
                average.lerp_(value, weight)
        else:
            torch._foreach_lerp_(averages, values, 1.0 if step < self.start else 1.0 - self.decay)
        for average, buffer in zip(self.module.buffers(), live.buffers(), strict=True):
            average.copy_(buffer)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
