"""One GAN training step, apart from the loop: `n_dis` discriminator updates, then one
generator update (and the generator EMA), for one GAN or a population of P.

`GANStep` holds the nets, their optimizers, the D-loss planner (`member_losses`) and the
EMA. A call takes the step's device state, the draw counter and the generator step (host
ints, or device tensors under capture; the learning rate is set with `set_lr`), and returns
the step's named stats, (P,) device tensors: the losses, D's mean output on the real, fake
and mixed rows it scored (the public loss's `d_real_mean`, `d_fake_mean`, `d_mixed_mean`),
and the gradient penalty when paid. It reads nothing back to the host. The loop
(`train.GANTrainer`) drives it; `captured_step` wraps it to record it as a CUDA graph.

A new stat: one more entry in the dict a D or G step returns; the stats channel (`stats`)
takes it to the rows, the summary and TensorBoard.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

from .ema import EMA
from .gan_config import GANTrainConfig, LossConfig
from .member_losses import BLOCK, DATA, LATENT, DiscriminatorPart, MemberLosses, per_member
from .rng import CounterRNG
from .runtime import make_adam, stream_seed, unwrapped
from .stats import Stat

# real_data(rng, counter, n) -> (P, n, ...): each member's real batch, drawn with counters
# counter .. counter + 3 of `rng` (see toy.data.MemberSampler, image.data.ImageBank.draw).
RealData = Callable[[CounterRNG, int, int], Tensor]


def _is_stacked(net: nn.Module) -> bool:
    return getattr(unwrapped(net), "members", None) is not None


class GANStep:
    """The D and G updates of P members; see `train.GANTrainer` for the arguments.

    Members' losses are summed (not averaged), so member k's gradients, Adam updates and
    random draws are those of a run of one with member k's seed and settings. Each D or G
    update uses one block of `BLOCK` counters of `rng`: a step uses `per_step`.
    Subclasses change a step by overriding `d_step` or `g_step`."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, real_data: RealData, *,
                 latent_dim: int, loss: LossConfig | Sequence[LossConfig],
                 train: GANTrainConfig, seeds: Sequence[int], device: torch.device,
                 autocast: Callable[[], AbstractContextManager] = nullcontext,
                 ema_decay: float | None = None) -> None:
        self.device, self.autocast = device, autocast  # autocast: forward passes only
        self.G, self.D = generator.to(device), discriminator.to(device)
        self.members = len(seeds)
        self.stacked = _is_stacked(self.G)
        if self.stacked != _is_stacked(self.D):
            raise ValueError("generator and discriminator must both be stacked, or neither")
        net_members = unwrapped(self.G).members if self.stacked else 1
        if net_members != self.members:
            raise ValueError(f"{len(seeds)} seeds for networks of {net_members} member(s)")
        self.real_data = real_data
        self.losses = MemberLosses(per_member(loss, self.members, "loss"), device,
                                   last_step=train.steps)
        self.latent_dim, self.cfg, self.n_dis = latent_dim, train, train.n_dis
        self.rng = CounterRNG([stream_seed(s, "train") for s in seeds], device, stride=BLOCK)
        self.per_step = (train.n_dis + 1) * BLOCK  # counters of `rng` one step uses
        self.opt_g = make_adam(self.G.parameters(), train.lr, train.betas)
        self.opt_d = make_adam(self.D.parameters(), train.lr * train.d_lr_ratio, train.betas)
        decay = train.ema if ema_decay is None else ema_decay
        self.ema = EMA(self.G, decay, train.ema_start) if decay else None  # evaluated, drawn
        if self.ema is not None and train.ema_start >= train.steps:  # not an error: a run
            warnings.warn(  # extended in sittings (train.steps raised) gets its EMA later
                f"train.ema_start {train.ema_start} >= train.steps {train.steps}: the EMA "
                "never starts, so what is evaluated and drawn is G itself", stacklevel=2)
        self.penalized = self.losses.planner.gradient_penalty > 0  # members paying it
        self.mix_layer = _mix_layer(per_member(loss, self.members, "loss"), self.D,
                                    self.stacked)

    def __call__(self, draws: int | Tensor, step: int,
                 at: Tensor | None = None) -> dict[str, Stat]:
        """Generator step `step` + 1 from draw counter `draws`: the stats of its last D
        update and of its G update. `at` is the step as a device tensor (schedules are read
        there under capture); `step` decides on the host which parts D scores."""
        stats: dict[str, Stat] = {}
        for i in range(self.n_dis):
            stats.update(self.d_step(draws + i * BLOCK, step, at, report=i == self.n_dis - 1))
        stats.update(self.g_step(draws + self.n_dis * BLOCK))
        if self.ema is not None:
            self.ema.update(self.G, step if at is None else at)
        return stats

    def structure(self, step: int) -> object:
        """What decides the shapes of step `step` + 1 (a captured step is recorded per value)."""
        return self.losses.structure(step)

    # --- the updates ------------------------------------------------------------------------

    def apply(self, net: nn.Module, x: Tensor) -> Tensor:
        """Run a net on stacked input (P, N, ...) -> (P, N, ...), stacked or not."""
        return net(x) if self.stacked else net(x[0]).unsqueeze(0)

    def latents(self, counter: int | Tensor) -> Tensor:
        return self.rng.normal(counter + LATENT, self.cfg.batch_size, self.latent_dim)

    def discriminate(self, parts: list[DiscriminatorPart]) -> list[Tensor]:
        """D's raw outputs (P, R) on every part, in one call when stacked."""
        sizes = [part.inputs.shape[1] for part in parts]
        if self.mix_layer:  # the parts are D's features: the rest of D scores them
            out = unwrapped(self.D).head(torch.cat([part.inputs for part in parts], 1),
                                         self.mix_layer)
        elif self.stacked:
            out = self.D(torch.cat([part.inputs for part in parts], 1))
        elif len(parts) > 1 and unwrapped(self.D) is self.D:
            # separate calls keep BatchNorm statistics per part
            return [_outputs(self.D(part.inputs[0]), 1, n)
                    for part, n in zip(parts, sizes, strict=True)]
        else:  # DistributedDataParallel allows one forward per backward: one call
            out = self.D(torch.cat([part.inputs[0] for part in parts]))
        return list(_outputs(out, self.members, sum(sizes)).split(sizes, 1))

    def d_step(self, counter: int | Tensor, step: int, at: Tensor | None = None, *,
               report: bool = True) -> dict[str, Stat]:
        """One discriminator update from the counter block `counter`; returns `d_loss` (P,)
        and, with `report`, D's diagnostics."""
        real = self.real_data(self.rng, counter + DATA, self.cfg.batch_size)
        with torch.no_grad(), self.autocast():
            fake = self.apply(unwrapped(self.G), self.latents(counter))
        fake = fake.to(real.dtype)
        if self.mix_layer:  # mixed in feature space: D's first layers see real and fake
            with self.autocast():
                both = unwrapped(self.D).features(torch.cat([real, fake], 1), self.mix_layer)
            real, fake = both.split([real.shape[1], fake.shape[1]], 1)
        parts = self.losses.parts(self.rng, counter, real, fake, step, at)
        if self.losses.penalized:
            self.losses.requires_inputs_grad(parts, features=bool(self.mix_layer))
        with self.autocast():
            outputs = self.discriminate(parts)
        losses = self.losses.d_loss(parts, outputs)
        objective, stats = losses, {"d_loss": losses.detach()}
        if self.losses.penalized:
            penalty = self.losses.penalty(parts, outputs, step, at)
            objective = losses + penalty
            if report:
                stats["penalty"] = (penalty.detach(), self.penalized)
        if report:
            stats.update(d_outputs(parts, outputs))
        self.opt_d.zero_grad(set_to_none=True)
        objective.sum().backward()
        self.opt_d.step()
        return stats

    def g_step(self, counter: int | Tensor) -> dict[str, Stat]:
        """One generator update from the counter block `counter`; returns `g_loss` (P,)."""
        z = self.latents(counter)
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
        return {"g_loss": losses.detach()}

    # --- optimizer state --------------------------------------------------------------------

    def set_lr(self, lr: float | Tensor, d_lr: float | Tensor, *,
               capturable: bool = False) -> None:
        """Adam's lr for G and D: floats, or tensors a captured step updates in place."""
        for opt, value in ((self.opt_d, d_lr), (self.opt_g, lr)):
            for group in opt.param_groups:
                group["lr"], group["capturable"] = value, capturable

    def zero_grad(self) -> None:
        """Drop the gradients (before recording: they then live in the graph's memory)."""
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)

    def sampler(self) -> nn.Module:
        """The generator to evaluate and draw: the EMA weights when averaged, else G."""
        return self.ema.module if self.ema is not None else unwrapped(self.G)


