"""The mixup discriminator loss for one batch: the public one-liner and its module form.

`mixup_discriminator_loss` is the P = 1 case of the one D-loss planner
(`member_losses.DiscriminatorPlanner`) that the population engine also runs, with its random
numbers drawn from a `torch.Generator` (`GeneratorDraws`). The term pairs live in `terms.py`
(re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .d_checks import check_outputs, first_look, is_compiling, trailing_sigmoid
from .d_checks import warn_batch_statistics as _warn_batch_statistics
from .member_losses import DiscriminatorPart, DiscriminatorPlanner
from .mixup import check_batch, generator_alias, random_permutation, sample_lam
from .mixup_options import MixupOptions
from .terms import (  # noqa: F401  (re-exported: the public names of the term tables)
    ADVERSARIAL_LOSSES,
    DEFAULT_GENERATOR_LOSS,
    GENERATOR_LOSSES,
    LossSpec,
    Term,
    TermPair,
    generator_loss,
    get_terms,
    loss_dtype,
    mixed_term,
)

BATCH_NORM_FIX = ("Use spectral norm (torch.nn.utils.parametrizations.spectral_norm), "
                  "GroupNorm/LayerNorm or no normalisation in D, or pass "
                  "check_discriminator=False if you know better.")


def _per_sample(output: Tensor, n: int) -> Tensor:
    """D's output as shape (1, n): accepts (n,) or (n, 1)."""
    if not isinstance(output, Tensor) or output.shape[:1] != (n,) or output.numel() != n:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(
            f"the discriminator must return one raw output per sample, shape ({n},) or "
            f"({n}, 1); got {shape}"
        )
    return loss_dtype(output.reshape(1, n))


def _check_pair(real: Tensor, fake: Tensor, check_finite: bool) -> Tensor:
    """Refuse a bad pair; returns `fake` in real's dtype when that loses nothing (a bfloat16
    or float16 G under autocast with a float32 real batch)."""
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
        if torch.promote_types(real.dtype, fake.dtype) != real.dtype:
            raise TypeError(f"real is {real.dtype} but fake is {fake.dtype}: fake can be cast "
                            "to real's dtype only when that loses no precision; cast one of them")
        fake = fake.to(real.dtype)
    if check_finite and not is_compiling():
        check_batch("real", real)
        check_batch("fake", fake)
    return fake


