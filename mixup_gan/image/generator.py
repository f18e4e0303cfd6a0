"""An image GAN's generator outside training: build the nets from a config, load the
generator of a checkpoint (EMA weights when present), write samples."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import save_image

from ..checkpoint import CheckpointError, atomic_write, check_layout, check_state, load_checkpoint
from ..config import ConfigError, check_seed, config_from_dict
from ..run_folder import make_folder
from ..runtime import resolve_device
from .config import ImageConfig
from .nets import build_nets


def build_image_nets(config: ImageConfig) -> tuple[nn.Module, nn.Module]:
    """The run's generator and discriminator, as its `model` and `data` sections say."""
    m = config.model
    return build_nets(m.arch, m.latent_dim, config.data.channels, config.data.size, m.g_width,
                      m.d_width, m.d_norm)


def load_generator(checkpoint: str | Path, state: dict | None = None, *,
                   use_ema: bool = True) -> tuple[nn.Module, int]:
    """The generator of an image GAN checkpoint (EMA weights when present and wanted), in
    eval mode on the CPU, and its latent size. Anything else is a `CheckpointError`."""
    G, config = load_generator_and_config(checkpoint, state, use_ema=use_ema)
    return G, config.model.latent_dim


def load_generator_and_config(checkpoint: str | Path, state: dict | None = None, *,
                              use_ema: bool = True) -> tuple[nn.Module, ImageConfig]:
    """`load_generator`, with the run's config instead of its latent size."""
    state = load_checkpoint(checkpoint) if state is None else state
    try:
        config = config_from_dict(state.get("config"), ImageConfig, source=str(checkpoint))
        nets = check_layout(state, str(checkpoint))["nets"]
        key = "ema" if use_ema and "ema" in nets else "generator"
        G = build_image_nets(config)[0]
        check_state(nets.get(key), G.state_dict(), str(checkpoint), f"nets.{key}")
        G.load_state_dict(nets[key])
    except CheckpointError:  # it names the file and what is wrong
        raise
    except (ConfigError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint}: not an image GAN generator checkpoint "
                              f"({str(exc).splitlines()[0]})") from None
    bad = next((name for name, t in G.state_dict().items()
                if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)
    if bad is not None:  # a run that diverged: its images would be black or noise
        raise CheckpointError(f"{checkpoint}: the generator's weight nets.{key}.{bad} holds "
                              "NaN or inf (the run diverged); sample an earlier checkpoint")
    return G.eval(), config


def sample_images(checkpoint: str | Path, n: int, out: str | Path, *, use_ema: bool = True,
                  batch_size: int = 256, seed: int = 0, device: str = "auto") -> Path:
    """Write `n` PNG images from a trained generator (EMA weights when present)."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    seed = check_seed(seed)
    G, config = load_generator_and_config(checkpoint, use_ema=use_ema)
    dev = resolve_device(device, key="--device")
    G = G.to(dev)
    out = make_folder(Path(out), "--out")
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), config.model.latent_dim, generator=rng)
            images = G(z.to(dev)).float().cpu()
            if not bool(torch.isfinite(images).all()):
                raise CheckpointError(f"{checkpoint}: the generator's images hold NaN or inf "
                                      f"({start} of {n} written to {out})")
            for i, image in enumerate(images, start=start):
                atomic_write(out / f"{i:06d}.png", partial(_png, image), fsync=False)
    return out


def _png(image: torch.Tensor, handle) -> None:
    """One (C, H, W) image in [-1, 1] as PNG into an open binary file."""
    save_image(image, handle, format="png", normalize=True, value_range=(-1, 1))
