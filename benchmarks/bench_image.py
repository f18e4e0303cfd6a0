"""Image GAN training speed, DCGAN 32x32: mixup vs ERM discriminator loss (one run).

Prints steady-state images per second of whole training iterations (1 D step + 1 G step)
and of D steps alone, for the real-fake mixup loss and the plain loss, and their time ratios.
On CUDA it also runs mixup in fp32, bfloat16 autocast, and bfloat16 + torch.compile, and
prints the compile time (the first steps) separately from the steady state.
Usage: python benchmarks/bench_image.py
"""

from __future__ import annotations

import time
from functools import partial

import torch
from common import interleaved_times

from mixup_gan.config import load_config
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.nets import build_nets
from mixup_gan.runtime import bf16_autocast, resolve_device
from mixup_gan.train import GANTrainer

BATCH = 64


def trainer(alpha: float, device, *, amp: bool = False, compile: bool = False):
    cfg = load_config(None, ImageConfig, [f"loss.alpha={alpha}", f"train.batch_size={BATCH}",
                                          "train.n_dis=1"])
    torch.manual_seed(0)
    G, D = build_nets("dcgan", 128, 3, 32, 128, 64)
    if compile:
        G.compile()
        D.compile()
    data = torch.rand(1024, 3, 32, 32, device=device) * 2 - 1
    return GANTrainer(G, D, lambda rng, counter, n: data[rng.randint(counter, 1024, n)],
                           latent_dim=128, loss=cfg.loss, train=cfg.train, device=device,
                           ema_decay=0.999, autocast=bf16_autocast(device, amp))


def main() -> None:
    device = resolve_device("auto")
    print(f"torch {torch.__version__}, device {device}, DCGAN 32x32, batch {BATCH}")
    variants = {"ERM": trainer(0.0, device), "mixup": trainer(0.2, device)}
    if device.type == "cuda":
        print(f"  on {torch.cuda.get_device_name()}")
        variants["mixup + bf16"] = trainer(0.2, device, amp=True)
        compiled = variants["mixup + bf16 + compile"] = trainer(0.2, device, amp=True,
                                                                compile=True)
        start = time.perf_counter()
        for _ in range(3):  # compiles on the first calls (D, G, and each of their shapes)
            compiled.train_step()
        torch.cuda.synchronize()
        print(f"  compile (3 first iterations): {time.perf_counter() - start:.1f} s")
    steps = interleaved_times({k: v.train_step for k, v in variants.items()}, repeats=5,
                              inner=3)
    d_steps = interleaved_times({k: partial(v.gan_step.d_step, 0, 0)  # one D update
                                 for k, v in variants.items()}, repeats=5, inner=3)
    for name in variants:
        print(f"  {name:<24} {2 * BATCH / steps[name]:8.1f} images/s per iteration, "
              f"D step {d_steps[name] * 1e3:8.2f} ms (ratio vs ERM "
              f"{d_steps[name] / d_steps['ERM']:.3f}), iteration ratio vs ERM "
              f"{steps[name] / steps['ERM']:.3f}")


if __name__ == "__main__":
    main()
