"""The one GAN training loop: `n_dis` discriminator steps, then one generator step.

Single runs and populations of P runs (sweeps) share it; toy and image runs differ only in
data, nets and hooks. A step is one fixed set of batched tensor ops whatever P is: every
random number of training (real batches, latents, mixup lam, permutations, coins) comes from
a counter-based stream per member (`rng.CounterRNG`) drawn on the training device, the D and
G losses of all members are computed together (`member_losses`), and nothing waits for the
host: finiteness and loss sums stay on the device until a hook or the progress bar reads
them. Member k draws exactly what a run of one with its seed draws, and a checkpoint needs
only the draw counter to resume exactly. Hooks use their own fixed noise. With `capture`,
the step's counters and learning rate live on the device too, and on CUDA the step is
replayed from a CUDA graph (`captured_step`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .captured_step import StepClock
from .checkpoint import check_layout, training_state
from .ema import EMA
from .gan_config import GANTrainConfig, LossConfig
from .hooks import Hook
from .member_losses import BLOCK, DATA, LATENT, DiscriminatorPart, MemberLosses, per_member
from .rng import CounterRNG
from .runtime import TrainingDiverged, make_adam, stream_seed, unwrapped

# real_data(rng, counter, n) -> (P, n, ...): each member's real batch, drawn with counters
# counter .. counter + 3 of `rng` (see toy.data.MemberSampler, image.data.ImageBank.draw).
RealData = Callable[[CounterRNG, int, int], Tensor]
SYNC_EVERY = 50  # generator steps between reads of the on-device state (progress, NaN guard)


def _is_stacked(net: nn.Module) -> bool:
    return getattr(unwrapped(net), "members", None) is not None


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

    Members' losses are summed (not averaged), so member k's gradients, Adam updates and
    random draws are those of a run of one with member k's seed and settings.
    Subclasses change a step by overriding `d_step`, `g_step` or `train_step`.
    """

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
        self.autocast = autocast  # e.g. bfloat16 autocast; forward passes only
        self.G, self.D = generator.to(self.device), discriminator.to(self.device)
        self.seeds = list(seeds) if seeds is not None else [train.seed]
        self.members = len(self.seeds)
        self.stacked = _is_stacked(self.G)
        if self.stacked != _is_stacked(self.D):
            raise ValueError("generator and discriminator must both be stacked, or neither")
        net_members = unwrapped(self.G).members if self.stacked else 1
        if net_members != self.members:
            raise ValueError(f"{len(self.seeds)} seeds for networks of {net_members} member(s)")
        self.real_data = real_data
        self.losses = MemberLosses(per_member(loss, self.members, "loss"), self.device,
                                   last_step=train.steps)
        self.latent_dim, self.cfg = latent_dim, train
        self.rng = CounterRNG([stream_seed(s, "train") for s in self.seeds], self.device,
                              stride=BLOCK)
        self.draws = 0  # counters of `rng` used so far: BLOCK per D or G step
        self.opt_g = make_adam(self.G.parameters(), train.lr, train.betas)
        self.opt_d = make_adam(self.D.parameters(), train.lr * train.d_lr_ratio, train.betas)
        decay = train.ema if ema_decay is None else ema_decay
        self.ema = EMA(self.G, decay, train.ema_start) if decay else None  # evaluated, drawn
        self.step = 0  # generator iterations done
        # member -> generator step at which its losses first went non-finite (-1: never)
        self.diverged_at = torch.full((self.members,), -1, dtype=torch.int64,
                                      device=self.device)
        self.loss_sums: dict = {}
        self._reset_sums()
        self.clock = StepClock(self) if capture else None

    # --- stacking -------------------------------------------------------------------------

    def apply(self, net: nn.Module, x: Tensor) -> Tensor:
        """Run a net on stacked input (P, N, ...) -> (P, N, ...), stacked or not."""
        return net(x) if self.stacked else net(x[0]).unsqueeze(0)

    def next_counter(self) -> int:
        """Reserve the next block of random-stream counters (one per D or G step)."""
        counter, self.draws = self.draws, self.draws + BLOCK
        return counter if self.clock is None else self.clock.counter(counter)

    def latents(self, counter: int | Tensor) -> Tensor:
        return self.rng.normal(counter + LATENT, self.cfg.batch_size, self.latent_dim)

    def discriminate(self, parts: list[DiscriminatorPart]) -> list[Tensor]:
        """D's raw outputs (P, R) on every part, in one call when stacked."""
        sizes = [part.inputs.shape[1] for part in parts]
        if self.stacked:
            out = self.D(torch.cat([part.inputs for part in parts], 1))
        elif len(parts) > 1 and unwrapped(self.D) is self.D:
            # separate calls keep BatchNorm statistics per part
            return [_outputs(self.D(part.inputs[0]), 1, n)
                    for part, n in zip(parts, sizes, strict=True)]
        else:  # DistributedDataParallel allows one forward per backward: one call
            out = self.D(torch.cat([part.inputs[0] for part in parts]))
        return list(_outputs(out, self.members, sum(sizes)).split(sizes, 1))

    # --- one iteration ------------------------------------------------------------------

    def d_step(self) -> Tensor:
        """One discriminator update; returns the members' losses, shape (P,)."""
        counter = self.next_counter()
        real = self.real_data(self.rng, counter + DATA, self.cfg.batch_size)
        with torch.no_grad(), self.autocast():
            fake = self.apply(unwrapped(self.G), self.latents(counter))
        clock = None if self.clock is None else self.clock.step
        parts = self.losses.parts(self.rng, counter, real, fake.to(real.dtype), self.step, clock)
        if self.losses.penalized:
            self.losses.requires_inputs_grad(parts)
        with self.autocast():
            outputs = self.discriminate(parts)
        losses = self.losses.d_loss(parts, outputs)
        objective = losses
        if self.losses.penalized:
            objective = losses + self.losses.penalty(parts, outputs, self.step, clock)
        self.opt_d.zero_grad(set_to_none=True)
        objective.sum().backward()
        self.opt_d.step()
        return losses.detach()

    def g_step(self) -> Tensor:
        """One generator update; returns the members' losses, shape (P,)."""
        z = self.latents(self.next_counter())
        # D's weights need no gradient here: skipping them saves a third of D's backward.
        self.D.requires_grad_(False)
        try:
            with self.autocast():  # D is only differentiated through: no gradient sync
                out = self.apply(unwrapped(self.D), self.apply(self.G, z))
        finally:
            self.D.requires_grad_(True)
        losses = self.losses.g_loss(_outputs(out, self.members, z.shape[1]))
        self.opt_g.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt_g.step()
        return losses.detach()

    def train_step(self) -> dict[str, Tensor]:
        """`n_dis` D steps then one G step; returns the last D losses and the G losses (P,)."""
        if self.clock is not None:
            self.clock.set_lr()
        elif not self.cfg.lr_schedule.constant:
            self.set_lr()
        for _ in range(self.cfg.n_dis):
            d_loss = self.d_step()
        losses = {"d_loss": d_loss, "g_loss": self.g_step()}
        if self.ema is not None:
            self.ema.update(self.G, self.step if self.clock is None else self.clock.step)
        return losses

    def set_lr(self, lr: float | Tensor | None = None, d_lr: float | Tensor | None = None, *,
               capturable: bool = False) -> None:
        """Adam's lr for G and D (lr * `train.d_lr_ratio`): the schedule's at this step, or a
        captured step's tensors."""
        if lr is None:
            lr = self.cfg.lr * self.cfg.lr_schedule.multiplier(self.step, self.cfg.steps)
        if d_lr is None:
            d_lr = lr * self.cfg.d_lr_ratio
        for opt, value in ((self.opt_d, d_lr), (self.opt_g, lr)):
            for group in opt.param_groups:
                group["lr"], group["capturable"] = value, capturable

    def sampler(self) -> nn.Module:
        """The generator to evaluate and draw: the EMA weights when averaged, else G."""
        return self.ema.module if self.ema is not None else unwrapped(self.G)

    # --- on-device bookkeeping, read at sync points --------------------------------------

    def record(self, losses: dict[str, Tensor], step: int | Tensor) -> None:
        """Fold the losses of generator step `step` into the sums and the divergence record,
        in place (no host sync; part of a captured step)."""
        finite = torch.isfinite(losses["d_loss"]) & torch.isfinite(losses["g_loss"])
        self.diverged_at.copy_(torch.where(~finite & (self.diverged_at < 0), step,
                                           self.diverged_at))
        for key in ("d_loss", "g_loss"):
            self.loss_sums[key] += losses[key].double()
        self._last = losses

    @property
    def diverged(self) -> dict[int, int]:
        """Members whose losses went non-finite -> the generator step it happened at."""
        return {k: s for k, s in enumerate(self.diverged_at.tolist()) if s >= 0}

    def check_finite(self) -> None:
        """Raise `TrainingDiverged` once every member has diverged.

        Members are independent (their weights and Adam states never mix), so a population
        goes on while any member is healthy.
        """
        diverged = self.diverged
        if len(diverged) < self.members:
            return
        d, g = self._last["d_loss"].tolist(), self._last["g_loss"].tolist()
        if self.members == 1:
            raise TrainingDiverged(f"training diverged at generator step {diverged[0]}: "
                                   f"D loss {d[0]}, G loss {g[0]}")
        raise TrainingDiverged(
            f"training diverged at generator step {max(diverged.values())}: every member "
            f"(at steps {list(diverged.values())}): D loss {d}, G loss {g}")

    # --- the loop -----------------------------------------------------------------------

    def fit(self, steps: int, hooks: Iterable[Hook] = (), *, progress: bool = True) -> None:
        """Train until `steps` generator iterations are done (`fit_iter` run to its end)."""
        deque(self.fit_iter(steps, hooks, progress=progress), maxlen=0)

    def fit_iter(self, steps: int, hooks: Iterable[Hook] = (), *,
                 progress: bool = True) -> Iterator[None]:
        """Train until `steps` generator iterations are done, calling hooks when due; yields
        after each step, so that a caller can interleave runs (`runs.interleave`).

        The on-device state is read (a host sync) only before hooks run and every
        `SYNC_EVERY` steps: a diverged run stops there, naming the step it diverged at,
        before any hook (a checkpoint, say) sees its weights. So a hook due every step
        syncs every step; host-only work belongs at `every=SYNC_EVERY`.
        """
        hooks = list(hooks)
        bar = tqdm(total=steps, initial=self.step, disable=not progress, desc="train",
                   dynamic_ncols=True)
        try:
            while self.step < steps:
                if self.clock is None:
                    self.record(self.train_step(), self.step + 1)
                else:
                    self.clock.run(self)
                self.step += 1
                self.loss_sums["count"] += 1
                losses = self._last
                due = [hook for hook in hooks if hook.due(self.step, steps)]
                if due or self.step % SYNC_EVERY == 0 or self.step == steps:
                    self.check_finite()
                    if progress:
                        bar.set_postfix(d=f"{losses['d_loss'].nanmean():.3f}",
                                        g=f"{losses['g_loss'].nanmean():.3f}")
                bar.update(1)
                for hook in due:
                    hook.fn(self)
                yield
        finally:
            bar.close()

    def _reset_sums(self) -> None:
        """Zero the sums in place (a captured step adds to these very tensors)."""
        for key in ("d_loss", "g_loss"):
            if key not in self.loss_sums:
                self.loss_sums[key] = torch.zeros(self.members, dtype=torch.float64,
                                                  device=self.device)
            self.loss_sums[key].zero_()
        self.loss_sums["count"] = 0

    def pop_mean_losses(self) -> list[dict[str, float]]:
        """Each member's mean D/G losses since the last call (for logging), then reset."""
        count = max(self.loss_sums["count"], 1)
        d = (self.loss_sums["d_loss"] / count).tolist()
        g = (self.loss_sums["g_loss"] / count).tolist()
        self._reset_sums()
        return [{"d_loss": dk, "g_loss": gk} for dk, gk in zip(d, g, strict=True)]

    # --- checkpoint state -----------------------------------------------------------------

    def state_dict(self) -> dict:
        nets = {"generator": unwrapped(self.G).state_dict(),
                "discriminator": unwrapped(self.D).state_dict()}
        if self.ema is not None:
            nets["ema"] = self.ema.state_dict()
        return training_state(
            self.step, nets,
            {"generator": self.opt_g.state_dict(), "discriminator": self.opt_d.state_dict()},
            {"seeds": self.rng.seeds, "draws": self.draws},
            {"loss_sums": {k: v.cpu() if isinstance(v, Tensor) else v
                           for k, v in self.loss_sums.items()},
             "diverged_at": self.diverged_at.cpu()})

    def load_state_dict(self, state: dict) -> None:
        check_layout(state)
        if len(state["rng"]["seeds"]) != self.members:
            raise ValueError(f"checkpoint has {len(state['rng']['seeds'])} members, "
                             f"not {self.members}")
        nets, optimizers, progress = state["nets"], state["optimizers"], state["progress"]
        unwrapped(self.G).load_state_dict(nets["generator"])
        unwrapped(self.D).load_state_dict(nets["discriminator"])
        self.opt_g.load_state_dict(optimizers["generator"])
        self.opt_d.load_state_dict(optimizers["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(nets["ema"])
        self.draws = int(state["rng"]["draws"])
        self.step = int(state["step"])
        for key, value in progress["loss_sums"].items():
            if isinstance(value, Tensor):
                self.loss_sums[key].copy_(value)
            else:
                self.loss_sums[key] = value
        self.diverged_at.copy_(progress["diverged_at"])
        self.set_lr()  # a float, not capturable: as saved by a captured run, too
        if self.clock is not None:
            self.clock.attach(self)


def _outputs(out: Tensor, members: int, n: int) -> Tensor:
    """D's raw outputs as (members, n): one per sample, e.g. (P, n), (n,) or (n, 1)."""
    if out.numel() != members * n:
        raise ValueError(f"the discriminator must return one raw output per sample; got shape "
                         f"{tuple(out.shape)} for {n} samples")
    return out.reshape(members, n)
