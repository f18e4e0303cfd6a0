"""Adversarial losses as per-sample term pairs, and the mixup discriminator loss for any pair.

A discriminator loss is two per-sample terms on D's raw output `o`: what D pays on a real
sample (`real_term`) and on a fake one (`fake_term`). Mixup trains D on
`x~ = lam * x_real + (1 - lam) * fake` against the mixed target `lam`, paying
`lam * real_term(D(x~)) + (1 - lam) * fake_term(D(x~))`; for BCE that is exactly
`BCEWithLogits(D(x~), lam)`. That one rule makes every term pair mixup-able.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mixup import blend, check_batch, generator_alias, random_permutation, sample_lam
from .mixup_options import MixupOptions

Term = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class TermPair:
    """Per-sample discriminator terms on raw outputs: `real_term(o)` and `fake_term(o)`."""

    real_term: Term
    fake_term: Term
    name: str = "custom"


def _squared_to_one(o: Tensor) -> Tensor:
    return (o - 1).square() / 2


def _squared_to_zero(o: Tensor) -> Tensor:
    return o.square() / 2


ADVERSARIAL_LOSSES: dict[str, TermPair] = {
    "bce": TermPair(lambda o: F.softplus(-o), F.softplus, "bce"),
    "hinge": TermPair(lambda o: F.relu(1 - o), lambda o: F.relu(1 + o), "hinge"),
    "least_squares": TermPair(_squared_to_one, _squared_to_zero, "least_squares"),
    "wasserstein": TermPair(torch.neg, lambda o: o, "wasserstein"),
}

# Generator losses on D's output for generated samples (mean over the batch is taken after).
GENERATOR_LOSSES: dict[str, Term] = {
    "non_saturating": lambda o: F.softplus(-o),  # -log D(G(z))
    "saturating": lambda o: -F.softplus(o),  # log(1 - D(G(z))) = -BCE(D(G(z)), 0)
    "hinge": torch.neg,
    "wasserstein": torch.neg,
    "least_squares": _squared_to_one,
}

# The generator loss each discriminator loss is usually paired with.
DEFAULT_GENERATOR_LOSS: dict[str, str] = {
    "bce": "non_saturating",
    "hinge": "hinge",
    "least_squares": "least_squares",
    "wasserstein": "wasserstein",
}

LossSpec = str | TermPair | tuple[Term, Term]


def get_terms(loss: LossSpec) -> TermPair:
    """Resolve a loss name, a `TermPair` or a `(real_term, fake_term)` tuple to a `TermPair`."""
    if isinstance(loss, TermPair):
        return loss
    if isinstance(loss, str):
        try:
            return ADVERSARIAL_LOSSES[loss]
        except KeyError:
            raise ValueError(
                f"unknown loss {loss!r}; choose one of {sorted(ADVERSARIAL_LOSSES)} "
                "or pass a (real_term, fake_term) pair"
            ) from None
    if isinstance(loss, tuple) and len(loss) == 2 and all(callable(t) for t in loss):
        return TermPair(loss[0], loss[1])
    raise TypeError(
        f"loss must be a name, a TermPair or a (real_term, fake_term) pair, got {loss!r}"
    )


def generator_loss(fake_output: Tensor, kind: str = "non_saturating") -> Tensor:
    """Generator loss on D's raw outputs for generated samples, shape (N,) or (N, 1) -> scalar."""
    try:
        term = GENERATOR_LOSSES[kind]
    except KeyError:
        raise ValueError(
            f"unknown generator loss {kind!r}; choose one of {sorted(GENERATOR_LOSSES)}"
        ) from None
    return term(loss_dtype(fake_output)).mean()


def loss_dtype(x: Tensor) -> Tensor:
    """`x` in float32 at least: losses are computed from D's outputs in this one precision,
    whatever precision D ran in (bfloat16 under autocast)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _per_sample(output: Tensor, n: int) -> Tensor:
    """D's output as shape (n,): accepts (n,) or (n, 1)."""
    if not isinstance(output, Tensor) or output.shape[:1] != (n,) or output.numel() != n:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"the discriminator must return one raw output per sample, shape ({n},) or "
            f"({n}, 1); got {shape}"
        )
    return loss_dtype(output.reshape(n))


