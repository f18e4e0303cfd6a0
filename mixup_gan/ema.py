"""An exponential moving average (EMA) of a network's weights: after each step,
`average = decay * average + (1 - decay) * live`. Buffers (BatchNorm statistics) follow the
live network. Stacked population nets average each member on its own (it is elementwise)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .runtime import unwrapped


class EMA:
    """`module` holds the averaged weights (eval mode, no gradients)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(unwrapped(net)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        live = unwrapped(net)
        torch._foreach_lerp_(list(self.module.parameters()), list(live.parameters()),
                             1.0 - self.decay)
        for average, buffer in zip(self.module.buffers(), live.buffers(), strict=True):
            average.copy_(buffer)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
