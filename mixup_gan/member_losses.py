"""The one D-loss planner, over (members, batch), and the D and G losses of P members.

`DiscriminatorPlanner` decides, for P members whose mixup options are tensors, which parts D
scores in one step: `real-fake` mixed rows (N), `pool` mixed rows (2N), and the plain real and
fake rows (N each), with each member's weight on each part and the parts' targets, from the
step's drawn tensors (lam, permutations, the `mix_prob` coin). Member k's loss is
`sum_part weight[part, k] * mean(term)` with 0/1 (or `erm_weight`) weights, so a member pays
exactly the loss a run of one with its options pays:

- mixup on (alpha > 0 and the step's `mix_prob` coin): weight 1 on its pairing's mixed part,
  `erm_weight` on the real and fake parts;
- otherwise (alpha = 0, or the coin said no): weight 1 on the real and fake parts.

The draws come from a `Draws` source: the engine's counter-based streams (`CounterDraws`,
drawn for all members at once on the device), or, for the public one-batch loss (P = 1),
a `torch.Generator` (`losses.GeneratorDraws`). Which parts exist is decided on the host from
the population's options and, for schedules (alpha annealed to 0, `mix_prob` over training),
from the step alone, so a step is the same handful of tensor ops whatever P is, with no host
sync; a Generator-backed coin is decided on the host, as a one-batch loss does. All losses
are computed in float32 from D's outputs, whatever precision D ran in. An optional
zero-centred gradient penalty is paid on the rows each member is scored on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from .mixup_options import MixupOptions
from .rng import CounterRNG
from .schedule import MemberSchedules, Schedule
from .terms import (
    DEFAULT_GENERATOR_LOSS,
    GENERATOR_LOSSES,
    TermPair,
    get_terms,
    loss_dtype,
    mixed_term,
    per_sample,
)

# Each D or G step owns a block of BLOCK counters; their use within the block is fixed, so
# member k draws the same numbers whatever options the rest of its population has.
DATA, LATENT, LAM_REAL_FAKE, LAM_POOL, PERMUTATION, COIN = 0, 4, 5, 7, 9, 10  # DATA: 0-3
BLOCK = 16


@dataclass
class DiscriminatorPart:
    """Rows D scores in one step: inputs (P, R, ...), their target (P, R) or the plain term
    ('real' / 'fake'), each member's weight (P,), and the lam (P, R) of mixed rows."""

    inputs: Tensor
    target: Tensor | str
    weight: Tensor | float
    lam: Tensor | None = None


class Draws(Protocol):
    """The random numbers of one D step, for P members."""

    def coin(self, mix_prob: Tensor) -> Tensor | bool:
        """Whether each member mixes this step, (P,) bool; or one host-side bool (P = 1)."""

    def lam(self, slot: int, n: int, alpha: Tensor) -> Tensor:
        """Each member's lam (P, n) for the part of `slot` (LAM_REAL_FAKE or LAM_POOL)."""

    def permutations(self, n: int) -> Tensor:
        """Two permutations of range(n) per member, (P, 2, n)."""


def _groups(keys: Sequence, device: torch.device) -> list[tuple[object, Tensor | None]]:
    """Members grouped by key: (key, index tensor), or (key, None) when all share it."""
    order: dict[object, list[int]] = {}
    for k, key in enumerate(keys):
        order.setdefault(key, []).append(k)
    if len(order) == 1:
        return [(keys[0], None)]
    return [(key, torch.tensor(ix, device=device)) for key, ix in order.items()]


def _by_group(groups, fn: Callable[..., Tensor], *xs: Tensor) -> Tensor:
    """`fn(key, *rows)` on each group's members' rows of the tensors `xs` (P, ...)."""
    if groups[0][1] is None:
        return fn(groups[0][0], *xs)
    out = torch.empty_like(xs[0])
    for key, index in groups:
        out[index] = fn(key, *(x[index] for x in xs))
    return out


def _term(which: str) -> Callable[[TermPair, Tensor], Tensor]:
    return lambda terms, o: per_sample(terms, which, o)


