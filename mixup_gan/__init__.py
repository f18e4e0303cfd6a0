"""mixup-gan: mixup for GAN discriminators (any loss) and for classifiers.

Use it in your own GAN's discriminator step::

    from mixup_gan import mixup_discriminator_loss
    d_loss = mixup_discriminator_loss(D, real, G(z), alpha=0.2)          # BCE
    d_loss = mixup_discriminator_loss(D, real, G(z), alpha=0.2, loss="hinge")
"""

from .d_checks import DiscriminatorWarning
from .losses import (
    ADVERSARIAL_LOSSES,
    GENERATOR_LOSSES,
    MixupDiscriminatorLoss,
    TermPair,
    erm_discriminator_loss,
    generator_loss,
    get_terms,
    mixup_discriminator_loss,
)
from .mixup import Mixup, blend, mix_inputs, mixup_batch, mixup_criterion, sample_lam, soft_targets
from .mixup_options import MixupOptions

__version__ = "0.1.0"

__all__ = [
    "ADVERSARIAL_LOSSES",
    "DiscriminatorWarning",
    "GENERATOR_LOSSES",
    "Mixup",
    "MixupDiscriminatorLoss",
    "MixupOptions",
    "TermPair",
    "blend",
    "erm_discriminator_loss",
    "generator_loss",
    "get_terms",
    "mix_inputs",
    "mixup_batch",
    "mixup_criterion",
    "mixup_discriminator_loss",
    "sample_lam",
    "soft_targets",
]
