"""Image GAN nets: DCGAN (32x32, 64x64) and the SN-GAN CIFAR ResNet (32x32).

Generators map (N, latent_dim) to images (N, C, S, S) in [-1, 1]; discriminators map images
to one raw output per image, (N,).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import ConfigError

SUPPORTED_SIZES = {"dcgan": (32, 64), "sn_resnet": (32,)}


def check_size(arch: str, size: int) -> None:
    if size not in SUPPORTED_SIZES[arch]:
        raise ConfigError(f"data.size: {size} is not supported by model.arch {arch!r} "
                          f"(supported: {', '.join(map(str, SUPPORTED_SIZES[arch]))})")


class DCGANGenerator(nn.Module):
    """Project to 4x4, then (ConvTranspose 4/2 + BN + ReLU) up to the size, 3x3 conv, tanh."""

    def __init__(self, latent_dim: int, channels: int, size: int, width: int = 64) -> None:
        super().__init__()
        check_size("dcgan", size)
        ups = int(math.log2(size)) - 2
        top = width * 2 ** (ups - 1)
        self.project = nn.Sequential(nn.Linear(latent_dim, 4 * 4 * top),
                                     nn.BatchNorm1d(4 * 4 * top), nn.ReLU())
        layers: list[nn.Module] = []
        c = top
        for _ in range(ups):
            out = max(c // 2, width // 2)
            layers += [nn.ConvTranspose2d(c, out, 4, 2, 1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        layers += [nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.top = top

    def forward(self, z: Tensor) -> Tensor:
        return self.body(self.project(z).view(len(z), self.top, 4, 4))


D_NORMS = ("spectral", "batch", "none")


class DCGANDiscriminator(nn.Module):
    """(Conv 4/2 + LeakyReLU 0.2) down to 4x4, then a linear output.

    `norm`: "spectral" (default: spectral norm on every layer), "batch" (the original DCGAN:
    BatchNorm after all but the first conv) or "none". BatchNorm makes D's output on one
    sample depend on the rest of its batch, which undoes mixup's per-sample soft targets:
    with it, D trains on mixed batches but judges pure-fake batches in G steps, and G can
    fool it with noise (seen on the digits set). Use "batch" with the plain loss only.
    """

    def __init__(self, channels: int, size: int, width: int = 64, norm: str = "spectral"):
        super().__init__()
        check_size("dcgan", size)
        if norm not in D_NORMS:
            raise ConfigError(f"model.d_norm: {norm!r} is not one of {list(D_NORMS)}")
        sn = spectral_norm if norm == "spectral" else (lambda layer: layer)
        downs = int(math.log2(size)) - 2
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(downs):
            layers.append(sn(nn.Conv2d(c_in, c, 4, 2, 1)))
            if i > 0 and norm == "batch":
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.out = sn(nn.Linear(c_in * 4 * 4, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x)).squeeze(1)


class _GenBlock(nn.Module):
    """SN-GAN generator block: BN-ReLU-upsample-conv-BN-ReLU-conv, upsampled 1x1 shortcut."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c), nn.BatchNorm2d(c)
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)
        self.shortcut = nn.Conv2d(c, c, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class _DiscBlock(nn.Module):
    """SN-GAN discriminator block with spectral norm; optional 2x average-pool downsampling."""

    def __init__(self, c_in: int, c: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(c_in, c, 3, 1, 1))
        self.conv2 = spectral_norm(nn.Conv2d(c, c, 3, 1, 1))
        self.shortcut = (spectral_norm(nn.Conv2d(c_in, c, 1))
                         if down or c_in != c else None)
        self.down, self.first = down, first

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is not None:
            # the first block pools before its shortcut conv, the others after
            s = self.shortcut(F.avg_pool2d(s, 2) if self.first else s)
            if self.down and not self.first:
                s = F.avg_pool2d(s, 2)
        return h + s


class SNResNetGenerator(nn.Module):
    """SN-GAN CIFAR generator: linear to 4x4x256, three up-blocks, BN-ReLU-conv-tanh."""

    def __init__(self, latent_dim: int, channels: int, size: int, width: int = 256) -> None:
        super().__init__()
        check_size("sn_resnet", size)
        self.width = width
        self.project = nn.Linear(latent_dim, 4 * 4 * width)
        self.blocks = nn.Sequential(*[_GenBlock(width) for _ in range(3)])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(),
                                 nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.blocks(self.project(z).view(len(z), self.width, 4, 4)))


class SNResNetDiscriminator(nn.Module):
    """SN-GAN CIFAR discriminator: 2 down-blocks, 2 blocks, ReLU, global sum, SN linear."""

    def __init__(self, channels: int, size: int, width: int = 128) -> None:
        super().__init__()
        check_size("sn_resnet", size)
        self.blocks = nn.Sequential(
            _DiscBlock(channels, width, down=True, first=True),
            _DiscBlock(width, width, down=True),
            _DiscBlock(width, width, down=False),
            _DiscBlock(width, width, down=False),
        )
        self.out = spectral_norm(nn.Linear(width, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.out(h).squeeze(1)


ARCHS = {"dcgan": (DCGANGenerator, DCGANDiscriminator),
         "sn_resnet": (SNResNetGenerator, SNResNetDiscriminator)}


def build_nets(arch: str, latent_dim: int, channels: int, size: int, g_width: int,
               d_width: int, d_norm: str = "spectral") -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator of an architecture (checks the image size first)."""
    generator, discriminator = ARCHS[arch]
    d_options = {"norm": d_norm} if arch == "dcgan" else {}
    return (generator(latent_dim, channels, size, g_width),
            discriminator(channels, size, d_width, **d_options))
