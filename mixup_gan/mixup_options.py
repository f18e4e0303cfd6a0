"""The mixup discriminator loss's options, named once: a frozen dataclass with their
defaults and checks. The config section (`gan_config.LossConfig`), the loss functions and
`MixupDiscriminatorLoss` (`losses.py`) and the trainer (`member_losses.py`) all derive from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .arguments import alpha_error
from .config import config_from_dict, option
from .mixup import DISTRIBUTIONS

PAIRINGS: tuple[str, ...] = ("real-fake", "pool")


def alpha_problem(distribution: str, alpha: float) -> tuple[str, str] | None:
    """The rule every alpha obeys beyond its range, as a config `check` result: the API's
    rule (`arguments.alpha_error`): finite, at most 1 for Uniform(0, alpha), which would
    extrapolate instead of interpolating, and within what Beta(alpha, alpha) can sample."""
    problem = alpha_error(alpha, distribution)
    return ("alpha", problem) if problem else None


@dataclass(frozen=True)
class MixupOptions:
    """How D's batch is mixed. `alpha = 0` is the plain ERM loss, exactly.

    alpha: `lam ~ Beta(alpha, alpha)` (paper) or `Uniform(0, alpha)`.
    distribution: "beta" (paper) or "uniform" (the authors' released toy code).
    per_sample: one lam per sample, or one per batch.
    pairing: "real-fake" (each real mixed with one fake) or "pool" (real+fake shuffled
        twice and mixed: real-real and fake-fake pairs occur too).
    mix_prob: share of D steps that use mixup (the plain loss otherwise).
    erm_weight: adds `erm_weight * plain loss` on top of the mixup loss.
    """

    alpha: float = option(0.2, ge=0.0, le=1e6, doc="0 = plain ERM loss")
    distribution: str = option("beta", choices=DISTRIBUTIONS)
    per_sample: bool = option(True)
    pairing: str = option("real-fake", choices=PAIRINGS)
    mix_prob: float = option(1.0, ge=0.0, le=1.0)
    erm_weight: float = option(0.0, ge=0.0, le=1e6)

    def check(self) -> tuple[str, str] | None:
        """Rules that tie fields together (the loader reports them with the file and key)."""
        return alpha_problem(self.distribution, self.alpha)

    @classmethod
    def create(cls, **values) -> MixupOptions:
        """Checked options from keyword arguments: a ValueError names a bad one, a
        TypeError an unknown one."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown option(s) {sorted(unknown)}; "
                            f"known: {sorted(cls.__dataclass_fields__)}")
        return config_from_dict(values, cls, source="mixup options")

    def options(self) -> dict:
        """The options as keyword arguments (what `create` takes)."""
        return {name: getattr(self, name) for name in MixupOptions.__dataclass_fields__}
