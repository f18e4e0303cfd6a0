"""The image GAN trainer: the one GAN loop plus an exponential moving average (EMA) of the
generator's weights, which is what image runs sample, draw and measure."""

from __future__ import annotations

import copy

import torch

from ..runtime import unwrapped
from ..train import GANTrainer


class ImageGANTrainer(GANTrainer):
    """`GANTrainer` plus `ema`: after each step, `ema = decay * ema + (1 - decay) * G`."""

    def __init__(self, *args, ema_decay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ema_decay = ema_decay
        live = unwrapped(self.G)  # inside a DistributedDataParallel wrapper
        self.ema = copy.deepcopy(live).eval().requires_grad_(False) if ema_decay else None

    def train_step(self):
        losses = super().train_step()
        if self.ema is not None:
            with torch.no_grad():
                averages, lives = list(self.ema.parameters()), list(self.G.parameters())
                torch._foreach_lerp_(averages, lives, 1.0 - self.ema_decay)
                for avg, live in zip(self.ema.buffers(), self.G.buffers(), strict=True):
                    avg.copy_(live)  # BatchNorm statistics follow the live generator
        return losses

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