def mixed_term(terms: TermPair, output: Tensor, target: Tensor) -> Tensor:
    """Per-sample `target * real_term(o) + (1 - target) * fake_term(o)`; exact at 0 and 1.

    Computed in float32 (at least) whatever precision D ran in: under autocast D's outputs
    and the mixed targets may be bfloat16, and a loss is a sum that needs the bits.
    """
    output = loss_dtype(output)
    return torch.lerp(terms.fake_term(output), terms.real_term(output), target.to(output.dtype))


def _check_pair(real: Tensor, fake: Tensor, check_finite: bool) -> None:
    check_batch("real", real, check_finite=False)
    check_batch("fake", fake, check_finite=False)
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake batches must have the same shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    if real.device != fake.device:
        raise ValueError(f"real is on {real.device} but fake is on {fake.device}")
    if real.dtype != fake.dtype:
        raise TypeError(f"real is {real.dtype} but fake is {fake.dtype}")
    if check_finite:
        check_batch("real", real)
        check_batch("fake", fake)


def erm_discriminator_loss(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    loss: LossSpec = "bce",
    check_finite: bool = True,
) -> Tensor:
    """The plain loss `mean(real_term(D(real))) + mean(fake_term(D(fake)))` (fake detached)."""
    return mixup_discriminator_loss(discriminator, real, fake, alpha=0.0, loss=loss,
                                    check_finite=check_finite)


def _mixing_pairs(real: Tensor, fake: Tensor, pairing: str, rng):
    """The two batches to blend and their 0/1 targets, per the pairing rule."""
    n = real.shape[0]
    ones = torch.ones(n, device=real.device, dtype=real.dtype)
    if pairing == "real-fake":
        return real, fake, ones, torch.zeros_like(ones)
    # pool: shuffle real+fake twice and mix the two shuffles (real-real and fake-fake occur).
    pool = torch.cat([real, fake])
    labels = torch.cat([ones, torch.zeros_like(ones)])
    first = random_permutation(2 * n, rng=rng, device=real.device)
    second = random_permutation(2 * n, rng=rng, device=real.device)
    return pool[first], pool[second], labels[first], labels[second]


@dataclass
class DiscriminatorBatch:
    """What D sees in one step and how each part is scored.

    `parts` holds `(inputs, target, weight)`: the step's loss is
    `sum(weight * mean(target * real_term(o) + (1 - target) * fake_term(o)))` with `o` D's
    outputs on `inputs`; a float target of 1.0 / 0.0 means the plain real / fake term.
    """

    parts: list[tuple[Tensor, Tensor | float, float]]
    mixed: bool
    lam: Tensor | None = None


def discriminator_batch(real: Tensor, fake: Tensor, options: MixupOptions,
                        rng: torch.Generator | None = None) -> DiscriminatorBatch:
    """Draw this step's mixing (all of its randomness) and return what D must score.

    The fake batch is detached.
    """
    o = options
    fake = fake.detach()
    use_mixup = o.alpha > 0 and (o.mix_prob == 1.0 or _coin(o.mix_prob, rng, real.device))
    parts: list[tuple[Tensor, Tensor | float, float]] = []
    lam = None
    if use_mixup:
        x_a, x_b, y_a, y_b = _mixing_pairs(real, fake, o.pairing, rng)
        lam = sample_lam(o.alpha, x_a.shape[0], distribution=o.distribution,
                         per_sample=o.per_sample, rng=rng, device=real.device, dtype=real.dtype)
        parts.append((blend(x_a, x_b, lam), blend(y_a, y_b, lam), 1.0))
    if not use_mixup or o.erm_weight > 0:
        weight = o.erm_weight if use_mixup else 1.0
        parts += [(real, 1.0, weight), (fake, 0.0, weight)]
    return DiscriminatorBatch(parts, use_mixup, lam)


def score_parts(terms: TermPair, batch: DiscriminatorBatch, outputs: list[Tensor]) -> Tensor:
    """The loss of a `DiscriminatorBatch` given D's outputs on each part's inputs."""
    total = None
    for (inputs, target, weight), output in zip(batch.parts, outputs, strict=True):
        output = _per_sample(output, inputs.shape[0])
        if isinstance(target, Tensor):
            value = mixed_term(terms, output, target).mean()
        else:
            value = (terms.real_term if target == 1.0 else terms.fake_term)(output).mean()
        value = value if weight == 1.0 else weight * value
        total = value if total is None else total + value
    return total


