"""Dataset loading shared by image GAN and classification runs, with errors naming the key."""

from __future__ import annotations

import torch
from torch import Tensor

from .config import ConfigError


def sklearn_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits: images (1797, 1, 8, 8) in [0, 1], labels (1797,)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ConfigError(
            "data.name 'digits' needs scikit-learn: pip install 'mixup-gan[digits]'"
        ) from None
    digits = load_digits()
    images = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    return images, torch.tensor(digits.target, dtype=torch.int64)


def torchvision_dataset(cls, root: str, *, download: bool, **kwargs):
    """`cls(root, download=..., **kwargs)`; a missing or corrupt dataset names `data.root`."""
    try:
        return cls(root, download=download, **kwargs)
    except (RuntimeError, OSError) as exc:  # "Dataset not found or corrupted", missing file
        raise ConfigError(f"data.root {root!r}: {exc} (set data.download: true)") from None
