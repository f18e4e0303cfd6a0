"""Classification data: scikit-learn's bundled digits (offline), MNIST and Fashion-MNIST
(in memory), CIFAR-10/100 (torchvision), and label corruption for the memorization
experiment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import ConfigError
from ..datasets import IDX_SETS, idx_split, sklearn_digits, torchvision_dataset
from .config import ClassifyDataConfig

DIGITS_TEST = 497  # fixed held-out digits (stratified, seed 0): 1300 train / 497 test
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "mnist": 10,
               "fashion-mnist": 10}


@dataclass
class Split:
    """A dataset split: tensors (digits) or a torchvision dataset with integer `labels`."""

    inputs: Tensor | torch.utils.data.Dataset
    labels: Tensor  # (N,) int64; for training, after corruption

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ClassificationData:
    train: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    corrupted: Tensor  # (N_train,) bool: label differs from the original
    labels_sha1: str  # fingerprint of the training labels actually used


def load_digits_split() -> tuple[Split, Split]:
    """The 8x8 digits as (N, 1, 8, 8) floats in [0, 1], split 1300/497 stratified (seed 0)."""
    x, y = sklearn_digits()
    g = torch.Generator().manual_seed(0)
    test_idx = []
    per_class = [torch.nonzero(y == c).flatten() for c in range(10)]
    shares = [round(DIGITS_TEST * len(idx) / len(y)) for idx in per_class]
    shares[0] += DIGITS_TEST - sum(shares)
    for idx, share in zip(per_class, shares, strict=True):
        test_idx.append(idx[torch.randperm(len(idx), generator=g)[:share]])
    test = torch.zeros(len(y), dtype=torch.bool)
    test[torch.cat(test_idx)] = True
    return Split(x[~test], y[~test]), Split(x[test], y[test])


def load_cifar_split(cfg: ClassifyDataConfig) -> tuple[Split, Split]:
    """CIFAR-10/100 through torchvision (downloads when `data.download` and missing)."""
    import torchvision
    from torchvision.transforms import v2

    cls = torchvision.datasets.CIFAR10 if cfg.name == "cifar10" else torchvision.datasets.CIFAR100
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    to_tensor = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    augment = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if cfg.augment else []
    train = torchvision_dataset(cls, cfg.root, download=cfg.download, name=cfg.name,
                                train=True, transform=v2.Compose(augment + to_tensor))
    test = torchvision_dataset(cls, cfg.root, download=cfg.download, name=cfg.name,
                               train=False, transform=v2.Compose(to_tensor))
    return (Split(train, torch.tensor(train.targets)), Split(test, torch.tensor(test.targets)))


def load_idx_split(cfg: ClassifyDataConfig) -> tuple[Split, Split]:
    """MNIST or Fashion-MNIST as in-memory floats (N, 1, 28, 28), standardised with the
    training set's mean and std (no augmentation)."""
    mean, std = IDX_SETS[cfg.name].mean_std

    def split(train: bool) -> Split:
        images, labels = idx_split(cfg.name, cfg.root, train=train, download=cfg.download)
        return Split((images[:, None].float() / 255 - mean) / std, labels.long())

    return split(True), split(False)


def corrupt_labels(labels: Tensor, share: float, num_classes: int, seed: int) -> Tensor:
    """Replace `round(share * N)` labels, chosen at random, by uniformly random classes.

    As in the paper's memorization experiment, a random label may equal the true one.
    """
    g = torch.Generator().manual_seed(seed)
    count = round(share * len(labels))
    chosen = torch.randperm(len(labels), generator=g)[:count]
    noisy = labels.clone()
    noisy[chosen] = torch.randint(num_classes, (count,), generator=g)
    return noisy


def load_data(cfg: ClassifyDataConfig) -> ClassificationData:
    """Load the configured dataset, check `num_classes`, corrupt labels when asked."""
    if cfg.name == "digits":
        train, test = load_digits_split()
    else:
        train, test = (load_idx_split if cfg.name in IDX_SETS else load_cifar_split)(cfg)
    num_classes = cfg.num_classes or NUM_CLASSES[cfg.name]
    highest = int(max(train.labels.max(), test.labels.max()))
    if highest >= num_classes:
        raise ConfigError(f"data.num_classes: {num_classes} but the {cfg.name} labels go up "
                          f"to {highest}")
    original = train.labels
    if cfg.corrupt > 0:
        train = Split(train.inputs, corrupt_labels(original, cfg.corrupt, num_classes,
                                                   cfg.corrupt_seed))
    sample = train.inputs[0] if isinstance(train.inputs, Tensor) else train.inputs[0][0]
    return ClassificationData(
        train, test, num_classes, tuple(sample.shape), train.labels != original,
        hashlib.sha1(train.labels.numpy().tobytes()).hexdigest(),
    )
