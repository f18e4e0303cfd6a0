"""The one GAN training loop: `n_dis` discriminator steps, then one generator step.

Single runs and populations of P runs (sweeps) share it; toy and image runs differ only in
data, nets and hooks. All randomness of training (real batches, latents, mixup lam) comes from
one `torch.Generator` per member whose state is checkpointed, so a resumed run continues
exactly where it stopped. Hooks (metrics, pictures, checkpoints) use their own fixed noise and
never draw from those generators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .config import LossConfig, TrainConfig
from .losses import (
    DEFAULT_GENERATOR_LOSS,
    DiscriminatorBatch,
    check_options,
    discriminator_batch,
    generator_loss,
    get_terms,
    score_parts,
)

RealBatches = Callable[[int, torch.Generator], Tensor]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the message names the step."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device is {name!r} but CUDA is not available on this machine")
    return device


def bf16_autocast(device: torch.device, enabled: bool) -> Callable[[], AbstractContextManager]:
    """A factory of forward-pass contexts: bfloat16 autocast on CUDA when enabled, else none.

    bfloat16 keeps float32's range, so no gradient scaler is needed.
    """
    if enabled and torch.device(device).type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext


def make_adam(params: Iterable[nn.Parameter], train: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel where this device supports it (about 2x faster on CPU)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=train.lr, betas=train.betas, fused=True)
    except RuntimeError:
        return torch.optim.Adam(params, lr=train.lr, betas=train.betas)


@dataclass
class Hook:
    """Call `fn(trainer)` after every `every`-th generator step, at the steps in `at`, and
    (when `final`) after the last step."""

    fn: Callable[[GANTrainer], None]
    every: int | None = None
    at: Iterable[int] = ()
    final: bool = True
    _at: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._at = frozenset(self.at)

    def due(self, step: int, last: int) -> bool:
        return (
            (self.every is not None and step % self.every == 0)
            or step in self._at
            or (self.final and step == last)
        )


# A run's random streams: training draws, the (generator's or classifier's) initial weights,
# the discriminator's initial weights, the fixed evaluation noise.
STREAMS = {"train": 0, "init": 1, "discriminator_init": 2, "eval": 3}


def stream_seed(seed: int, stream: str) -> int:
    """Independent seeds for a run's random streams."""
    return seed * 16 + STREAMS[stream]


def eval_noise(n: int, latent_dim: int, seed: int) -> Tensor:
    """The fixed latent points a run is evaluated and drawn on (its own random stream)."""
    generator = torch.Generator().manual_seed(stream_seed(seed, "eval"))
    return torch.randn(n, latent_dim, generator=generator)