class GeneratorDraws:
    """One D step's draws from a `torch.Generator` (or the global one), for one member:
    the coin, then the two permutations (pool) or nothing, then lam, in that order."""

    def __init__(self, options: MixupOptions, rng: torch.Generator | None,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.options, self.rng, self.device, self.dtype = options, rng, device, dtype

    def coin(self, mix_prob: Tensor) -> bool:
        draw_device = self.rng.device if self.rng is not None else self.device
        return bool(torch.rand((), generator=self.rng, device=draw_device)
                    < self.options.mix_prob)

    def lam(self, slot: int, n: int, alpha: Tensor) -> Tensor:
        o = self.options
        return sample_lam(o.alpha, n, distribution=o.distribution, per_sample=o.per_sample,
                          rng=self.rng, device=self.device, dtype=self.dtype).unsqueeze(0)

    def permutations(self, n: int) -> Tensor:
        first = random_permutation(n, rng=self.rng, device=self.device)
        second = random_permutation(n, rng=self.rng, device=self.device)
        return torch.stack([first, second]).unsqueeze(0)


def _info(parts: list[DiscriminatorPart], outputs: list[Tensor], probabilities: bool,
          penalty: Tensor | None) -> dict[str, Tensor]:
    """Detached diagnostics: D's mean output on each part it scored (raw `d_*_mean`, and
    `d_*_prob` = mean sigmoid for BCE), lam and targets, and the mixed points themselves."""
    mixed = [p for p in parts if isinstance(p.target, Tensor)]
    info: dict[str, Tensor] = {"mixed": torch.tensor(bool(mixed))}
    for part, output in zip(parts, outputs, strict=True):
        name = part.target if isinstance(part.target, str) else "mixed"
        o = output.detach()
        info[f"d_{name}_mean"] = o.mean()
        if probabilities:
            info[f"d_{name}_prob"] = torch.sigmoid(o).mean()
        if name == "mixed":
            info.update(lam_mean=_lam_of(part).mean(), target_mean=part.target.detach().mean(),
                        lam=_lam_of(part), target=part.target.detach()[0],
                        x_mixed=part.inputs.detach()[0])
    if penalty is not None:
        info["penalty"] = penalty.detach().reshape(())
    return info


def _lam_of(part: DiscriminatorPart) -> Tensor:
    return part.lam.detach()[0]


class MixupDiscriminatorLoss(nn.Module):
    """`mixup_discriminator_loss` as a module: `criterion(discriminator, real, fake)`.

    ``criterion = MixupDiscriminatorLoss(alpha=0.2, loss="hinge")``; the `MixupOptions`,
    `gradient_penalty`, `rng`, `check_finite` and `check_discriminator` are accepted and
    validated here, once, so a call does no option work (and compiles with `fullgraph=True`).
    """

    @generator_alias
    def __init__(self, alpha: float, loss: LossSpec = "bce", *,
                 rng: torch.Generator | None = None, check_finite: bool = True,
                 gradient_penalty: float = 0.0, check_discriminator: bool = True,
                 **options) -> None:
        super().__init__()
        self.mixing = MixupOptions.create(alpha=alpha, **options)
        self.terms = get_terms(loss)
        penalty = float(gradient_penalty)
        if not 0 <= penalty < float("inf"):
            raise ValueError(f"gradient_penalty must be a finite number >= 0, "
                             f"got {gradient_penalty!r}")
        self.gradient_penalty = penalty
        self.rng, self.check_finite = rng, check_finite
        self.check_discriminator = check_discriminator
        self._planners: dict[torch.device, DiscriminatorPlanner] = {}

    @property
    def alpha(self) -> float:
        return self.mixing.alpha

    def planner(self, device: torch.device) -> DiscriminatorPlanner:
        """The planner of this one member on `device` (built once per device)."""
        planner = self._planners.get(device)
        if planner is None:
            planner = self._planners[device] = DiscriminatorPlanner(
                [self.mixing], [self.terms], device, gradient_penalty=[self.gradient_penalty])
        return planner

    def forward(self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                *, return_info: bool = False, rng: torch.Generator | None = None):
        fake = _check_pair(real, fake, self.check_finite)
        planner = self.planner(real.device)
        draws = GeneratorDraws(self.mixing, rng if rng is not None else self.rng,
                               real.device, real.dtype)
        parts = planner.parts(draws, real.unsqueeze(0), fake.detach().unsqueeze(0))
        if planner.penalized:
            planner.requires_inputs_grad(parts)
        checking = self.check_discriminator and not is_compiling()
        if checking and self.alpha > 0:
            _warn_batch_statistics(discriminator, BATCH_NORM_FIX, once=True)
        look = checking and first_look(discriminator)
        if look:
            sigmoid = trailing_sigmoid(discriminator)
        outputs = [_per_sample(discriminator(part.inputs[0]), part.inputs.shape[1])
                   for part in parts]
        if look:
            check_outputs(discriminator, outputs, sigmoid)
        value = planner.d_loss(parts, outputs)
        penalty = planner.penalty(parts, outputs) if planner.penalized else None
        if penalty is not None:
            value = value + penalty
        value = value.reshape(())
        if not return_info:
            return value
        return value, _info(parts, outputs, self.terms.name == "bce", penalty)

    def __getstate__(self) -> dict:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_planners": {}}  # device tensors, rebuilt on the next call

    def extra_repr(self) -> str:
        changed = "".join(f", {k}={v!r}" for k, v in self.mixing.options().items()
                          if k != "alpha" and v != MixupOptions.__dataclass_fields__[k].default)
        if self.gradient_penalty:
            changed += f", gradient_penalty={self.gradient_penalty!r}"
        return f"alpha={self.alpha}, loss={self.terms.name!r}{changed}"


_CRITERIA: dict[tuple, MixupDiscriminatorLoss] = {}


def _criterion(alpha, loss, rng, check_finite, gradient_penalty, check_discriminator,
               options) -> MixupDiscriminatorLoss:
    """The function form's module, validated once per call signature (the rng aside)."""
    try:
        key = (alpha, loss, check_finite, gradient_penalty, check_discriminator,
               tuple(sorted(options.items())))
        criterion = _CRITERIA.get(key)
    except TypeError:  # something unhashable: validate every call
        key, criterion = None, None
    if criterion is None:
        criterion = MixupDiscriminatorLoss(
            alpha, loss, check_finite=check_finite, gradient_penalty=gradient_penalty,
            check_discriminator=check_discriminator, **options)
        if key is not None:
            if len(_CRITERIA) >= 256:
                _CRITERIA.clear()
            _CRITERIA[key] = criterion
    return criterion


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
    gradient_penalty: float = 0.0,
    check_discriminator: bool = True,
    **options,
) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
    """Discriminator loss on mixed real/fake samples, for any adversarial loss.

    Args:
        discriminator: any callable mapping a batch (N, ...) to raw outputs (N,) or (N, 1).
        real, fake: batches of the same shape (N, ...). `fake` is detached: no gradient
            reaches the generator through this loss. A lower-precision fake (bfloat16 G, float32
            real batch) is cast to real's dtype.
        alpha: `lam ~ Beta(alpha, alpha)` (or `Uniform(0, alpha)`); 0 gives the plain ERM loss
            `mean(real_term(D(real))) + mean(fake_term(D(fake)))`, exactly.
        loss: "bce" (default), "hinge", "least_squares", "wasserstein", a `TermPair` or a
            `(real_term, fake_term)` pair of per-sample callables.
        rng: torch.Generator for lam, permutations and the mix_prob draw.
        check_finite: refuse NaN/Inf inputs (one host sync per call; turn off for speed;
            skipped under torch.compile).
        return_info: also return a dict of detached diagnostics.
        gradient_penalty: weight g of the zero-centred penalty `g/2 * E|grad_x D(x~)|^2` on
            the points D is scored on (the mixed points under mixup); 0 = off.
        check_discriminator: on the first call with a D, refuse a D ending in nn.Sigmoid whose
            outputs are probabilities, and warn about outputs all in [0, 1] and about
            BatchNorm in training mode under mixup.
        **options: the other `MixupOptions`: distribution ("beta" | "uniform"),
            per_sample, pairing ("real-fake" | "pool": D sees N or 2N samples), mix_prob,
            erm_weight.

    Returns:
        A scalar float32 (at least) loss, or `(loss, info)` with `return_info=True`.
    """
    criterion = _criterion(alpha, loss, rng, check_finite, gradient_penalty,
                           check_discriminator, options)
    return criterion(discriminator, real, fake, return_info=return_info, rng=rng)


def erm_discriminator_loss(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    loss: LossSpec = "bce",
    check_finite: bool = True,
    check_discriminator: bool = True,
) -> Tensor:
    """The plain loss `mean(real_term(D(real))) + mean(fake_term(D(fake)))` (fake detached)."""
    return mixup_discriminator_loss(discriminator, real, fake, alpha=0.0, loss=loss,
                                    check_finite=check_finite,
                                    check_discriminator=check_discriminator)
