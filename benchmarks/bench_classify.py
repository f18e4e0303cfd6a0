"""One classifier training step with mixup vs without (plain cross-entropy on labels).

Same model, batch and optimizer; a step is the loss (with the mixing, for mixup),
backward and an SGD step. Prints seconds per step and the ratio, measured in this one run.
Usage: python benchmarks/bench_classify.py
"""

from __future__ import annotations

import torch
from common import interleaved_times

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.classify.nets import CLASSIFIERS
from mixup_gan.classify.runner import train_loss
from mixup_gan.config import load_config


def bench(label: str, model_name: str, shape: tuple[int, ...], batch: int, classes: int,
          repeats: int, inner: int) -> None:
    torch.manual_seed(0)
    model = CLASSIFIERS[model_name](shape, classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *shape), torch.randint(0, classes, (batch,))
    g = torch.Generator().manual_seed(0)

    def step(mode: str):
        cfg = load_config(None, ClassifyConfig, [f"loss.mode={mode}"])

        def run():
            loss = train_loss(model, x, y, cfg, classes, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    times = interleaved_times({m: step(m) for m in ("erm", "mixup", "cutmix")},
                              repeats=repeats, inner=inner, warmup=2)
    print(f"\n{label}")
    for mode, seconds in times.items():
        ratio = seconds / times["erm"]
        print(f"  {mode:<7} {seconds * 1e3:9.3f} ms/step   ratio vs plain {ratio:.3f}")


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bench("digits MLP (64-256-256-10), batch 64", "mlp", (1, 8, 8), 64, 10, 9, 50)
    bench("PreAct ResNet-18, CIFAR-shaped batch (32, 3, 32, 32)", "preact_resnet18",
          (3, 32, 32), 32, 10, 5, 2)


if __name__ == "__main__":
    main()