class DiscriminatorPlanner:
    """Which parts D scores for P members, their weights and targets, and their loss.

    options: each member's `MixupOptions` (a `LossConfig` is one); terms: each member's
    `TermPair`; gradient_penalty: each member's weight g (default 0); alpha_schedules /
    mix_prob_schedules / gradient_penalty_schedules: each member's `Schedule` (default
    constant) over `last_step` generator steps."""

    def __init__(self, options: Sequence[MixupOptions], terms: Sequence[TermPair],
                 device: torch.device, *, gradient_penalty: Sequence[float] | None = None,
                 alpha_schedules: Sequence[Schedule] | None = None,
                 mix_prob_schedules: Sequence[Schedule] | None = None,
                 gradient_penalty_schedules: Sequence[Schedule] | None = None,
                 last_step: int = 1) -> None:
        self.device = device
        P = self.members = len(options)
        constant = [Schedule()] * P

        def tensor(values, dtype=torch.float32) -> Tensor:
            return torch.tensor(values, dtype=dtype, device=device)

        alphas = [c.alpha for c in options]
        self.terms = _groups(list(terms), device)
        self.alpha = tensor(alphas)
        mixing = [a > 0 for a in alphas]
        beta = [m and c.distribution == "beta" for m, c in zip(mixing, options, strict=True)]
        self.any_beta, self.all_beta = any(beta), all(beta)
        self.beta = tensor(beta, torch.bool).unsqueeze(1)
        self.beta_alpha = self.alpha.clamp(min=1e-3)  # members with alpha 0 never use theirs
        self.per_batch = tensor([not c.per_sample for c in options], torch.bool).unsqueeze(1)
        self.any_per_batch = any(not c.per_sample for c in options)
        self.alpha_schedule = MemberSchedules(alpha_schedules or constant, last_step, device)
        mix_prob_schedules = mix_prob_schedules or constant
        self.mix_prob_schedule = MemberSchedules(mix_prob_schedules, last_step, device)
        self.coins = any(m and (c.mix_prob < 1 or not s.constant)
                         for m, c, s in zip(mixing, options, mix_prob_schedules, strict=True))
        self.mix_prob = tensor([c.mix_prob for c in options])
        self.erm_weight = tensor([c.erm_weight for c in options])
        self.any_erm = any(c.erm_weight > 0 for c in options)
        pool = [m and c.pairing == "pool" for m, c in zip(mixing, options, strict=True)]
        real_fake = [m and not p for m, p in zip(mixing, pool, strict=True)]
        self.pool, self.real_fake = tensor(pool), tensor(real_fake)
        self.mixing = tensor(mixing)
        self.has_pool, self.has_real_fake = any(pool), any(real_fake)
        self.all_mixing = all(mixing)
        # alpha annealed to 0 needs the plain rows only from the step it reaches 0 (any_zero)
        self.has_plain = not all(mixing) or self.coins or self.any_erm
        penalties = list(gradient_penalty or [0.0] * P)
        self.gradient_penalty = tensor(penalties)
        self.penalized = any(g > 0 for g in penalties)
        self.gradient_penalty_schedule = MemberSchedules(gradient_penalty_schedules or constant,
                                                         last_step, device)

    def key(self) -> tuple:
        """What decides the cost of a step: the parts D scores from the first step (mixed
        real-fake, mixed pool, plain rows) and whether the step pays for a double backward.
        Sweeps group members into populations by it. An alpha schedule reaching 0 adds the
        plain rows only late in a run, so it does not split a population."""
        return self.has_real_fake, self.has_pool, self.has_plain, self.penalized

    def structure(self, step: int) -> bool:
        """What decides the parts' shapes at generator step `step`: whether D scores the plain
        real and fake rows (a schedule that reaches alpha 0 adds them from then on)."""
        return self.has_plain or (not self.alpha_schedule.constant
                                  and self.alpha_schedule.any_zero(step))

    def lam(self, rng: CounterRNG, counter: int | Tensor, n: int, alpha: Tensor) -> Tensor:
        """Each member's lam from counter streams, shape (P, n): its distribution, per sample
        or per batch. Uses counters `counter` and `counter + 1`."""
        if self.any_beta:
            # alpha 0 (a member that does not mix now) draws with a stand-in it never uses;
            # the constant alphas keep one tensor, so their draws are made ahead
            valid = self.beta_alpha if alpha is self.alpha else alpha.clamp(min=1e-3)
            lam = rng.beta(counter + 1, valid, n)
            if not self.all_beta:
                uniform = rng.uniform(counter, n) * alpha.unsqueeze(1)  # Uniform(0, alpha)
                lam = torch.where(self.beta, lam, uniform)
        else:
            lam = rng.uniform(counter, n) * alpha.unsqueeze(1)
        return torch.where(self.per_batch, lam[:, :1], lam) if self.any_per_batch else lam

    def parts(self, draws: Draws, real: Tensor, fake: Tensor, step: int = 0,
              clock: Tensor | None = None) -> list[DiscriminatorPart]:
        """What D scores at generator step `step`, for real and fake batches (P, N, ...),
        with this step's `draws`: D's inputs, or its features of them under
        `loss.mix_layer`, so the caller detaches G's fakes. Schedules are read at `clock`,
        the step as a device tensor, when given."""
        P, n = real.shape[:2]
        at = step if clock is None else clock
        alpha, mixed = self.alpha, self.mixing
        if not self.alpha_schedule.constant:
            alpha = self.alpha * self.alpha_schedule.at(at)
            mixed = self.mixing * (alpha > 0)
        coin: Tensor | bool = True
        if self.coins:
            mix_prob = self.mix_prob
            if not self.mix_prob_schedule.constant:
                mix_prob = mix_prob * self.mix_prob_schedule.at(at)
            coin = draws.coin(mix_prob)
            if isinstance(coin, Tensor):
                mixed = mixed * coin
            elif not coin:  # decided on the host (one member): no mixed rows this step
                mixed = torch.zeros_like(mixed)
        parts = []
        if self.has_real_fake and coin is not False:
            lam = draws.lam(LAM_REAL_FAKE, n, alpha)
            parts.append(DiscriminatorPart(_blend(real, fake, lam), lam, mixed * self.real_fake,
                                            lam))
        if self.has_pool and coin is not False:
            pool = torch.cat([real, fake], 1)
            labels = torch.cat([real.new_ones(P, n), real.new_zeros(P, n)], 1)
            order = draws.permutations(2 * n)
            first, second = order[:, 0], order[:, 1]
            lam = draws.lam(LAM_POOL, 2 * n, alpha)
            parts.append(DiscriminatorPart(
                _blend(_take(pool, first), _take(pool, second), lam),
                torch.lerp(labels.gather(1, second), labels.gather(1, first), lam),
                mixed * self.pool, lam))
        plain = self.structure(step)
        if coin is True and self.coins and self.all_mixing and not self.any_erm:
            plain = False  # a host coin said "mix": the plain rows would all weigh 0
        if plain:
            weight = torch.where(mixed > 0, self.erm_weight, 1.0)
            parts += [DiscriminatorPart(real, "real", weight),
                      DiscriminatorPart(fake, "fake", weight)]
        return parts

    def d_loss(self, parts: Sequence[DiscriminatorPart], outputs: Sequence[Tensor]) -> Tensor:
        """Each member's D loss (P,) from D's raw outputs (P, R) on each part's inputs."""
        total = None
        for part, output in zip(parts, outputs, strict=True):
            o = loss_dtype(output.reshape(part.inputs.shape[:2]))
            if isinstance(part.target, Tensor):
                value = _by_group(self.terms, mixed_term, o, part.target)
            else:
                value = _by_group(self.terms, _term(part.target), o)
            value = value.mean(1) * part.weight
            total = value if total is None else total + value
        return total

    def penalty(self, parts: Sequence[DiscriminatorPart], outputs: Sequence[Tensor],
                step: int = 0, clock: Tensor | None = None) -> Tensor:
        """Each member's zero-centred gradient penalty (P,): `g/2 * sum_part weight *
        mean_rows |grad_x D(x)|^2` on the points it was scored on, g times its schedule's
        multiplier at generator step `step` (read at `clock`, as in `parts`). The parts'
        inputs must require gradients (see `requires_inputs_grad`)."""
        grads = torch.autograd.grad(sum(loss_dtype(o).sum() for o in outputs),
                                    [part.inputs for part in parts], create_graph=True)
        total = None
        for part, grad in zip(parts, grads, strict=True):
            value = grad.float().square().flatten(2).sum(2).mean(1) * part.weight
            total = value if total is None else total + value
        weight = self.gradient_penalty
        if not self.gradient_penalty_schedule.constant:
            weight = weight * self.gradient_penalty_schedule.at(step if clock is None else clock)
        return 0.5 * weight * total

    def requires_inputs_grad(self, parts: Sequence[DiscriminatorPart], *,
                             features: bool = False) -> None:
        """Give each part's inputs their own node for the penalty to differentiate D at:
        a leaf for inputs; for D's features (`loss.mix_layer`), which keep their graph back
        to D's first layers, a view, so the plain real rows are not also reached through
        the mixed rows made from them."""
        for part in parts:
            part.inputs = (part.inputs.view_as(part.inputs) if features
                           else part.inputs.detach().requires_grad_(True))


