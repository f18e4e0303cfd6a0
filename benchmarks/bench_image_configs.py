"""Training speed of image GAN configs as they are written: images/s and seconds per
generator step at 1 and 2 threads (or the given counts), and what the config's full run costs.

The data are random uint8 images of the config's shape (speed does not depend on pixels),
so nothing is read or downloaded. Images/s counts what the runner counts: batch_size x
(n_dis + 1) images per generator step.
Usage: python benchmarks/bench_image_configs.py [CONFIG ...] [--threads 1 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mixup_gan.config import load_config
from mixup_gan.image.config import ImageConfig
from mixup_gan.image.data import ImageBank
from mixup_gan.image.generator import build_image_nets
from mixup_gan.runtime import resolve_device
from mixup_gan.train import GANTrainer

DEFAULT = sorted(str(p) for p in Path("configs/image").glob("*mnist*.yaml"))


def seconds_per_step(config: ImageConfig, device: torch.device, steps: int) -> float:
    """Median wall time of one generator iteration (n_dis D steps + 1 G step)."""
    torch.manual_seed(0)
    G, D = build_image_nets(config)
    d = config.data
    bank = ImageBank(torch.randint(0, 256, (512, d.channels, d.size, d.size),
                                   dtype=torch.uint8)).to(device)
    trainer = GANTrainer(G, D, bank.draw, latent_dim=config.model.latent_dim,
                         loss=config.loss, train=config.train, device=device)
    trainer.train_step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=DEFAULT)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=6, help="timed generator steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    device = resolve_device(args.device)
    where = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {where}; median of {args.steps} generator steps")
    for path in args.configs:
        config = load_config(Path(path), ImageConfig, ["train.device=cpu", *args.overrides])
        t = config.train
        images = t.batch_size * (t.n_dis + 1)
        for threads in args.threads if device.type == "cpu" else [0]:
            if threads:
                torch.set_num_threads(threads)
            s = seconds_per_step(config, device, args.steps)
            print(f"  {Path(path).stem:<30} threads {threads}: {images / s:7.1f} images/s, "
                  f"{s:6.3f} s/step, full run ({t.steps} steps) {t.steps * s / 3600:6.2f} h")


if __name__ == "__main__":
    main()