def _unwrapped(net: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the net itself otherwise)."""
    return getattr(net, "module", net)


def _is_stacked(net: nn.Module) -> bool:
    return getattr(_unwrapped(net), "members", None) is not None


class GANTrainer:
    """Trains one GAN, or a population of P independent GANs, with the mixup D loss.

    Args:
        generator: latent -> samples. Either an ordinary net, (N, latent_dim) -> (N, ...), for
            a single run, or a stacked net with attribute `members` = P taking (P, N, ...).
        discriminator: samples -> raw outputs, (N,) / (N, 1), or (P, N) when stacked.
        real_batches: `real_batches(n, rng)` returns n real samples; one callable for all
            members or one per member.
        latent_dim: size of the generator's input.
        loss: the `loss` config section, shared or one per member.
        train: the `train` config section (shared: batch size, n_dis, Adam settings).
        seeds: one training seed per member (default `[train.seed]`).

    Each member draws its real batches, latents and mixing from its own generator, and its
    loss is summed (not averaged) with the others', so member k's gradients, Adam updates
    and random draws are those of a run of one with member k's seed and settings.
    Subclasses change a step by overriding `d_step`, `g_step` or `train_step`.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        real_batches: RealBatches | Sequence[RealBatches],
        *,
        latent_dim: int,
        loss: LossConfig | Sequence[LossConfig],
        train: TrainConfig,
        seeds: Sequence[int] | None = None,
        device: torch.device | str = "cpu",
        autocast: Callable[[], AbstractContextManager] = nullcontext,
    ) -> None:
        self.device = torch.device(device)
        self.autocast = autocast  # e.g. bfloat16 autocast on CUDA; forward passes only
        self.G, self.D = generator.to(self.device), discriminator.to(self.device)
        self.seeds = list(seeds) if seeds is not None else [train.seed]
        self.members = len(self.seeds)
        self.stacked = _is_stacked(self.G)
        if self.stacked != _is_stacked(self.D):
            raise ValueError("generator and discriminator must both be stacked, or neither")
        net_members = _unwrapped(self.G).members if self.stacked else 1
        if net_members != self.members:
            raise ValueError(f"{len(self.seeds)} seeds for networks of {net_members} member(s)")
        self.real_batches = _per_member(real_batches, self.members, "real_batches")
        losses = _per_member(loss, self.members, "loss")
        self.latent_dim, self.cfg = latent_dim, train
        self.rngs = [torch.Generator().manual_seed(stream_seed(s, "train")) for s in self.seeds]
        self.opt_g = make_adam(self.G.parameters(), train)
        self.opt_d = make_adam(self.D.parameters(), train)
        self.terms = [get_terms(c.name) for c in losses]
        self.loss_options = [
            dict(alpha=check_options(c.alpha, c.distribution, c.pairing, c.mix_prob,
                                     c.erm_weight),
                 distribution=c.distribution, per_sample=c.per_sample, pairing=c.pairing,
                 mix_prob=c.mix_prob, erm_weight=c.erm_weight)
            for c in losses
        ]
        self.g_loss_kinds = [c.generator_loss or DEFAULT_GENERATOR_LOSS[c.name] for c in losses]
        self.step = 0  # generator iterations done
        self.diverged: dict[int, int] = {}  # member -> step at which its losses went non-finite
        self._reset_sums()

    # --- stacking -------------------------------------------------------------------------

    def apply(self, net: nn.Module, x: Tensor) -> Tensor:
        """Run a net on stacked input (P, N, ...) -> (P, N, ...), stacked or not."""
        return net(x) if self.stacked else net(x[0]).unsqueeze(0)

    def latents(self) -> Tensor:
        n = self.cfg.batch_size
        return torch.stack(
            [torch.randn(n, self.latent_dim, generator=g) for g in self.rngs]
        ).to(self.device)

    def discriminate(self, batches: list[DiscriminatorBatch]) -> list[list[Tensor]]:
        """D's outputs for every part of every member's batch, in one call when stacked."""
        if not self.stacked:
            (batch,) = batches
            if len(batch.parts) > 1 and _unwrapped(self.D) is not self.D:
                # DistributedDataParallel allows one forward per backward: one call for all
                # parts (BatchNorm then normalises real and fake together).
                sizes = [len(inputs) for inputs, _, _ in batch.parts]
                out = self.D(torch.cat([inputs for inputs, _, _ in batch.parts]))
                return [list(out.split(sizes))]
            # separate calls keep BatchNorm statistics per part
            return [[self.D(inputs) for inputs, _, _ in batch.parts]]
        rows = [torch.cat([inputs for inputs, _, _ in b.parts]) for b in batches]
        sizes = [len(r) for r in rows]
        longest = max(sizes)
        if min(sizes) != longest:  # members see different counts: pad, then ignore the pad
            rows = [torch.cat([r, r.new_zeros(longest - len(r), *r.shape[1:])]) for r in rows]
        out = self.D(torch.stack(rows))
        return [
            list(out[k, : sizes[k]].split([len(inputs) for inputs, _, _ in b.parts]))
            for k, b in enumerate(batches)
        ]

    # --- one iteration ------------------------------------------------------------------

    def d_step(self) -> Tensor:
        """One discriminator update; returns the members' losses, shape (P,)."""
        n = self.cfg.batch_size
        reals = [sample(n, g).to(self.device) for sample, g in zip(self.real_batches, self.rngs,
                                                                    strict=True)]
        with torch.no_grad(), self.autocast():
            fakes = self.apply(_unwrapped(self.G), self.latents()).unbind(0)
        batches = [
            discriminator_batch(real, fake.to(real.dtype), generator=g, **options)
            for real, fake, g, options in zip(reals, fakes, self.rngs, self.loss_options,
                                              strict=True)
        ]
        with self.autocast():
            outputs = self.discriminate(batches)
            losses = torch.stack([score_parts(t, b, o).float() for t, b, o in
                                  zip(self.terms, batches, outputs, strict=True)])
        self.opt_d.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt_d.step()
        return losses.detach()

    def g_step(self) -> Tensor:
        """One generator update; returns the members' losses, shape (P,)."""
        z = self.latents()
        # D's weights need no gradient here: skipping them saves a third of D's backward.
        self.D.requires_grad_(False)
        try:
            with self.autocast():  # D is only differentiated through: no gradient sync
                out = self.apply(_unwrapped(self.D), self.apply(self.G, z)).float()
        finally:
            self.D.requires_grad_(True)
        losses = torch.stack([generator_loss(out[k], kind)
                              for k, kind in enumerate(self.g_loss_kinds)])
        self.opt_g.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt_g.step()
        return losses.detach()

    def train_step(self) -> dict[str, Tensor]:
        """`n_dis` D steps then one G step; returns the last D losses and the G losses (P,)."""
        for _ in range(self.cfg.n_dis):
            d_loss = self.d_step()
        return {"d_loss": d_loss, "g_loss": self.g_step()}

    def _check_finite(self, losses: dict[str, Tensor]) -> None:
        bad = ~(torch.isfinite(losses["d_loss"]) & torch.isfinite(losses["g_loss"]))
        for k in bad.nonzero().flatten().tolist():
            self.diverged.setdefault(k, self.step)
        # Members are independent (their weights and Adam states never mix), so a population
        # goes on while any member is healthy; a run of one stops here.
        if len(self.diverged) == self.members:
            d, g = losses["d_loss"].tolist(), losses["g_loss"].tolist()
            which = "" if self.members == 1 else "every member: "
            raise TrainingDiverged(
                f"training diverged at generator step {self.step}: {which}"
                f"D loss {d if self.members > 1 else d[0]}, "
                f"G loss {g if self.members > 1 else g[0]}"
            )

    # --- the loop -----------------------------------------------------------------------

    def fit(self, steps: int, hooks: Iterable[Hook] = (), *, progress: bool = True) -> None:
        """Train until `steps` generator iterations are done, calling hooks when due."""
        hooks = list(hooks)
        bar = tqdm(total=steps, initial=self.step, disable=not progress, desc="train",
                   dynamic_ncols=True)
        try:
            while self.step < steps:
                losses = self.train_step()
                self.step += 1
                self._check_finite(losses)
                for key, value in losses.items():
                    self.loss_sums[key] += value.double().cpu()
                self.loss_sums["count"] += 1
                if self.step % 10 == 0 or self.step == steps:
                    bar.set_postfix(d=f"{losses['d_loss'].nanmean():.3f}",
                                    g=f"{losses['g_loss'].nanmean():.3f}")
                bar.update(1)
                for hook in hooks:
                    if hook.due(self.step, steps):
                        hook.fn(self)
        finally:
            bar.close()

    def _reset_sums(self) -> None:
        zeros = torch.zeros(self.members, dtype=torch.float64)
        self.loss_sums = {"d_loss": zeros.clone(), "g_loss": zeros.clone(), "count": 0}

    def pop_mean_losses(self) -> list[dict[str, float]]:
        """Each member's mean D/G losses since the last call (for logging), then reset."""
        count = max(self.loss_sums["count"], 1)
        d = (self.loss_sums["d_loss"] / count).tolist()
        g = (self.loss_sums["g_loss"] / count).tolist()
        self._reset_sums()
        return [{"d_loss": dk, "g_loss": gk} for dk, gk in zip(d, g, strict=True)]

    # --- checkpoint state -----------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "generator": _unwrapped(self.G).state_dict(),
            "discriminator": _unwrapped(self.D).state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rngs": [g.get_state() for g in self.rngs],
            "loss_sums": dict(self.loss_sums),
            "diverged": [[k, s] for k, s in self.diverged.items()],
        }

    def load_state_dict(self, state: dict) -> None:
        _unwrapped(self.G).load_state_dict(state["generator"])
        _unwrapped(self.D).load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if len(state["rngs"]) != self.members:
            raise ValueError(f"checkpoint has {len(state['rngs'])} members, not {self.members}")
        for g, rng_state in zip(self.rngs, state["rngs"], strict=True):
            g.set_state(rng_state)
        self.step = int(state["step"])
        self.loss_sums = dict(state["loss_sums"])
        self.diverged = {int(k): int(s) for k, s in state["diverged"]}


def _per_member(value, members: int, name: str) -> list:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != members:
            raise ValueError(f"{name}: {len(value)} values for {members} members")
        return list(value)
    return [value] * members