class CounterDraws:
    """A step's draws from the engine's counter streams: the block starting at `counter`."""

    def __init__(self, planner: DiscriminatorPlanner, rng: CounterRNG,
                 counter: int | Tensor) -> None:
        self.planner, self.rng, self.counter = planner, rng, counter

    def coin(self, mix_prob: Tensor) -> Tensor:
        return self.rng.uniform(self.counter + COIN, 1)[:, 0] < mix_prob

    def lam(self, slot: int, n: int, alpha: Tensor) -> Tensor:
        return self.planner.lam(self.rng, self.counter + slot, n, alpha)

    def permutations(self, n: int) -> Tensor:
        return self.rng.permutations(self.counter + PERMUTATION, n, 2)


def member_planner(losses: Sequence, device: torch.device,
                   last_step: int = 1) -> DiscriminatorPlanner:
    """The planner of P members from their `loss` config sections (`LossConfig`)."""
    for c in losses:  # the checks of MixupOptions, once per member
        MixupOptions.create(**c.options())
    return DiscriminatorPlanner(
        losses, [get_terms(c.name) for c in losses], device,
        gradient_penalty=[c.gradient_penalty for c in losses],
        alpha_schedules=[c.alpha_schedule for c in losses],
        mix_prob_schedules=[c.mix_prob_schedule for c in losses],
        gradient_penalty_schedules=[c.gradient_penalty_schedule for c in losses],
        last_step=last_step)


