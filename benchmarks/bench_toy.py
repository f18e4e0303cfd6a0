"""Toy GAN training speed at the paper's setup: our loop vs a reference loop.

Paper setup: 8-Gaussian ring, batch 128, 5 D steps per G step, 3x512 ReLU MLPs, Adam 1e-3.
The reference loop is written here the way the authors' released toy code does it: the fake
batch is not detached in D steps (D's backward runs on through G), D's weights take
gradients in G steps, and the pool pairing runs G forward twice per D step.
Prints iterations per second, their ratio (one run, interleaved), and the model FLOP
utilization: achieved matmul FLOP/s over this machine's measured FLOP/s for the same shapes.
Usage: python benchmarks/bench_toy.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from common import interleaved_times, matmul_flops_per_second, toy_flops_per_iteration

from mixup_gan.gan_config import GANTrainConfig, LossConfig
from mixup_gan.toy.data import MemberSampler, ring
from mixup_gan.toy.nets import ToyDiscriminator, ToyGenerator
from mixup_gan.train import GANTrainer

BATCH, N_DIS, LATENT, HIDDEN, DEPTH, ALPHA = 128, 5, 2, 512, 3, 0.2


def reference_iteration(pairing: str):
    """One generator iteration of a released-code-style loop."""
    torch.manual_seed(0)
    G, D = ToyGenerator(LATENT, HIDDEN, DEPTH), ToyDiscriminator(HIDDEN, DEPTH)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    data = ring()

    def d_step():
        real = data.sample(BATCH)
        fake = G(torch.randn(BATCH, LATENT))  # not detached: backward runs through G
        if pairing == "pool":
            fake_2 = G(torch.randn(BATCH, LATENT))  # second G forward for the second pool
            labels = torch.cat([torch.ones(BATCH), torch.zeros(BATCH)])
            pool_a, pool_b = torch.cat([real, fake]), torch.cat([data.sample(BATCH), fake_2])
            p1, p2 = torch.randperm(2 * BATCH), torch.randperm(2 * BATCH)
            lam = torch.rand(2 * BATCH) * ALPHA
            x = lam[:, None] * pool_a[p1] + (1 - lam[:, None]) * pool_b[p2]
            y = lam * labels[p1] + (1 - lam) * labels[p2]
        else:
            lam = torch.distributions.Beta(ALPHA, ALPHA).sample((BATCH,))
            x, y = lam[:, None] * real + (1 - lam[:, None]) * fake, lam
        loss = F.binary_cross_entropy_with_logits(D(x), y)
        opt_d.zero_grad()
        opt_g.zero_grad()
        loss.backward()
        opt_d.step()

    def iteration():
        for _ in range(N_DIS):
            d_step()
        loss = -F.binary_cross_entropy_with_logits(D(G(torch.randn(BATCH, LATENT))),
                                                   torch.zeros(BATCH))
        opt_g.zero_grad()
        opt_d.zero_grad()
        loss.backward()
        opt_g.step()

    return iteration


def our_iteration(pairing: str):
    torch.manual_seed(0)
    trainer = GANTrainer(
        ToyGenerator(LATENT, HIDDEN, DEPTH), ToyDiscriminator(HIDDEN, DEPTH),
        MemberSampler([ring()], "cpu"),
        latent_dim=LATENT,
        loss=LossConfig(alpha=ALPHA, pairing=pairing, generator_loss="saturating"),
        train=GANTrainConfig(batch_size=BATCH, n_dis=N_DIS, lr=1e-3),
    )
    return trainer.train_step


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fns = {
        "ours real-fake": our_iteration("real-fake"),
        "ours pool": our_iteration("pool"),
        "reference real-fake": reference_iteration("real-fake"),
        "reference pool": reference_iteration("pool"),
    }
    times = interleaved_times(fns, repeats=5, inner=20, warmup=5)
    for name, seconds in times.items():
        print(f"  {name:<20} {1 / seconds:7.2f} it/s")
    ours = times["ours real-fake"]
    print(f"ratio ours real-fake / reference pool (the released code's setup): "
          f"{times['reference pool'] / ours:.2f}x")
    print(f"ratio ours real-fake / reference real-fake: {times['reference real-fake'] / ours:.2f}x")
    print(f"ratio ours pool / reference pool: {times['reference pool'] / times['ours pool']:.2f}x")
    peak = matmul_flops_per_second(BATCH, HIDDEN, HIDDEN)
    achieved = toy_flops_per_iteration(BATCH, N_DIS, LATENT, HIDDEN, DEPTH) / ours
    print(f"matmul rate at ({BATCH}x{HIDDEN})@({HIDDEN}x{HIDDEN}): {peak / 1e9:.1f} GFLOP/s")
    print(f"our loop: {achieved / 1e9:.1f} GFLOP/s of model matmuls -> "
          f"utilization {100 * achieved / peak:.0f}%")


if __name__ == "__main__":
    main()
