"""Adversarial losses as per-sample term pairs: the one table the public loss, the engine and
the config choices read.

A discriminator loss is two per-sample terms on D's raw output `o`: what D pays on a real
sample (`real_term`) and on a fake one (`fake_term`). Mixup trains D on
`x~ = lam * x_real + (1 - lam) * fake` against the mixed target `lam`, paying
`lam * real_term(D(x~)) + (1 - lam) * fake_term(D(x~))`; for BCE that is exactly
`BCEWithLogits(D(x~), lam)`. That one rule makes every term pair mixup-able.

Every term is a named module-level function (no lambdas), so term pairs, and the modules
holding them, pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Term = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class TermPair:
    """Per-sample discriminator terms on raw outputs: `real_term(o)` and `fake_term(o)`.

    Each term maps D's outputs to one value per output, elementwise (same shape as `o`)."""

    real_term: Term
    fake_term: Term
    name: str = "custom"


def softplus_neg(o: Tensor) -> Tensor:
    """`softplus(-o) = -log sigmoid(o)`: BCE's real term, the non-saturating G loss."""
    return F.softplus(-o)


def softplus(o: Tensor) -> Tensor:
    """`softplus(o) = -log(1 - sigmoid(o))`: BCE's fake term."""
    return F.softplus(o)


def neg_softplus(o: Tensor) -> Tensor:
    """`-softplus(o) = log(1 - D(G(z)))`: the saturating G loss."""
    return -F.softplus(o)


def hinge_real(o: Tensor) -> Tensor:
    return F.relu(1 - o)


def hinge_fake(o: Tensor) -> Tensor:
    return F.relu(1 + o)


def squared_to_one(o: Tensor) -> Tensor:
    return (o - 1).square() / 2


def squared_to_zero(o: Tensor) -> Tensor:
    return o.square() / 2


def identity(o: Tensor) -> Tensor:
    return o


ADVERSARIAL_LOSSES: dict[str, TermPair] = {
    "bce": TermPair(softplus_neg, softplus, "bce"),
    "hinge": TermPair(hinge_real, hinge_fake, "hinge"),
    "least_squares": TermPair(squared_to_one, squared_to_zero, "least_squares"),
    "wasserstein": TermPair(torch.neg, identity, "wasserstein"),
}

# Generator losses on D's output for generated samples (mean over the batch is taken after).
GENERATOR_LOSSES: dict[str, Term] = {
    "non_saturating": softplus_neg,  # -log D(G(z))
    "saturating": neg_softplus,  # log(1 - D(G(z))) = -BCE(D(G(z)), 0)
    "hinge": torch.neg,
    "wasserstein": torch.neg,
    "least_squares": squared_to_one,
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


def loss_dtype(x: Tensor) -> Tensor:
    """`x` in float32 at least: losses are computed from D's outputs in this one precision,
    whatever precision D ran in (bfloat16 under autocast)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def generator_loss(fake_output: Tensor, kind: str = "non_saturating") -> Tensor:
    """Generator loss on D's raw outputs for generated samples, shape (N,) or (N, 1) -> scalar."""
    try:
        term = GENERATOR_LOSSES[kind]
    except KeyError:
        raise ValueError(
            f"unknown generator loss {kind!r}; choose one of {sorted(GENERATOR_LOSSES)}"
        ) from None
    return term(loss_dtype(fake_output)).mean()


def per_sample(terms: TermPair, which: str, output: Tensor) -> Tensor:
    """`terms.real_term(output)` or `terms.fake_term(output)` (`which`: "real" / "fake"),
    checked to be per sample: a term that reduces (`-o.mean()`) would silently drop the
    per-sample `lam` weighting, so its shape must be `output`'s."""
    value = (terms.real_term if which == "real" else terms.fake_term)(output)
    if not isinstance(value, Tensor) or value.shape != output.shape:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(
            f"loss {terms.name!r}: {which}_term returned shape {got} for D's outputs of shape "
            f"{tuple(output.shape)}; a term must be per sample (elementwise, no .mean()/.sum())")
    return value


def mixed_term(terms: TermPair, output: Tensor, target: Tensor) -> Tensor:
    """Per-sample `target * real_term(o) + (1 - target) * fake_term(o)`; exact at 0 and 1.

    Computed in float32 (at least) whatever precision D ran in: under autocast D's outputs
    and the mixed targets may be bfloat16, and a loss is a sum that needs the bits.
    """
    output = loss_dtype(output)
    return torch.lerp(per_sample(terms, "fake", output), per_sample(terms, "real", output),
                      target.to(output.dtype))