def per_member(value, members: int, name: str) -> list:
    """`value` for each of `members` members: one value shared, or a sequence of one per
    member (its length checked; `name` says what it is)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != members:
            raise ValueError(f"{name}: {len(value)} values for {members} members")
        return list(value)
    return [value] * members


class MemberLosses:
    """The mixup D loss and the G loss of P members, from their `loss` config sections.

    `last_step` is the run's last generator step, where open-ended schedules end."""

    def __init__(self, losses: Sequence, device: torch.device, last_step: int = 1) -> None:
        self.device = device
        self.members = len(losses)
        self.planner = member_planner(losses, device, last_step)
        self.g_terms = _groups([c.generator_loss or DEFAULT_GENERATOR_LOSS[c.name]
                                for c in losses], device)
        self.penalized = self.planner.penalized
        self.structure = self.planner.structure
        self.d_loss = self.planner.d_loss
        self.penalty = self.planner.penalty
        self.requires_inputs_grad = self.planner.requires_inputs_grad

    def parts(self, rng: CounterRNG, counter: int | Tensor, real: Tensor, fake: Tensor,
              step: int = 0, clock: Tensor | None = None) -> list[DiscriminatorPart]:
        """What D scores at generator step `step` (see `DiscriminatorPlanner.parts`);
        `counter` starts this step's block of draws (lam, permutations, coin)."""
        return self.planner.parts(CounterDraws(self.planner, rng, counter), real, fake,
                                  step, clock)

    def g_loss(self, output: Tensor) -> Tensor:
        """Each member's generator loss (P,) from D's outputs on its fakes (P, N)."""
        o = loss_dtype(output)
        return _by_group(self.g_terms, lambda kind, x: GENERATOR_LOSSES[kind](x), o).mean(1)


def _blend(a: Tensor, b: Tensor, lam: Tensor) -> Tensor:
    """`lam * a + (1 - lam) * b` for stacked batches (P, N, ...) and lam (P, N)."""
    return torch.lerp(b, a, lam.reshape(*lam.shape, *([1] * (a.dim() - 2))).to(a.dtype))


def _take(x: Tensor, index: Tensor) -> Tensor:
    """Rows `index` (P, M) of each member's batch x (P, N, ...)."""
    return x.gather(1, index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(
        *index.shape, *x.shape[2:]))
