"""What every run needs from its machine: the device, mixed precision, Adam's fastest kernel,
seed streams, fixed evaluation noise, the module inside a DDP wrapper, and the divergence
error.

Nothing here knows a training loop, so FID, classification and distributed code use it
without importing the GAN loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

from .config import ConfigError


def make_adam(params: Iterable[nn.Parameter], lr: float,
              betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel where this device supports it (about 2x faster on CPU)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=lr, betas=betas)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the step."""


def resolve_device(name: str = "auto", key: str = "train.device") -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else must name a usable device.

    A bad name, or CUDA where there is none, is a `ConfigError` naming `key`.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"{key}: {name!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key} is {name!r} but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{key} is {name!r} but this machine has "
                              f"{torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise ConfigError(f"{key}: {name!r} is not supported (auto, cpu, cuda or cuda:N)")
    return device


def bf16_autocast(device: torch.device, enabled: bool | None, *, cache: bool = True
                  ) -> Callable[[], AbstractContextManager]:
    """A factory of forward-pass contexts: bfloat16 autocast on `device` when enabled
    (None: on CUDA only), else none. The same code runs on CPU and CUDA.

    bfloat16 keeps float32's range, so no gradient scaler is needed; losses are computed in
    float32 from the bfloat16 outputs (`losses.loss_dtype`). `cache=False` for a step that
    is recorded as a CUDA graph: autocast's cache of cast weights must not outlive a capture.
    """
    kind = torch.device(device).type
    if enabled is None:
        enabled = kind == "cuda"
    if enabled:
        return lambda: torch.autocast(kind, dtype=torch.bfloat16, cache_enabled=cache)
    return nullcontext


# A run's random streams: training draws, the (generator's or classifier's) initial weights,
# the discriminator's initial weights, the fixed evaluation noise.
STREAMS = {"train": 0, "init": 1, "discriminator_init": 2, "eval": 3}


def stream_seed(seed: int, stream: str) -> int:
    """Independent seeds for a run's random streams."""
    return (seed * 16 + STREAMS[stream]) % 2 ** 64  # any seed < 2^63 gives a valid one


def eval_noise(n: int, latent_dim: int, seed: int) -> Tensor:
    """The fixed latent points a run is evaluated and drawn on (its own random stream)."""
    rng = torch.Generator().manual_seed(stream_seed(seed, "eval"))
    return torch.randn(n, latent_dim, generator=rng)


def unwrapped(net: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the net itself otherwise)."""
    return getattr(net, "module", net)
