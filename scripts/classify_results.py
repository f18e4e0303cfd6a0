"""Digits: ERM vs mixup, clean and with 20/50/80% corrupted labels, 3 seeds each.

Trains what is missing (finished runs are only read back), then prints a markdown table.
Usage: python scripts/classify_results.py [--out runs/classify-results]
"""

from __future__ import annotations

import argparse

from mixup_gan.classify.config import ClassifyConfig
from mixup_gan.classify.data import load_data
from mixup_gan.classify.runner import run_classify
from mixup_gan.config import load_config
from mixup_gan.toy.sweep.report import mean_spread

METHODS = {"ERM": "configs/classify/digits_erm.yaml",
           "mixup (alpha 1)": "configs/classify/digits_mixup.yaml"}
CORRUPT, SEEDS = (0.0, 0.2, 0.5, 0.8), (0, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/classify-results")
    args = parser.parse_args()
    print("| labels corrupted | method | seeds | last test error | best test error "
          "| train acc. (given labels) | memorized (corrupted subset) |")
    print("|---|---|---|---|---|---|---|")
    for corrupt in CORRUPT:
        data = None
        for method, path in METHODS.items():
            results = []
            for seed in SEEDS:
                cfg = load_config(path, ClassifyConfig, [
                    f"data.corrupt={corrupt}", f"train.seed={seed}", f"output.dir={args.out}",
                    "output.progress=false"])
                data = data or load_data(cfg.data)  # corruption uses data.corrupt_seed only
                name = f"c{int(corrupt * 100)}_{path.split('_')[-1][:-5]}_s{seed}"
                results.append(run_classify(cfg, name, data=data))
            cells = [mean_spread([r[k] for r in results]) for k in
                     ("last_test_error", "best_test_error", "train_accuracy", "memorized")]
            print(f"| {corrupt:.0%} | {method} | {len(results)} | " + " | ".join(cells) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
