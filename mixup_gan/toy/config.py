"""The toy run's config schema (`mixup-gan toy`, and every member of a sweep)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_SAMPLES, MAX_WIDTH, OutputConfig, option, section
from ..gan_config import GANTrainConfig, LossConfig
from .data import NAMES


@dataclass
class ToyDataConfig:
    name: str = option("ring", choices=NAMES,
                     doc="toy distribution, or 'points' for a CSV file")
    path: str | None = option(None, path=True,
                              doc="CSV with columns x,y when name is 'points'")
    scale: str = option("paper", choices=("paper", "wgan-gp"), doc="mode layout preset")
    reference: str | None = option(None, path=True, resumable=True,
                                   doc="reference point CSV for evaluation")


@dataclass
class ToyModelConfig:
    latent_dim: int = option(2, ge=1, le=MAX_WIDTH)
    hidden: int = option(512, ge=1, le=MAX_WIDTH)
    depth: int = option(3, ge=1, le=256, doc="hidden layers")


@dataclass
class ToyEvalConfig:
    every: int = option(250, gt=0, doc="evaluate metrics every N generator steps")
    n_samples: int = option(2500, ge=2, le=MAX_SAMPLES)
    snapshots: list[int] = option([10, 100, 1000, 10000, 20000])
    contour: bool = option(False, doc="draw D's output under the snapshots")


@dataclass
class ToyTrainConfig(GANTrainConfig):
    capture: bool | None = option(
        None, resumable=True, doc="run each step as device-only ops replayed from a CUDA "
        "graph (a toy step has fixed shapes); null = on CUDA only, where it is faster. On a "
        "CPU the same step runs without a graph")


@dataclass
class ToyConfig:
    """A toy 2D GAN run (`mixup-gan toy`). Members of one population (a sweep's) may differ
    in their data, loss and seed (`per_member`): they share the nets' shape and the loop."""

    data: ToyDataConfig = section(ToyDataConfig, per_member=True)
    model: ToyModelConfig = section(ToyModelConfig)
    loss: LossConfig = section(LossConfig, per_member=True)
    train: ToyTrainConfig = section(ToyTrainConfig)
    eval: ToyEvalConfig = section(ToyEvalConfig, resumable=True)
    output: OutputConfig = section(OutputConfig, resumable=True)

    def check(self) -> tuple[str, str] | None:
        if self.loss.mix_layer > self.model.depth:
            return "loss.mix_layer", (f"{self.loss.mix_layer} is past D's last hidden layer "
                                      f"(model.depth {self.model.depth})")
        return None
