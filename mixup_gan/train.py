"""The one GAN trainer: one GAN, or a population of P runs (sweeps), through the one loop.

Single runs and populations share it; toy and image runs differ only in data, nets and
hooks. The step itself (`gan_step.GANStep`: nets, optimizers, the D-loss planner, EMA) is a
fixed set of batched tensor ops whatever P is: every random number of training (real
batches, latents, mixup lam, permutations, coins) comes from a counter-based stream per
member (`rng.CounterRNG`) drawn on the training device, and the D and G losses of all
members are computed together (`member_losses`). The trainer keeps what lies between steps:
the generator step and the draw counter (all a checkpoint needs to resume exactly), the
learning rate's schedule, the divergence record and the stats channel (`stats.Stats`, device
sums of what each step reports), all on the device until the loop (`loop.fit_iter`) reads
them at a sync point. Member k draws exactly what a run of one with its seed draws. Hooks
use their own fixed noise. With `capture`, the step's counters and learning rate live on the
device too, and on CUDA the step is replayed from a CUDA graph (`captured_step`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

from . import loop
from .captured_step import StepClock
from .checkpoint import check_layout, training_state
from .gan_config import GANTrainConfig, LossConfig
from .gan_step import GANStep, RealData
from .hooks import Hook
from .runtime import TrainingDiverged, unwrapped
from .stats import Stat, Stats

__all__ = ["SYNC_EVERY", "GANTrainer", "RealData"]
SYNC_EVERY = 50  # generator steps between reads of the on-device state (progress, NaN guard)


class GANTrainer:
    """Trains one GAN, or a population of P independent GANs, with the mixup D loss.

    Args:
        generator: latent -> samples. Either an ordinary net, (N, latent_dim) -> (N, ...), for
            a single run, or a stacked net with attribute `members` = P taking (P, N, ...).
        discriminator: samples -> raw outputs, (N,) / (N, 1), or (P, N) when stacked.
        real_data: `real_data(rng, counter, n)` returns each member's n real samples,
            (P, n, ...), drawn from the `CounterRNG` with counters counter .. counter + 3.
        latent_dim: size of the generator's input.
        loss: the `loss` config section, shared or one per member.
        train: the `train` config section (shared: batch size, n_dis, Adam settings).
        seeds: one training seed per member (default `[train.seed]`).
        ema_decay: generator EMA decay (default `train.ema`; 0 = none): `sampler()` is then
            the averaged generator, which hooks evaluate and draw.
        capture: run each step as device-only ops, recorded as a CUDA graph on CUDA
            (`captured_step`); equal to the plain step to float tolerance.

    Levers are data of the config: schedules of alpha, mix_prob, the gradient penalty's
    weight (`loss`) and the learning rate (`train`), D's lr ratio and EMA's start (`train`).
    The step is `gan_step`, a `step_class` (`GANStep`): a trainer subclass that sets
    `step_class` to a subclass of `GANStep` changes the step.
    """

    step_class: type[GANStep] = GANStep

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        real_data: RealData,
        *,
        latent_dim: int,
        loss: LossConfig | Sequence[LossConfig],
        train: GANTrainConfig,
        seeds: Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        autocast: Callable[[], AbstractContextManager] = nullcontext,
        ema_decay: float | None = None,
        capture: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.seeds = list(seeds) if seeds is not None else [train.seed]
        self.gan_step = self.step_class(
            generator, discriminator, real_data, latent_dim=latent_dim, loss=loss,
            train=train, seeds=self.seeds, device=self.device, autocast=autocast,
            ema_decay=ema_decay)
        self.members, self.cfg = len(self.seeds), train
        self.draws = 0  # counters of the step's random streams used so far
        self.step = 0  # generator iterations done
        # member -> generator step at which its stats first went non-finite (-1: never)
        self.diverged_at = torch.full((self.members,), -1, dtype=torch.int64,
                                      device=self.device)
        self.stats = Stats(self.members, self.device)
        self.last: dict[str, Stat] = {}  # the last step's stats (device tensors)
        self.clock = (StepClock(self.gan_step, self.record, train=train, at=self.step,
                                draws=self.draws) if capture else None)

    # --- what the step holds, by name -------------------------------------------------------

    @property
    def G(self) -> nn.Module:
        return self.gan_step.G

    @property
    def D(self) -> nn.Module:
        return self.gan_step.D

    @property
    def ema(self):
        return self.gan_step.ema

    @property
    def losses(self):
        return self.gan_step.losses

    @property
    def rng(self):
        return self.gan_step.rng

    @property
    def opt_d(self) -> torch.optim.Optimizer:
        return self.gan_step.opt_d

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.gan_step.opt_g

    def sampler(self) -> nn.Module:
        """The generator to evaluate and draw: the EMA weights when averaged, else G."""
        return self.gan_step.sampler()

    # --- one iteration ------------------------------------------------------------------

    def train_step(self) -> dict[str, Stat]:
        """One generator iteration (`n_dis` D steps then one G step) at the schedule's lr;
        returns its stats."""
        if not self.cfg.lr_schedule.constant:
            self.set_lr()
        stats = self.gan_step(self.draws, self.step)
        self.draws += self.gan_step.per_step
        return stats

    def run_step(self) -> None:
        """One iteration and its record, with no host read (the loop's step)."""
        if self.clock is None:
            self.last = self.train_step()
            self.record(self.last, self.step + 1)
        else:
            self.last = self.clock.run(self.step)
            self.draws += self.gan_step.per_step

    def set_lr(self, lr: float | None = None) -> None:
        """Adam's lr for G (`lr`, else the schedule's at this step) and D (lr *
        `train.d_lr_ratio`)."""
        if lr is None:
            lr = self.cfg.lr * self.cfg.lr_schedule.multiplier(self.step, self.cfg.steps)
        self.gan_step.set_lr(lr, lr * self.cfg.d_lr_ratio)

    # --- on-device bookkeeping, read at sync points --------------------------------------

    def record(self, stats: dict[str, Stat], step: int | Tensor) -> None:
        """Fold the stats of generator step `step` into the stats channel, and a member whose
        stats (those every member reports: the losses) went non-finite into the divergence
        record, in place (no host sync; part of a captured step)."""
        finite = torch.isfinite(torch.stack([v for v in stats.values()
                                             if isinstance(v, Tensor)])).all(0)
        self.diverged_at.copy_(torch.where(~finite & (self.diverged_at < 0), step,
                                           self.diverged_at))
        self.stats.add(stats)

    @property
    def diverged(self) -> dict[int, int]:
        """Members whose stats went non-finite -> the generator step it happened at."""
        return {k: s for k, s in enumerate(self.diverged_at.tolist()) if s >= 0}

    def _losses(self) -> dict[str, list[float]]:
        """The last step's losses (the stats named `*_loss`), each member's, on the host."""
        return {k: v.tolist() for k, v in self.last.items()
                if k.endswith("_loss") and isinstance(v, Tensor)}

    def check_finite(self) -> None:
        """Raise `TrainingDiverged` once every member has diverged.

        Members are independent (their weights and Adam states never mix), so a population
        goes on while any member is healthy.
        """
        diverged = self.diverged
        if len(diverged) < self.members:
            return
        if self.members == 1:
            losses = ", ".join(f"{k} {v[0]}" for k, v in self._losses().items())
            raise TrainingDiverged(f"training diverged at generator step {diverged[0]}: "
                                   f"{losses}")
        losses = ", ".join(f"{k} {v}" for k, v in self._losses().items())
        raise TrainingDiverged(
            f"training diverged at generator step {max(diverged.values())}: every member "
            f"(at steps {list(diverged.values())}): {losses}")

    def postfix(self) -> dict[str, str]:
        """The progress bar's figures: the last step's losses (the mean over members)."""
        return {k.removesuffix("_loss"): f"{v.nanmean():.3f}" for k, v in self.last.items()
                if k.endswith("_loss") and isinstance(v, Tensor)}

    def pop_mean_losses(self) -> list[dict[str, float]]:
        """Each member's mean stats since the last call (for logging), then reset."""
        return self.stats.pop_means()

    # --- the loop -----------------------------------------------------------------------

    def fit(self, steps: int, hooks: Iterable[Hook] = (), *, progress: bool = True) -> None:
        """Train until `steps` generator iterations are done (`fit_iter` run to its end)."""
        deque(self.fit_iter(steps, hooks, progress=progress), maxlen=0)

    def fit_iter(self, steps: int, hooks: Iterable[Hook] = (), *,
                 progress: bool = True) -> Iterator[None]:
        """Train until `steps` generator iterations are done, calling hooks when due; yields
        after each step (`loop.fit_iter`, syncing every `SYNC_EVERY` steps and before hooks)."""
        return loop.fit_iter(self, steps, hooks, progress=progress, desc="train",
                             sync_every=SYNC_EVERY)

    # --- checkpoint state -----------------------------------------------------------------

    def state_dict(self) -> dict:
        step = self.gan_step
        nets = {"generator": unwrapped(step.G).state_dict(),
                "discriminator": unwrapped(step.D).state_dict()}
        if step.ema is not None:
            nets["ema"] = step.ema.state_dict()
        return training_state(
            self.step, nets,
            {"generator": step.opt_g.state_dict(), "discriminator": step.opt_d.state_dict()},
            {"seeds": step.rng.seeds, "draws": self.draws},
            {"loss_sums": self.stats.state_dict(), "diverged_at": self.diverged_at.cpu()})

    def load_state_dict(self, state: dict) -> None:
        check_layout(state)
        if len(state["rng"]["seeds"]) != self.members:
            raise ValueError(f"checkpoint has {len(state['rng']['seeds'])} members, "
                             f"not {self.members}")
        nets, optimizers, progress = state["nets"], state["optimizers"], state["progress"]
        step = self.gan_step
        unwrapped(step.G).load_state_dict(nets["generator"])
        unwrapped(step.D).load_state_dict(nets["discriminator"])
        step.opt_g.load_state_dict(optimizers["generator"])
        step.opt_d.load_state_dict(optimizers["discriminator"])
        if step.ema is not None:
            step.ema.load_state_dict(nets["ema"])
        self.draws = int(state["rng"]["draws"])
        self.step = int(state["step"])
        self.stats.load_state_dict(progress["loss_sums"])
        self.diverged_at.copy_(progress["diverged_at"])
        self.set_lr()  # a float, not capturable: as saved by a captured run, too
        if self.clock is not None:
            self.clock.attach(self.step, self.draws)