def _mix_layer(losses: Sequence[LossConfig], discriminator: nn.Module, stacked: bool) -> int:
    """The members' shared `loss.mix_layer`, checked against D (0: D's inputs are mixed)."""
    layers = {c.mix_layer for c in losses}
    if len(layers) > 1:
        raise ValueError(f"members of one population must share loss.mix_layer, got "
                         f"{sorted(layers)}")
    layer = layers.pop()
    if layer and not (stacked and hasattr(unwrapped(discriminator), "features")):
        raise ValueError(f"loss.mix_layer {layer} mixes D's hidden features: it needs a D "
                         "with features(x, k) and head(h, k), as the toy MLP has")
    return layer


def d_outputs(parts: Sequence[DiscriminatorPart], outputs: Sequence[Tensor]) -> dict[str, Stat]:
    """D's mean raw output per member on the real, fake and mixed rows of a D step, each
    counted for the members scored on those rows (weight > 0) at this step."""
    stats: dict[str, Stat] = {}
    for part, output in zip(parts, outputs, strict=True):
        name = part.target if isinstance(part.target, str) else "mixed"
        mean = output.detach().float().mean(1)
        counted = part.weight > 0 if isinstance(part.weight, Tensor) else None
        key = f"d_{name}_mean"
        if key in stats and counted is not None:  # a population with both pairings
            other, other_counted = stats[key]
            mean, counted = torch.where(counted, mean, other), counted | other_counted
        stats[key] = mean if counted is None else (mean, counted)
    return stats


def _outputs(out: Tensor, members: int, n: int) -> Tensor:
    """D's raw outputs as (members, n): one per sample, e.g. (P, n), (n,) or (n, 1)."""
    if out.numel() != members * n:
        raise ValueError(f"the discriminator must return one raw output per sample; got shape "
                         f"{tuple(out.shape)} for {n} samples")
    return out.reshape(members, n)
