"""Dataset loading shared by image GAN, classification and FID code, with errors naming the
key (or the dataset) that asked for it."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import ConfigError

# Image files every image reader of the package accepts (training folders and FID folders).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def sklearn_digits(who: str = "data.name 'digits'") -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits: images (1797, 1, 8, 8) in [0, 1], labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(f"{who} needs scikit-learn: pip install 'mixup-gan[digits]'") from None
    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return images, torch.tensor(digits.target, dtype=torch.int64)


def torchvision_dataset(cls, root: str, *, download: bool, **kwargs):
    """`cls(root, download=..., **kwargs)`; a missing or corrupt dataset names `data.root`."""
    try:
        return cls(root, download=download, **kwargs)
    except (RuntimeError, OSError) as exc:  # "Dataset not found or corrupted", missing file
        raise ConfigError(f"data.root {root!r}: {exc} (set data.download: true)") from None


def digits_pixels(size: int, who: str = "data.name 'digits'") -> Tensor:
    """The digits bilinearly upsampled to size x size, uint8 (1797, 1, size, size)."""
    x = torch.nn.functional.interpolate(sklearn_digits(who)[0], size=(size, size),
                                        mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
