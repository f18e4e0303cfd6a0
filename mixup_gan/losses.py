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
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mixup import (
    Distribution,
    blend,
    check_alpha,
    check_batch,
    random_permutation,
    sample_lam,
)

Term = Callable[[Tensor], Tensor]
Pairing = Literal["real-fake", "pool"]
PAIRINGS: tuple[str, ...] = ("real-fake", "pool")


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


def _mixing_pairs(real: Tensor, fake: Tensor, pairing: str, generator):
    """The two batches to blend and their 0/1 targets, per the pairing rule."""
    n = real.shape[0]
    ones = torch.ones(n, device=real.device, dtype=real.dtype)
    if pairing == "real-fake":
        return real, fake, ones, torch.zeros_like(ones)
    # pool: shuffle real+fake twice and mix the two shuffles (real-real and fake-fake occur).
    pool = torch.cat([real, fake])
    labels = torch.cat([ones, torch.zeros_like(ones)])
    first = random_permutation(2 * n, generator=generator, device=real.device)
    second = random_permutation(2 * n, generator=generator, device=real.device)
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


def check_options(alpha: float, distribution: str, pairing: str, mix_prob: float,
                  erm_weight: float) -> float:
    """Validate the mixup options once; returns alpha as a float."""
    alpha = check_alpha(alpha, distribution)
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {pairing!r}")
    if not 0.0 <= mix_prob <= 1.0:
        raise ValueError(f"mix_prob must be in [0, 1], got {mix_prob!r}")
    if erm_weight < 0:
        raise ValueError(f"erm_weight must be >= 0, got {erm_weight!r}")
    return alpha


def discriminator_batch(
    real: Tensor,
    fake: Tensor,
    *,
    alpha: float,
    distribution: Distribution = "beta",
    per_sample: bool = True,
    pairing: Pairing = "real-fake",
    mix_prob: float = 1.0,
    erm_weight: float = 0.0,
    generator: torch.Generator | None = None,
) -> DiscriminatorBatch:
    """Draw this step's mixing (all of its randomness) and return what D must score.

    Options as in `mixup_discriminator_loss`, assumed valid. The fake batch is detached.
    """
    fake = fake.detach()
    use_mixup = alpha > 0 and (mix_prob == 1.0 or _coin(mix_prob, generator, real.device))
    parts: list[tuple[Tensor, Tensor | float, float]] = []
    lam = None
    if use_mixup:
        x_a, x_b, y_a, y_b = _mixing_pairs(real, fake, pairing, generator)
        lam = sample_lam(
            alpha, x_a.shape[0], distribution=distribution, per_sample=per_sample,
            generator=generator, device=real.device, dtype=real.dtype,
        )
        parts.append((blend(x_a, x_b, lam), blend(y_a, y_b, lam), 1.0))
    if not use_mixup or erm_weight > 0:
        weight = erm_weight if use_mixup else 1.0
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


def mixup_discriminator_loss(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    alpha: float,
    loss: LossSpec = "bce",
    distribution: Distribution = "beta",
    per_sample: bool = True,
    pairing: Pairing = "real-fake",
    mix_prob: float = 1.0,
    erm_weight: float = 0.0,
    generator: torch.Generator | None = None,
    check_finite: bool = True,
    return_info: bool = False,
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
        distribution: "beta" (paper) or "uniform" (authors' released toy code).
        per_sample: one lam per sample (default) or one per batch.
        pairing: "real-fake" (each real mixed with one fake; D sees N samples) or "pool"
            (real+fake shuffled twice and mixed; D sees 2N samples).
        mix_prob: probability that this call uses mixup; otherwise it returns the ERM loss.
        erm_weight: adds `erm_weight * ERM loss` on top of the mixup loss.
        generator: torch.Generator for lam, permutations and the mix_prob draw.
        check_finite: refuse NaN/Inf inputs (one host sync per call; turn off for speed).
        return_info: also return a dict of detached diagnostics.

    Returns:
        A scalar loss, or `(loss, info)` with `return_info=True`.
    """
    alpha = check_options(alpha, distribution, pairing, mix_prob, erm_weight)
    _check_pair(real, fake, check_finite)
    terms = get_terms(loss)
    batch = discriminator_batch(
        real, fake, alpha=alpha, distribution=distribution, per_sample=per_sample,
        pairing=pairing, mix_prob=mix_prob, erm_weight=erm_weight, generator=generator,
    )
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


def _coin(p: float, generator: torch.Generator | None, device) -> bool:
    draw_device = generator.device if generator is not None else device
    return bool(torch.rand((), generator=generator, device=draw_device) < p)


class MixupDiscriminatorLoss(nn.Module):
    """`mixup_discriminator_loss` as a module: `criterion(discriminator, real, fake)`.

    ``criterion = MixupDiscriminatorLoss(alpha=0.2, loss="hinge")``; every keyword of
    `mixup_discriminator_loss` is accepted and validated here, once.
    """

    def __init__(self, alpha: float, loss: LossSpec = "bce", **options) -> None:
        super().__init__()
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {sorted(_OPTION_NAMES)}")
        self.alpha = check_options(
            alpha, options.get("distribution", "beta"), options.get("pairing", "real-fake"),
            options.get("mix_prob", 1.0), options.get("erm_weight", 0.0),
        )
        self.terms = get_terms(loss)
        self.options = options

    def forward(self, discriminator, real: Tensor, fake: Tensor, *, return_info: bool = False):
        return mixup_discriminator_loss(
            discriminator, real, fake, alpha=self.alpha, loss=self.terms,
            return_info=return_info, **self.options,
        )

    def extra_repr(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"alpha={self.alpha}, loss={self.terms.name!r}{opts}"


_OPTION_NAMES = {
    "distribution", "per_sample", "pairing", "mix_prob", "erm_weight", "generator",
    "check_finite",
}
