"""Image data for GANs: CIFAR-10, MNIST, Fashion-MNIST, any image folder, and scikit-learn's
digits offline.

Every dataset is decoded once into a uint8 tensor (N, C, H, W) at the configured size, and
training batches are drawn from it by index with the run's generator: no loader state to
checkpoint (a resumed run draws exactly the batches it would have), and batches come from
memory (or from GPU memory) at no decoding cost. Batches are floats in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..config import ConfigError
from ..datasets import IDX_SETS, IMAGE_SUFFIXES, digits_pixels, idx_pixels, torchvision_dataset


class ImageBank:
    """Decoded images as uint8 (N, C, H, W); `sample(n, rng)` -> floats in [-1, 1]."""

    def __init__(self, images: Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) < 1:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        self.images = images

    def to(self, device) -> ImageBank:
        return ImageBank(self.images.to(device))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        idx = torch.randint(len(self.images), (n,), generator=generator)
        return self.as_floats(self.images[idx.to(self.images.device)])

    def draw(self, rng, counter: int, n: int) -> Tensor:
        """The training loop's real batch: n images per member of `rng` (a `CounterRNG`),
        drawn by index on the bank's device, shape (P, n, C, H, W)."""
        return self.as_floats(self.images[rng.randint(counter, len(self.images), n)])

    @staticmethod
    def as_floats(images: Tensor) -> Tensor:
        return images.float() / 127.5 - 1.0


def _decode(dataset, what: str, progress: bool = True) -> Tensor:
    """Stack a dataset of (uint8 image, ...) items once, with a progress bar (`progress`)."""
    items = (dataset[i][0] for i in range(len(dataset)))
    return torch.stack(list(tqdm(items, total=len(dataset), desc=f"decoding {what}",
                                 leave=False, disable=not progress)))


class _Files(torch.utils.data.Dataset):
    """Image files as (uint8 tensor,) items; unreadable files are a clear error."""

    def __init__(self, files: list[Path], transform) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.files[i]) as image:
                return (self.transform(image.convert("RGB")),)
        except (UnidentifiedImageError, OSError) as exc:
            raise ConfigError(f"data.root: cannot read image {self.files[i]} ({exc})") from None


def _uint8_transform(size: int, channels: int):
    from torchvision.transforms import v2

    steps = [v2.ToImage()]
    if channels == 1:
        steps.append(v2.Grayscale(1))
    steps += [v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.ToDtype(torch.uint8)]
    return v2.Compose(steps)


def image_folder(root: str | Path, size: int, channels: int = 3, *,
                 progress: bool = True) -> ImageBank:
    """Every image under `root` (any depth), resized (shorter side) and centre-cropped."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"data.root: image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
    if not files:
        raise ConfigError(f"data.root: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return ImageBank(_decode(_Files(files, _uint8_transform(size, channels)), str(root),
                             progress))


def torchvision_set(name: str, root: str, size: int, channels: int, download: bool,
                    progress: bool = True):
    """The training split of CIFAR-10 through torchvision, or of MNIST / Fashion-MNIST
    (28x28, zero-padded to `size` when larger: see `datasets.fit_side`)."""
    import torchvision

    if name in IDX_SETS:
        images = idx_pixels(name, root, train=True, size=size, download=download)
        return ImageBank(images.expand(-1, channels, -1, -1).contiguous())
    dataset = torchvision_dataset(torchvision.datasets.CIFAR10, root, download=download,
                                  name=name, train=True,
                                  transform=_uint8_transform(size, channels))
    return ImageBank(_decode(dataset, name, progress))


def digits(size: int, channels: int = 1) -> ImageBank:
    """scikit-learn's bundled 8x8 digits (1797), bilinearly upsampled: a real offline set."""
    return ImageBank(digits_pixels(size).expand(-1, channels, -1, -1).contiguous())


def load_images(name: str, *, root: str, size: int, channels: int, download: bool,
                progress: bool = True) -> ImageBank:
    """The configured dataset as an `ImageBank` (`progress`: show the decoding bar)."""
    if name == "folder":
        return image_folder(root, size, channels, progress=progress)
    if name == "digits":
        return digits(size, channels)
    return torchvision_set(name, root, size, channels, download, progress)
