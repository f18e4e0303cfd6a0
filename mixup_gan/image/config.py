"""The image GAN run's config schema (`mixup-gan image`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_SAMPLES, MAX_WIDTH, OutputConfig, option, section
from ..gan_config import GANTrainConfig, LossConfig
from .nets import ARCHS, D_NORMS


@dataclass
class ImageDataConfig:
    name: str = option("cifar10", choices=("cifar10", "mnist", "fashion-mnist", "folder",
                                           "digits"),
                       doc="folder: every image under data.root; digits: offline 8x8 digits; "
                       "mnist, fashion-mnist: 28x28, zero-padded to data.size")
    root: str = option("data", resumable=True, trains_when=("name", "folder"),
                       doc="dataset folder (downloaded into for cifar10/mnist/"
                       "fashion-mnist; offline: mixup-gan data fetch)")
    size: int = option(32, gt=0, le=2048)
    channels: int = option(3, choices=(1, 3))
    download: bool = option(True, resumable=True)


@dataclass
class ImageModelConfig:
    arch: str = option("dcgan", choices=ARCHS)
    latent_dim: int = option(128, ge=1, le=MAX_WIDTH)
    g_width: int = option(128, ge=1, le=MAX_WIDTH)
    d_width: int = option(64, ge=1, le=MAX_WIDTH)
    d_norm: str = option("spectral", choices=D_NORMS,
                         doc="dcgan D normalisation; batch = original DCGAN, not for mixup")


@dataclass
class ImageTrainConfig(GANTrainConfig):
    ema: float = option(0.999, ge=0.0, le=0.99999, doc="generator EMA decay; 0 = off")
    amp: bool | None = option(False, doc="bfloat16 autocast: true, false, or null = on CUDA "
                              "only. Off: on an H200 the 32x32 DCGAN trained 1.3x faster in "
                              "fp32 (benchmarks/bench_image.py)")
    compile: bool = option(False, doc="torch.compile G and D")


@dataclass
class ImageEvalConfig:
    every: int = option(1000, gt=0, doc="log losses and write a sample grid every N steps")
    n_samples: int = option(64, ge=1, le=10_000, doc="images in the sample grid (fixed noise)")
    fid_every: int | None = option(None, gt=0, doc="FID of the (EMA) generator every N steps; "
                                   "null = off. The best one is kept as best.pt")
    fid_samples: int = option(5000, ge=2, le=MAX_SAMPLES, doc="generated images per FID evaluation")
    fid_reference: str | None = option(None, doc="image folder, torch-fidelity dataset name or "
                                       "statistics file; null = the training images")
    fid_extractor: str = option("inception-v3-compat", doc="torch-fidelity feature extractor")
    fid_inception_weights: str | None = option(None, doc="inception-v3-compat weights file")
    fid_batch_size: int = option(64, ge=1, le=65536)
    generator_every: int | None = option(None, gt=0, doc="keep the generator (its EMA weights "
                                         "when on) every N steps as generators/step_N.pt, "
                                         "which `mixup-gan fid` and `sample` read: FID over "
                                         "training, measured afterwards; null = off")


@dataclass
class ImageConfig:
    data: ImageDataConfig = section(ImageDataConfig)
    model: ImageModelConfig = section(ImageModelConfig)
    loss: LossConfig = section(LossConfig)
    train: ImageTrainConfig = section(ImageTrainConfig)
    eval: ImageEvalConfig = section(ImageEvalConfig, resumable=True)
    output: OutputConfig = section(OutputConfig, resumable=True)

    def check(self) -> tuple[str, str] | None:
        if self.loss.mix_layer:
            return "loss.mix_layer", (f"{self.loss.mix_layer}: mixing D's hidden features "
                                      "needs the toy MLP's D; image runs mix images (0)")
        return None
