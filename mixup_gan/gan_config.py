"""The config sections every GAN run (toy, image) shares: `loss` and `train`."""

from __future__ import annotations

from dataclasses import dataclass

from .config import MAX_BATCH, MAX_LR, check_device, option, seed_option
from .mixup_options import MixupOptions
from .schedule import Schedule
from .terms import ADVERSARIAL_LOSSES, GENERATOR_LOSSES


@dataclass(frozen=True)
class LossConfig(MixupOptions):
    """The `loss` section of GAN runs: the adversarial loss, its mixup options, the G loss."""

    name: str = option("bce", choices=sorted(ADVERSARIAL_LOSSES))
    generator_loss: str | None = option(None, choices=sorted(GENERATOR_LOSSES),
                                      doc="default: the usual partner of the loss")
    alpha_schedule: Schedule = option(Schedule(), doc="alpha over training (a multiplier)")
    mix_prob_schedule: Schedule = option(Schedule(), doc="mix_prob over training")
    gradient_penalty: float = option(0.0, ge=0.0, le=1e6, doc="weight g of the zero-centred "
                                     "penalty g/2 * E|grad_x D(x)|^2 on the points D is trained on "
                                     "(the mixed points under mixup); 0 = off")
    gradient_penalty_schedule: Schedule = option(Schedule(), doc="the penalty's weight over "
                                                 "training (a multiplier of g)")
    mix_layer: int = option(0, ge=0, le=256, doc="where real and fake are mixed: 0 = D's "
                            "inputs (the paper); k = D's features after its k-th hidden layer "
                            "(toy runs), the penalty then on those features")

    def check(self) -> tuple[str, str] | None:
        if not self.gradient_penalty and not self.gradient_penalty_schedule.constant:
            return "gradient_penalty_schedule", (
                "schedules a penalty of weight 0: set loss.gradient_penalty > 0, or to turn "
                "the penalty off, also loss.gradient_penalty_schedule: {kind: constant}")
        return super().check()


@dataclass
class GANTrainConfig:
    """The `train` section of GAN runs (toy and image)."""

    steps: int = option(2000, gt=0, resumable=True, doc="generator iterations")
    batch_size: int = option(128, gt=0, le=MAX_BATCH)
    n_dis: int = option(5, gt=0, le=1000, doc="D steps per G step")
    lr: float = option(1e-3, gt=0.0, le=MAX_LR)
    betas: tuple[float, float] = option((0.9, 0.999))
    seed: int = seed_option(per_member=True)
    device: str = option("auto", resumable=True, doc="auto, cpu, cuda, cuda:N")
    lr_schedule: Schedule = option(Schedule(), doc="learning rate over training (a multiplier)")
    ema: float = option(0.0, ge=0.0, le=0.99999, doc="generator EMA decay (evaluated and drawn "
                        "with the averaged weights); 0 = off")
    ema_start: int = option(0, ge=0, lt=2**63, doc="generator step where the EMA starts "
                            "averaging; until then it is G itself; 0 = from the start")
    d_lr_ratio: float = option(1.0, gt=0.0, le=1e3, doc="D's learning rate is lr * d_lr_ratio "
                               "(G's is lr; both follow lr_schedule)")
    amp: bool | None = option(False, doc="bfloat16 autocast of the forward passes on any "
                              "device; null = on CUDA only. Off for toy runs: bfloat16 "
                              "resolves 2D points near 1 only to 0.004, a third of a mode's std")

    def check(self) -> tuple[str, str] | None:
        bad = [b for b in self.betas if not 0.0 <= b < 1.0]
        if bad:
            return "betas", f"{list(self.betas)}: Adam's betas must be in [0, 1)"
        if self.ema_start and not self.ema:
            return "ema_start", (f"{self.ema_start} needs an EMA: set train.ema > 0 (its "
                                 "decay), or to turn the EMA off, also train.ema_start: 0")
        if self.lr * self.d_lr_ratio > MAX_LR:
            return "d_lr_ratio", (f"{self.d_lr_ratio} makes D's lr {self.lr * self.d_lr_ratio:g}"
                                  f", past {MAX_LR:g}")
        return check_device(self.device)


