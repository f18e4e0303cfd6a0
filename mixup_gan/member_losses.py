"""The D and G losses of P population members at once: each member's options are tensors.

One D step forms, for every member, the parts that any member of the population needs:
`real-fake` mixed rows (N), `pool` mixed rows (2N), and the plain real and fake rows (N
each). Member k's loss is `sum_part weight[part, k] * mean(term)` with 0/1 (or `erm_weight`)
weights, so a member pays exactly the loss a run of one with its options pays:

- mixup on (alpha > 0 and the step's `mix_prob` coin): weight 1 on its pairing's mixed part,
  `erm_weight` on the real and fake parts;
- otherwise (alpha = 0, or the coin said no): weight 1 on the real and fake parts.

Which parts exist is decided on the host from the population's options and, for schedules
(alpha annealed to 0, `mix_prob` over training), from the step alone, so a step is the same
handful of tensor ops whatever P is, with no host sync. All losses are computed in float32
from D's outputs, whatever precision D ran in. An optional zero-centred gradient penalty
is paid on the rows each member is scored on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .losses import (
    DEFAULT_GENERATOR_LOSS,
    GENERATOR_LOSSES,
    get_terms,
    loss_dtype,
    mixed_term,
)
from .mixup_options import MixupOptions
from .rng import CounterRNG
from .schedule import MemberSchedules

# Each D or G step owns a block of BLOCK counters; their use within the block is fixed, so
# member k draws the same numbers whatever options the rest of its population has.
DATA, LATENT, LAM_REAL_FAKE, LAM_POOL, PERMUTATION, COIN = 0, 4, 5, 7, 9, 10  # DATA: 0-3
BLOCK = 16


@dataclass
class DiscriminatorPart:
    """Rows D scores in one step: inputs (P, R, ...), their target (P, R) or the plain term
    ('real' / 'fake'), and each member's weight (P,)."""

    inputs: Tensor
    target: Tensor | str
    weight: Tensor | float


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


