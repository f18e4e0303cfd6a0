"""What `mixup-gan fid` can compare, each turned into something torch-fidelity reads.

An argument is a generator checkpoint, a folder of images, a dataset registered with
torch-fidelity (cifar10-train, ...) or a statistics file written by `--save-stats`. Image
inputs carry a *content fingerprint* (file names, sizes and mtimes for a folder; a hash of
the pixels for a dataset or tensor), which keys our feature cache: torch-fidelity's own cache
is keyed by name only and would silently reuse statistics of a dataset that has changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity import GenerativeModelModuleWrapper
from torch_fidelity.datasets import TransformPILtoRGBTensor
from torch_fidelity.registry import DATASETS_REGISTRY, register_dataset
from torchvision import transforms

from ..checkpoint import CheckpointError, load_checkpoint
from ..config import ConfigError
from ..datasets import IDX_SETS, IMAGE_SUFFIXES, digits_pixels, idx_pixels
from ..run_folder import is_run_folder
from .files import check_stats_file, read_rgb8
from .inception import FIDError

# load_generator(path, state) -> (G in eval mode on the CPU, latent size): how a checkpoint
# becomes a generator is the image runs' business (`image.generator.load_generator`); FID
# takes it as an argument.
GeneratorLoader = Callable[[Path, dict], tuple[nn.Module, int]]
STATS_KEY = "fid_statistics"


@dataclass
class ImagesInput:
    """A fixed set of images: a torch Dataset of uint8 (3, H, W) tensors, and its fingerprint."""
    dataset: Dataset
    description: str
    fingerprint: str
    diagnose: Callable[[], None] | None = None  # on a failed read: raise the clear error

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass
class GeneratorInput:
    """A generator drawing `n` fresh images (never cached: they depend on the seed)."""
    model: GenerativeModelModuleWrapper
    description: str
    n: int


@dataclass
class StatsInput:
    """Saved FID statistics (mu, sigma) with the extractor they were computed with."""
    stats: dict
    description: str
    meta: dict = field(default_factory=dict)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class ToUInt8RGB(nn.Module):
    """Generator output in [-1, 1] -> uint8 RGB, rounded as torchvision's `save_image` does."""

    def forward(self, x: Tensor) -> Tensor:
        x = ((x.float().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) as torch-fidelity items: uint8 (3, H, W), gray repeated."""

    def __init__(self, images: Tensor) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise FIDError(f"expected uint8 images (N, 1 or 3, H, W), got {images.dtype} "
                           f"{tuple(images.shape)}")
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        image = self.images[i]
        return image.expand(3, -1, -1) if image.shape[0] == 1 else image


def _digits_32(root, download) -> TensorImages:
    try:
        return TensorImages(digits_pixels(32, who="the digits-32 dataset"))
    except ConfigError as exc:
        raise FIDError(str(exc)) from None


if "digits-32" not in DATASETS_REGISTRY:  # offline reference for the digits image configs
    register_dataset("digits-32", _digits_32)


def _idx_reference(name: str, train: bool) -> Callable:
    """MNIST / Fashion-MNIST split as 32x32 uint8, zero-padded as the image runs train on."""

    def load(root, download) -> TensorImages:
        keys = ("--datasets-root", "drop --no-download")
        try:
            return TensorImages(idx_pixels(name, root, train=train, size=32,
                                           download=download, keys=keys))
        except ConfigError as exc:
            raise FIDError(str(exc)) from None

    return load


for _name in IDX_SETS:  # mnist-train, mnist-test, fashion-mnist-train, fashion-mnist-test
    for _split in ("train", "test"):
        if f"{_name}-{_split}" not in DATASETS_REGISTRY:
            register_dataset(f"{_name}-{_split}", _idx_reference(_name, _split == "train"))


def tensor_input(images: Tensor, description: str) -> ImagesInput:
    """An in-memory image set (for example a run's training images), fingerprinted by content."""
    data = TensorImages(images)
    digest = hashlib.sha256(data.images.contiguous().numpy().tobytes()).hexdigest()
    return ImagesInput(data, description, _digest("tensor", tuple(data.images.shape), digest))


class _SameSize:
    """Folder transform: refuse an image whose size differs from the first one's. It only
    trips the check; `check_folder` then finds the files to name (see `folder_input`)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        if image.size != self.size:
            raise ValueError(f"image of size {image.size}, expected {self.size}")
        return image


def _image_size(path: Path) -> tuple[int, int]:
    return read_rgb8(path).size  # decodes the whole file: a truncated one is named here


class FolderImages(Dataset):
    """Image files as uint8 (3, H, W) tensors, each read by `read_rgb8` (16-bit scaled)."""

    def __init__(self, files: list[Path], transform: Callable) -> None:
        self.files, self.transform = files, transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        return self.transform(read_rgb8(self.files[i]))


def check_folder(root: Path, files: list[Path], resize: int) -> None:
    """Open every file: a clear FIDError for an unreadable one or, without `resize`, for two
    files of different sizes."""
    first = _image_size(files[0])
    for path in files[1:]:
        size = _image_size(path)
        if size != first and not resize:
            raise FIDError(f"{root}: images of different sizes ({files[0].name} is "
                           f"{first[0]}x{first[1]}, {path.name} is {size[0]}x{size[1]}); "
                           "pass --resize N to resize and centre-crop them all to N x N")


def folder_input(root: Path, resize: int = 0) -> ImagesInput:
    """Every image file under `root` (recursively); all one size unless `resize` > 0.

    Only the first file is opened here; the others are checked as they are decoded for
    features, and on any failure `check_folder` names the culprit (no second pass over the
    files when all is well).
    """
    if resize < 0:
        raise FIDError(f"--resize must be > 0 (or 0 for no resizing), got {resize}")
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        hint = (f"; for its generator pass {root / 'checkpoint.pt'} (or best.pt)"
                if (root / "checkpoint.pt").is_file() else "")
        raise FIDError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder{hint}")
    listing = [(str(p.relative_to(root)), st.st_size, st.st_mtime_ns)
               for p, st in ((p, p.stat()) for p in files)]
    steps = ([transforms.Resize(resize), transforms.CenterCrop(resize)] if resize
             else [_SameSize(_image_size(files[0]))])
    dataset = FolderImages(files, transforms.Compose([*steps, TransformPILtoRGBTensor()]))
    return ImagesInput(dataset, f"folder {root} ({len(files)} images)",
                       # "rgb8": 16-bit files are scaled since; keeps older cache entries apart
                       _digest("folder", str(root.resolve()), listing, resize, "rgb8"),
                       diagnose=lambda: check_folder(root, files, resize))


def registered_input(name: str, root: str | None, download: bool) -> ImagesInput:
    """A torch-fidelity registered dataset, fingerprinted by hashing its pixels."""
    root = root or str(Path(torch.hub.get_dir()).parent / "fidelity_datasets")  # torch-fidelity's
    os.makedirs(root, exist_ok=True)
    try:
        dataset = DATASETS_REGISTRY[name](root, download)
    except (RuntimeError, OSError) as exc:
        raise FIDError(f"dataset {name!r} under {root}: {exc} (allow downloading, or pass "
                       "--datasets-root where it is)") from None
    digest = hashlib.sha256()
    for i in range(len(dataset)):
        digest.update(dataset[i].contiguous().numpy().tobytes())
    return ImagesInput(dataset, f"dataset {name} ({len(dataset)} images)",
                       _digest("dataset", name, len(dataset), digest.hexdigest()))


def generator_model(G: nn.Module, latent_dim: int) -> GenerativeModelModuleWrapper:
    """A generator of uint8 RGB images from N(0, I) noise, as torch-fidelity samples it."""
    return GenerativeModelModuleWrapper(nn.Sequential(G, ToUInt8RGB()), latent_dim, "normal", 0)


def generator_input(path: Path, state: dict, n: int, device: torch.device,
                    load_generator: GeneratorLoader | None) -> GeneratorInput:
    """An image GAN checkpoint's generator (EMA weights when present) as torch-fidelity input."""
    if load_generator is None:
        raise FIDError(f"{path} is a checkpoint: pass load_generator (e.g. mixup_gan.image."
                       "generator.load_generator) to sample it")
    G, latent_dim = load_generator(path, state)
    weights = "EMA" if "ema" in state.get("nets", {}) else "live"
    return GeneratorInput(generator_model(G.to(device), latent_dim),
                          f"generator {path} ({weights} weights, "
                          f"{n} samples)", n)


def resolve_input(spec: str, *, n: int, device: torch.device, resize: int = 0,
                  datasets_root: str | None = None, download: bool = True,
                  load_generator: GeneratorLoader | None = None):
    """Turn a command-line argument into an ImagesInput, GeneratorInput or StatsInput."""
    if spec in DATASETS_REGISTRY:
        return registered_input(spec, datasets_root, download)
    path = Path(spec)
    if path.is_dir() and is_run_folder(path):
        raise FIDError(f"{path} is a run folder: pass its checkpoint.pt (or best.pt) to measure "
                       "its generator, or its samples/ folder for the images it drew")
    if path.is_dir():
        return folder_input(path, resize)
    if not path.is_file():
        raise FIDError(f"{spec}: no such file or folder, and not a registered dataset "
                       f"({', '.join(sorted(DATASETS_REGISTRY))})")
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        raise FIDError(f"{exc}: expected a generator checkpoint or a statistics file") from None
    if isinstance(state, dict) and STATS_KEY in state:
        meta = {k: v for k, v in state.items() if k != STATS_KEY}
        return StatsInput(check_stats_file(path, state, STATS_KEY),
                          f"statistics {path} ({meta.get('source')})", meta)
    return generator_input(path, state, n, device, load_generator)
