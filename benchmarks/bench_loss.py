"""One discriminator update with the mixup loss vs with the plain (ERM) loss.

Same network, same batch, same optimizer; the update is forward + backward + Adam step.
Prints seconds per update and the mixup/plain ratio, all measured in this one run; then the
per-call overhead of the loss over mixup written by hand (a tiny D, forward only).
Usage: python benchmarks/bench_loss.py
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from common import interleaved_times
from torch import nn

from mixup_gan import (
    DiscriminatorWarning,
    MixupDiscriminatorLoss,
    erm_discriminator_loss,
    mixup_discriminator_loss,
)
from mixup_gan.toy.nets import ToyDiscriminator


def conv_discriminator() -> nn.Module:
    """A DCGAN-style 32x32 discriminator."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
        nn.Conv2d(256, 1, 4, 1, 0), nn.Flatten(),
    )


def update(D, opt, loss_fn):
    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def bench(label: str, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> None:
    opt = torch.optim.Adam(D.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    fns = {
        "plain": update(D, opt, lambda: erm_discriminator_loss(D, real, fake)),
        "mixup real-fake": update(D, opt, lambda: mixup_discriminator_loss(
            D, real, fake, alpha=0.2, rng=g)),
        "mixup pool": update(D, opt, lambda: mixup_discriminator_loss(
            D, real, fake, alpha=0.2, pairing="pool", rng=g)),
    }
    times = interleaved_times(fns)
    print(f"\n{label}")
    for name, seconds in times.items():
        ratio = seconds / times["plain"]
        print(f"  {name:<16} {seconds * 1e3:8.3f} ms/update   ratio vs plain {ratio:5.3f}")


def overhead() -> None:
    """Per call: the loss (function and module forms) vs the same mixup written by hand."""
    D = nn.Linear(2, 1)
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    g = torch.Generator().manual_seed(0)
    criterion = MixupDiscriminatorLoss(alpha=0.2, rng=g, check_finite=False)

    def by_hand():
        lam = torch._sample_dirichlet(torch.full((64, 2), 0.2), generator=g)[:, 0]
        x = torch.lerp(fake, real, lam[:, None])
        F.binary_cross_entropy_with_logits(D(x).squeeze(1), lam)

    times = interleaved_times({
        "by hand": by_hand,
        "function": lambda: mixup_discriminator_loss(D, real, fake, alpha=0.2, rng=g,
                                                     check_finite=False),
        "function + check_finite": lambda: mixup_discriminator_loss(D, real, fake, alpha=0.2,
                                                                    rng=g),
        "module": lambda: criterion(D, real, fake),
    }, repeats=9, inner=200)
    print("\nper-call overhead, Linear(2, 1) D, batch 64, forward only")
    for name, seconds in times.items():
        extra, ratio = seconds - times["by hand"], seconds / times["by hand"]
        print(f"  {name:<24} {seconds * 1e6:8.1f} us/call   overhead vs by hand "
              f"{extra * 1e6:7.1f} us   ratio {ratio:5.2f}")


def main() -> None:
    # the conv D keeps DCGAN's BatchNorm: a timing of the same net as before, not a recipe
    warnings.simplefilter("ignore", DiscriminatorWarning)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bench("toy MLP D (3x512), batch 128, points (128, 2)", ToyDiscriminator(),
          torch.randn(128, 2), torch.randn(128, 2))
    bench("DCGAN-style conv D, batch 64, images (64, 3, 32, 32)", conv_discriminator(),
          torch.randn(64, 3, 32, 32), torch.randn(64, 3, 32, 32))
    overhead()


if __name__ == "__main__":
    main()