@generator_alias
def mixup_discriminator_loss(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    alpha: float,
    loss: LossSpec = "bce",
    rng: torch.Generator | None = None,
    check_finite: bool = True,
    return_info: bool = False,
    **options,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Discriminator loss on mixed real/fake samples, for any adversarial loss.

    Args:
        discriminator: any callable mapping a batch (N, ...) to raw outputs (N,) or (N, 1).
        real, fake: batches of the same shape (N, ...). `fake` is detached: no gradient
            reaches the generator through this loss.
        alpha: `lam ~ Beta(alpha, alpha)` (or `Uniform(0, alpha)`); 0 gives the plain ERM loss
            `mean(real_term(D(real))) + mean(fake_term(D(fake)))`, exactly.
        loss: "bce" (default), "hinge", "least_squares", "wasserstein", a `TermPair` or a
            `(real_term, fake_term)` pair of per-sample callables.
        rng: torch.Generator for lam, permutations and the mix_prob draw.
        check_finite: refuse NaN/Inf inputs (one host sync per call; turn off for speed).
        return_info: also return a dict of detached diagnostics.
        **options: the other `MixupOptions`: distribution ("beta" | "uniform"),
            per_sample, pairing ("real-fake" | "pool": D sees N or 2N samples), mix_prob,
            erm_weight.

    Returns:
        A scalar loss, or `(loss, info)` with `return_info=True`.
    """
    mixing = MixupOptions.create(alpha=alpha, **options)
    _check_pair(real, fake, check_finite)
    terms = get_terms(loss)
    batch = discriminator_batch(real, fake, mixing, rng)
    outputs = [discriminator(inputs) for inputs, _, _ in batch.parts]
    value = score_parts(terms, batch, outputs)
    if not return_info:
        return value
    return value, batch_info(batch, outputs)


def batch_info(batch: DiscriminatorBatch, outputs: list[Tensor]) -> dict[str, Tensor]:
    """Detached diagnostics of one D step: mean lam, mean target, D's mean outputs."""
    info: dict[str, Tensor] = {"mixed": torch.tensor(batch.mixed)}
    names = {1.0: "d_real_mean", 0.0: "d_fake_mean"}
    for (_, target, _), output in zip(batch.parts, outputs, strict=True):
        if isinstance(target, Tensor):
            info.update(lam_mean=batch.lam.mean().detach(), target_mean=target.mean().detach(),
                        d_mixed_mean=output.mean().detach())
        else:
            info[names[target]] = output.mean().detach()
    return info


def _coin(p: float, rng: torch.Generator | None, device) -> bool:
    draw_device = rng.device if rng is not None else device
    return bool(torch.rand((), generator=rng, device=draw_device) < p)


class MixupDiscriminatorLoss(nn.Module):
    """`mixup_discriminator_loss` as a module: `criterion(discriminator, real, fake)`.

    ``criterion = MixupDiscriminatorLoss(alpha=0.2, loss="hinge")``; the `MixupOptions` and
    `rng` / `check_finite` are accepted and validated here, once.
    """

    @generator_alias
    def __init__(self, alpha: float, loss: LossSpec = "bce", *,
                 rng: torch.Generator | None = None, check_finite: bool = True,
                 **options) -> None:
        super().__init__()
        self.mixing = MixupOptions.create(alpha=alpha, **options)
        self.terms = get_terms(loss)
        self.rng, self.check_finite = rng, check_finite

    @property
    def alpha(self) -> float:
        return self.mixing.alpha

    def forward(self, discriminator, real: Tensor, fake: Tensor, *, return_info: bool = False):
        return mixup_discriminator_loss(
            discriminator, real, fake, loss=self.terms, rng=self.rng,
            check_finite=self.check_finite, return_info=return_info, **self.mixing.options(),
        )

    def extra_repr(self) -> str:
        changed = "".join(f", {k}={v!r}" for k, v in self.mixing.options().items()
                          if k != "alpha" and v != MixupOptions.__dataclass_fields__[k].default)
        return f"alpha={self.alpha}, loss={self.terms.name!r}{changed}"
