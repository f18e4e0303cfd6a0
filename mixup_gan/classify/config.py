"""The classification run's config schema (`mixup-gan classify`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import (
    MAX_BATCH,
    MAX_LR,
    MAX_WIDTH,
    OutputConfig,
    check_device,
    option,
    section,
    seed_option,
)
from ..mixup import DISTRIBUTIONS
from ..mixup_options import alpha_problem
from .nets import CLASSIFIERS


@dataclass
class ClassifyDataConfig:
    name: str = option("digits", choices=("digits", "cifar10", "cifar100", "mnist",
                                          "fashion-mnist"),
                       doc="digits: scikit-learn's bundled 8x8 digits, offline; mnist, "
                       "fashion-mnist: 28x28 (offline: mixup-gan data fetch)")
    root: str = option("data", resumable=True,
                       doc="where torchvision datasets are (or are downloaded to)")
    download: bool = option(True, resumable=True,
                            doc="download the dataset when it is not under root")
    num_classes: int | None = option(None, gt=1, le=10 ** 6, doc="default: the dataset's")
    corrupt: float = option(0.0, ge=0.0, le=1.0,
                            doc="share of training labels replaced by random ones")
    corrupt_seed: int = seed_option()
    augment: bool = option(True, doc="CIFAR: random crop (pad 4) and horizontal flip")
    workers: int = option(2, ge=0, le=512, resumable=True, doc="DataLoader workers for CIFAR")


@dataclass
class ClassifyModelConfig:
    name: str = option("mlp", choices=CLASSIFIERS)
    hidden: int = option(256, ge=1, le=MAX_WIDTH, doc="mlp units; cnn/lenet: first conv channels")


@dataclass
class ClassifyLossConfig:
    mode: str = option("mixup", choices=("erm", "mixup", "cutmix"))
    alpha: float = option(1.0, ge=0.0, le=1e6)
    distribution: str = option("beta", choices=DISTRIBUTIONS)
    per_sample: bool = option(False, doc="one lam per sample (mixup only)")
    label_smoothing: float = option(0.0, ge=0.0, le=0.99)

    def check(self) -> tuple[str, str] | None:
        if self.mode == "cutmix" and self.per_sample:
            return "per_sample", "cutmix draws one box, so one lam, per batch"
        return alpha_problem(self.distribution, self.alpha)


@dataclass
class ClassifyTrainConfig:
    epochs: int = option(200, gt=0, resumable=True)
    batch_size: int = option(128, gt=0, le=MAX_BATCH)
    lr: float = option(0.1, gt=0.0, le=MAX_LR)
    momentum: float = option(0.9, ge=0.0, le=1.0)
    weight_decay: float = option(1e-4, ge=0.0, le=MAX_LR)
    milestones: list[int] = option([100, 150], doc="epochs where lr is divided by 1/gamma")
    gamma: float = option(0.1, gt=0.0, le=MAX_LR)
    seed: int = seed_option()
    device: str = option("auto", resumable=True)
    amp: bool | None = option(None, doc="bfloat16 autocast: true, false, or null = on CUDA only")

    def check(self) -> tuple[str, str] | None:
        return check_device(self.device)


@dataclass
class ClassifyEvalConfig:
    every: int = option(1, gt=0, doc="evaluate every N epochs")
    memorization: bool = option(True, doc="also score the training set against its labels")


@dataclass
class ClassifyConfig:
    data: ClassifyDataConfig = section(ClassifyDataConfig)
    model: ClassifyModelConfig = section(ClassifyModelConfig)
    loss: ClassifyLossConfig = section(ClassifyLossConfig)
    train: ClassifyTrainConfig = section(ClassifyTrainConfig)
    eval: ClassifyEvalConfig = section(ClassifyEvalConfig, resumable=True)
    output: OutputConfig = section(OutputConfig, resumable=True)
