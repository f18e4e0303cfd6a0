"""One discriminator update with the mixup loss vs with the plain (ERM) loss.

Same network, same batch, same optimizer; the update is forward + backward + Adam step.
Prints seconds per update and the mixup/plain ratio, all measured in this one run.
Usage: python benchmarks/bench_loss.py
"""

from __future__ import annotations

import torch
from common import interleaved_times
from torch import nn

from mixup_gan import erm_discriminator_loss, mixup_discriminator_loss
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


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bench("toy MLP D (3x512), batch 128, points (128, 2)", ToyDiscriminator(),
          torch.randn(128, 2), torch.randn(128, 2))
    bench("DCGAN-style conv D, batch 64, images (64, 3, 32, 32)", conv_discriminator(),
          torch.randn(64, 3, 32, 32), torch.randn(64, 3, 32, 32))


if __name__ == "__main__":
    main()