class MemberLosses:
    """The mixup D loss and the G loss of P members, from their `loss` config sections.

    `last_step` is the run's last generator step, where open-ended schedules end."""

    def __init__(self, losses: Sequence, device: torch.device, last_step: int = 1) -> None:
        self.device = device
        P = len(losses)
        alphas = [MixupOptions.create(**c.options()).alpha for c in losses]

        def tensor(values, dtype=torch.float32) -> Tensor:
            return torch.tensor(values, dtype=dtype, device=device)

        self.terms = _groups([get_terms(c.name) for c in losses], device)
        self.g_terms = _groups([c.generator_loss or DEFAULT_GENERATOR_LOSS[c.name]
                                for c in losses], device)
        self.alpha = tensor(alphas)
        mixing = [a > 0 for a in alphas]
        beta = [m and c.distribution == "beta" for m, c in zip(mixing, losses, strict=True)]
        self.any_beta, self.all_beta = any(beta), all(beta)
        self.beta = tensor(beta, torch.bool).unsqueeze(1)
        self.beta_alpha = self.alpha.clamp(min=1e-3)  # members with alpha 0 never use theirs
        self.per_batch = tensor([not c.per_sample for c in losses], torch.bool).unsqueeze(1)
        self.any_per_batch = any(not c.per_sample for c in losses)
        self.alpha_schedule = MemberSchedules([c.alpha_schedule for c in losses], last_step,
                                              device)
        self.mix_prob_schedule = MemberSchedules([c.mix_prob_schedule for c in losses],
                                                 last_step, device)
        self.coins = any(m and (c.mix_prob < 1 or not c.mix_prob_schedule.constant)
                         for m, c in zip(mixing, losses, strict=True))
        self.mix_prob = tensor([c.mix_prob for c in losses])
        self.erm_weight = tensor([c.erm_weight for c in losses])
        pool = [m and c.pairing == "pool" for m, c in zip(mixing, losses, strict=True)]
        real_fake = [m and not p for m, p in zip(mixing, pool, strict=True)]
        self.pool, self.real_fake = tensor(pool), tensor(real_fake)
        self.mixing = tensor(mixing)
        self.has_pool, self.has_real_fake = any(pool), any(real_fake)
        # alpha annealed to 0 needs the plain rows only from the step it reaches 0 (any_zero)
        self.has_plain = (not all(mixing) or self.coins
                          or any(c.erm_weight > 0 for c in losses))
        self.gradient_penalty = tensor([c.gradient_penalty for c in losses])
        self.penalized = any(c.gradient_penalty > 0 for c in losses)
        self.members = P

    # --- the D step -----------------------------------------------------------------------

    def _lam(self, rng: CounterRNG, counter: int, n: int, alpha: Tensor) -> Tensor:
        """Each member's lam, shape (P, n): its distribution, per sample or per batch.

        Uses counters `counter` and `counter + 1`."""
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

    def structure(self, step: int) -> bool:
        """What decides the parts' shapes at generator step `step`: whether D scores the plain
        real and fake rows (a schedule that reaches alpha 0 adds them from then on)."""
        return self.has_plain or (not self.alpha_schedule.constant
                                  and self.alpha_schedule.any_zero(step))

    def parts(self, rng: CounterRNG, counter: int | Tensor, real: Tensor, fake: Tensor,
              step: int = 0, clock: Tensor | None = None) -> list[DiscriminatorPart]:
        """What D scores at generator step `step`, for real and (detached) fake batches
        (P, N, ...). `counter` starts this step's block of draws (lam, permutations, coin).
        Schedules are read at `clock`, the step as a device tensor, when given."""
        fake = fake.detach()
        P, n = real.shape[:2]
        at = step if clock is None else clock
        alpha, mixed = self.alpha, self.mixing
        if not self.alpha_schedule.constant:
            alpha = self.alpha * self.alpha_schedule.at(at)
            mixed = self.mixing * (alpha > 0)
        if self.coins:
            mix_prob = self.mix_prob
            if not self.mix_prob_schedule.constant:
                mix_prob = mix_prob * self.mix_prob_schedule.at(at)
            mixed = mixed * (rng.uniform(counter + COIN, 1)[:, 0] < mix_prob)
        parts = []
        if self.has_real_fake:
            lam = self._lam(rng, counter + LAM_REAL_FAKE, n, alpha)
            parts.append(DiscriminatorPart(_blend(real, fake, lam), lam, mixed * self.real_fake))
        if self.has_pool:
            pool = torch.cat([real, fake], 1)
            labels = torch.cat([real.new_ones(P, n), real.new_zeros(P, n)], 1)
            order = rng.permutations(counter + PERMUTATION, 2 * n, 2)
            first, second = order[:, 0], order[:, 1]
            lam = self._lam(rng, counter + LAM_POOL, 2 * n, alpha)
            parts.append(DiscriminatorPart(
                _blend(_take(pool, first), _take(pool, second), lam),
                torch.lerp(labels.gather(1, second), labels.gather(1, first), lam),
                mixed * self.pool))
        if self.structure(step):
            plain = torch.where(mixed > 0, self.erm_weight, 1.0)
            parts += [DiscriminatorPart(real, "real", plain),
                      DiscriminatorPart(fake, "fake", plain)]
        return parts

    def d_loss(self, parts: Sequence[DiscriminatorPart], outputs: Sequence[Tensor]) -> Tensor:
        """Each member's D loss (P,) from D's raw outputs (P, R) on each part's inputs."""
        total = None
        for part, output in zip(parts, outputs, strict=True):
            o = loss_dtype(output.reshape(part.inputs.shape[:2]))
            if isinstance(part.target, Tensor):
                value = _by_group(self.terms, mixed_term, o, part.target)
            else:
                name = "real_term" if part.target == "real" else "fake_term"
                value = _by_group(self.terms, lambda t, x, name=name: getattr(t, name)(x), o)
            value = value.mean(1) * part.weight
            total = value if total is None else total + value
        return total

    def penalty(self, parts: Sequence[DiscriminatorPart], outputs: Sequence[Tensor]) -> Tensor:
        """Each member's zero-centred gradient penalty (P,): `g/2 * sum_part weight *
        mean_rows |grad_x D(x)|^2` on the points it was scored on. The parts' inputs must
        require gradients (see `requires_inputs_grad`)."""
        grads = torch.autograd.grad(sum(loss_dtype(o).sum() for o in outputs),
                                    [part.inputs for part in parts], create_graph=True)
        total = None
        for part, grad in zip(parts, grads, strict=True):
            value = grad.float().square().flatten(2).sum(2).mean(1) * part.weight
            total = value if total is None else total + value
        return 0.5 * self.gradient_penalty * total

    def requires_inputs_grad(self, parts: Sequence[DiscriminatorPart]) -> None:
        for part in parts:
            part.inputs = part.inputs.detach().requires_grad_(True)

    # --- the G step -----------------------------------------------------------------------

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
